"""Learning rate and gradient norm of a run as two labelled sparklines (the latest value in the label)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from tuitune.core.runs.history import RunHistory
from tuitune.core.series import downsample
from tuitune.tui.i18n import t


def _value(values: list[float], fmt: str) -> str:
    return format(values[-1], fmt) if values else "-"


class RunGauges(Vertical):
    DEFAULT_CSS = """
    RunGauges {
        height: auto;
        .gauge-label { color: $text-muted; height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
        Sparkline { height: 2; margin-bottom: 1; }
    }
    """

    def __init__(self, lang: str = "en", **kw) -> None:
        super().__init__(**kw)
        self.lang = lang
        self._history: RunHistory | None = None

    def compose(self) -> ComposeResult:
        yield Static(t("train.lr", self.lang, value="-"), id="lr-label", classes="gauge-label", markup=False)
        yield Sparkline([], id="lr-spark")
        yield Static(t("train.grad", self.lang, value="-"), id="grad-label", classes="gauge-label", markup=False)
        yield Sparkline([], id="grad-spark")

    def show(self, history: RunHistory | None) -> None:
        self._history = history
        if self.is_mounted and self.query("#lr-spark"):
            self._draw(history)

    def on_mount(self) -> None:
        self._draw(self._history)

    def _draw(self, history: RunHistory | None) -> None:
        lr = history.lr if history else None
        grad = history.grad_norm if history else None
        width = max(4, self.size.width or 30)
        self.query_one("#lr-label", Static).update(
            t("train.lr", self.lang, value=_value(lr.values if lr else [], ".1e")), layout=False)
        self.query_one("#grad-label", Static).update(
            t("train.grad", self.lang, value=_value(grad.values if grad else [], ".3g")), layout=False)
        # Sparkline buckets by itself, but 30,000 points per redraw are wasted work: shrink first.
        self.query_one("#lr-spark", Sparkline).data = downsample(lr.steps, lr.values, width)[1] if lr else []
        self.query_one("#grad-spark", Sparkline).data = downsample(grad.steps, grad.values, width)[1] if grad else []
