"""Token lengths against cutoff_len: the stats in one line, then one bar per length range, ranges
past the cutoff in red with a marker where the cutoff falls. Fits 80 columns."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widget import Widget

from tuitune.tui.i18n import t

BAR_MAX = 60


class LengthHistogram(Widget):
    DEFAULT_CSS = """
    LengthHistogram { height: auto; padding: 0 1; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.stats: Any = None  # core LengthStats
        self.note = t("data.stats_waiting", lang)

    def show(self, stats: Any, note: str) -> None:
        self.stats, self.note = stats, note
        self.refresh(layout=True)

    def show_message(self, note: str) -> None:
        self.stats, self.note = None, note
        self.refresh(layout=True)

    def render(self) -> Content:
        s, lang = self.stats, self.lang
        if s is None or not s.rows:
            return Content.styled(self.note, "$text-muted")
        over_style = "bold $text-error" if s.over_cutoff else "$text-success"
        lines = [
            Content.assemble(
                t("data.stats_line", lang, rows=s.rows, min=s.min, median=f"{s.median:g}", p95=s.p95, max=s.max),
                "  ",
                (t("data.over_cutoff", lang, n=s.over_cutoff, cutoff=s.cutoff_len), over_style),
            ),
            Content.styled(self.note, "$text-muted"),
            Content(""),
        ]
        label_w = max(len(f"{lo}-{hi - 1}") for lo, hi, _ in s.histogram)
        count_w = max(len(str(n)) for _, _, n in s.histogram)
        bar_w = max(5, min(BAR_MAX, self.size.width - 2 - label_w - count_w - 3))
        peak = max(n for _, _, n in s.histogram) or 1
        marked = False
        for lo, hi, n in s.histogram:
            over = lo >= s.cutoff_len
            if over and not marked:
                lines.append(Content.styled(t("data.cutoff_marker", lang, cutoff=s.cutoff_len), "$text-error"))
                marked = True
            filled = max(1 if n else 0, round(bar_w * n / peak))
            # A range that holds the cutoff is cut in part: say so with a different colour.
            style = "$text-error" if over else "$text-warning" if hi - 1 > s.cutoff_len else "$primary"
            lines.append(
                Content.assemble(
                    (f"{lo}-{hi - 1}".rjust(label_w) + " ", "$text-muted"),
                    ("█" * filled, style),
                    f" {n}",
                )
            )
        return Content("\n").join(lines)
