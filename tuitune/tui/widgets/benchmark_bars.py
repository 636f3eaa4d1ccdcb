"""Benchmark scores before and after, one line per task: its metric, a bar and the score with its
standard error for the base and for the tuned model, and the change (green when it went the right
way). Fed with the JSON of `tuitune eval RUN --tasks ... --json` (core BenchmarkReport)."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.content import Content
from textual.widget import Widget

from tuitune.tui.i18n import t
from tuitune.tui.widgets.rows_table import one_line

BAR_MIN, BAR_MAX = 4, 24


def score_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task: its first metric (lm-eval's headline one for the task)."""
    rows = []
    for task in report.get("tasks") or []:
        metrics = task.get("metrics") or []
        if not metrics:
            continue
        m = metrics[0]
        label = m["metric"] if m.get("filter") in (None, "", "none") else f"{m['metric']} ({m['filter']})"
        rows.append({**m, "task": task["task"], "metric": label, "samples": task.get("samples", 0)})
    return rows


def as_shown(values: list[float | None]) -> tuple[float, str]:
    """(scale, format): fractions in 0..1 are shown as percentages, anything else as it is."""
    known = [v for v in values if v is not None]
    if known and all(0.0 <= v <= 1.0 for v in known):
        return 100.0, ".1f"
    return 1.0, ".3g"


def bar(fraction: float, width: int, style: str) -> Content:
    filled = max(0, min(width, round(fraction * width)))
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), "$text-muted 30%"))


class BenchmarkBars(Widget):
    DEFAULT_CSS = """
    BenchmarkBars { height: auto; padding: 0 1; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.rows: list[dict[str, Any]] = []

    def show(self, report: dict[str, Any] | None) -> None:
        self.rows = score_rows(report) if report else []
        self.refresh(layout=True)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 1 + len(self.rows) if self.rows else 0

    def render(self) -> Content:
        if not self.rows:
            return Content("")
        width = max(40, self.size.width - 2)
        task_w = min(24, max(cell_len(t("bench.col.task", self.lang)), *(cell_len(r["task"]) for r in self.rows)))
        metric_w = min(16, max(cell_len(t("bench.col.metric", self.lang)), *(cell_len(r["metric"]) for r in self.rows)))
        number_w = 12  # "100.0 ±12.5"
        change_w = 7
        bar_w = max(BAR_MIN, min(BAR_MAX, (width - task_w - metric_w - change_w - 2 * number_w - 6) // 2))
        head = Content.assemble(
            (self._cell(t("bench.col.task", self.lang), task_w) + " ", "bold"),
            (self._cell(t("bench.col.metric", self.lang), metric_w) + " ", "bold"),
            (self._cell(t("eval.col.base", self.lang), bar_w + number_w + 1) + " ", "bold"),
            (self._cell(t("eval.col.tuned", self.lang), bar_w + number_w + 1) + " ", "bold"),
            (f"{t('bench.col.change', self.lang):>{change_w}}", "bold"),
        )
        lines = [head]
        for r in self.rows:
            scale, fmt = as_shown([r.get("base"), r.get("tuned")])
            top = max(abs(v) for v in (r.get("base"), r.get("tuned"), 1e-12) if v is not None)
            lines.append(
                Content.assemble(
                    self._cell(r["task"], task_w) + " ",
                    (self._cell(r["metric"], metric_w) + " ", "$text-muted"),
                    *self._score(r.get("base"), r.get("base_stderr"), scale, fmt, top, bar_w, "$secondary"),
                    *self._score(r.get("tuned"), r.get("tuned_stderr"), scale, fmt, top, bar_w, "$primary"),
                    self._change(r, scale, fmt, change_w),
                )
            )
        return Content("\n").join(lines)

    @staticmethod
    def _cell(text: str, width: int) -> str:
        text = one_line(text, width)
        return text + " " * (width - cell_len(text))

    @staticmethod
    def _score(value: float | None, stderr: float | None, scale: float, fmt: str, top: float, width: int, style: str):
        if value is None:
            return (bar(0.0, width, style), " " + f"{'-':<12}" + " ")
        fraction = value if scale == 100.0 else abs(value) / top
        number = format(value * scale, fmt) + (f" ±{format(stderr * scale, fmt)}" if stderr is not None else "")
        return (bar(fraction, width, style), f" {number:<12} ")

    @staticmethod
    def _change(row: dict[str, Any], scale: float, fmt: str, width: int) -> Content:
        base, tuned = row.get("base"), row.get("tuned")
        if base is None or tuned is None:
            return Content(f"{'-':>{width}}")
        change = (tuned - base) * scale
        if change == 0:
            return Content(f"{'0':>{width}}")
        good = (change > 0) == bool(row.get("higher_is_better", True))
        return Content.styled(f"{format(change, '+' + fmt):>{width}}", "$text-success" if good else "$text-error")
