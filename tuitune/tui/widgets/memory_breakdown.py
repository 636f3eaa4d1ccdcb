"""Where the memory of a training step goes: one bar per component of the estimate, each as a share
of the training peak, sized to the width the panel has."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widget import Widget

from tuitune.core.units import format_bytes
from tuitune.tui.i18n import MEMORY_PARTS_ZH

BAR_MAX = 40
BAR_MIN = 6
LABEL_MAX = 30


def part_label(name: str, lang: str) -> str:
    """A component's name: the estimator's own words, or Chinese."""
    if lang == "zh" and name in MEMORY_PARTS_ZH:
        return MEMORY_PARTS_ZH[name]
    from tuitune.core.memory import COMPONENT_LABELS

    return COMPONENT_LABELS.get(name, name)


def clip(text: str, width: int) -> str:
    from rich.cells import cell_len, set_cell_size

    return text if cell_len(text) <= width else set_cell_size(text, width - 1) + "…"


class MemoryBreakdown(Widget):
    DEFAULT_CSS = """
    MemoryBreakdown { height: auto; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.estimate: Any = None  # a core MemoryEstimate

    def show(self, estimate: Any) -> None:
        self.estimate = estimate
        self.refresh(layout=True)

    @property
    def parts(self) -> list[tuple[str, int]]:
        """(component, bytes) shown, largest first; components of zero bytes are left out."""
        if self.estimate is None:
            return []
        items = [(k, v) for k, v in self.estimate.components.items() if v > 0]
        return sorted(items, key=lambda kv: kv[1], reverse=True)

    def render(self) -> Content:
        est = self.estimate
        if est is None:
            return Content("")
        from rich.cells import cell_len

        parts = self.parts
        total = est.train_peak_bytes or 1
        labels = {k: part_label(k, self.lang) for k, _ in parts}
        width = max(30, self.size.width)
        size_w = 10  # " 514.9 MiB"
        pct_w = 5  # "  42%"
        # The labels say what each part is: they get room before the bars do.
        label_w = min(LABEL_MAX, max(cell_len(s) for s in labels.values()), width - size_w - pct_w - BAR_MIN - 1)
        bar_w = max(BAR_MIN, min(BAR_MAX, width - label_w - size_w - pct_w - 1))
        lines = []
        for key, n in parts:
            filled = max(1, round(bar_w * n / total))
            label = clip(labels[key], label_w)
            lines.append(
                Content.assemble(
                    label + " " * (label_w - cell_len(label)) + " ",
                    ("█" * filled, "$primary"),
                    ("░" * (bar_w - filled), "$text-muted 30%"),
                    f"{format_bytes(n):>{size_w}}",
                    (f"{100 * n / total:{pct_w - 1}.0f}%", "$text-muted"),
                )
            )
        return Content("\n").join(lines)
