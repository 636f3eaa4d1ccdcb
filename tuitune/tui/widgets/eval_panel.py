"""The result of `tuitune eval RUN --json`: base and tuned perplexity, loss, and the answers' exact
match, token F1, ROUGE-1/2/L and BLEU-4, and a table of sample predictions (reference, base answer,
tuned answer)."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from tuitune.tui.i18n import t
from tuitune.tui.widgets.rows_table import one_line
from tuitune.tui.widgets.runs_table import display_path

ANSWER_METRICS = ("exact_match", "f1", "rouge1", "rouge2", "rougeL", "bleu4")  # 0..1, shown in %
SCORE_COLUMNS = ("who", "perplexity", "loss", *ANSWER_METRICS)
SAMPLE_COLUMNS = ("line", "prompt", "reference", "base", "tuned")


def _number(value: Any, fmt: str, scale: float = 1.0) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return format(value * scale, fmt)


class EvalPanel(Vertical):
    DEFAULT_CSS = """
    EvalPanel { height: 1fr; }
    EvalPanel #eval-status { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    EvalPanel #eval-status.-error { color: $text-error; }
    EvalPanel #eval-scores { height: auto; max-height: 4; margin-bottom: 1; }
    EvalPanel #eval-samples { height: 1fr; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Static(t("eval.idle", self.lang), id="eval-status", markup=False)
        yield DataTable(id="eval-scores", cursor_type="none", show_cursor=False)
        yield DataTable(id="eval-samples", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        scores = self.query_one("#eval-scores", DataTable)
        for col in SCORE_COLUMNS:
            scores.add_column(t(f"eval.col.{col}", self.lang), key=col)
        scores.tooltip = t("eval.metrics_note", self.lang)
        samples = self.query_one("#eval-samples", DataTable)
        for col in SAMPLE_COLUMNS:
            samples.add_column(t(f"eval.col.{col}", self.lang), key=col)

    def say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#eval-status", Static)
        status.set_class(error, "-error")
        status.update(text)

    def show_report(self, report: dict[str, Any]) -> None:
        """Fill the tables from the JSON report (EvalReport.to_json())."""
        self.report = report
        scores = self.query_one("#eval-scores", DataTable)
        scores.clear()
        for who in ("base", "tuned"):
            s = report.get(who) or {}
            scores.add_row(
                t(f"eval.col.{who}", self.lang),
                Text(_number(s.get("perplexity"), ".3f"), justify="right"),
                Text(_number(s.get("loss"), ".4f"), justify="right"),
                *(Text(_number(s.get(m), ".1f", 100), justify="right") for m in ANSWER_METRICS),
            )
        samples = self.query_one("#eval-samples", DataTable)
        samples.clear(columns=True)
        # The four text columns share the width, so base and tuned stay side by side without scrolling.
        width = max(10, (self.size.width or 100) - 6 - 2 * len(SAMPLE_COLUMNS)) // 4
        for col in SAMPLE_COLUMNS:
            samples.add_column(t(f"eval.col.{col}", self.lang), key=col, width=None if col == "line" else width)
        for s in report.get("samples") or []:
            samples.add_row(
                str(s.get("line", "")),
                *(one_line(s.get(k, ""), width) for k in ("prompt", "reference", "base", "tuned")),
            )
        self.say(
            t(
                "eval.done",
                self.lang,
                run=report.get("run", ""),
                examples=report.get("examples", 0),
                tokens=report.get("tokens", 0),
                answered=report.get("answered", 0),
                seconds=float(report.get("seconds") or 0.0),
                path=display_path(report.get("path") or ""),
            )
            + "".join(f"\n{note}" for note in report.get("notes") or [])
        )
