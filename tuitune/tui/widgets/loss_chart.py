"""The loss chart: train loss by step (a line) and eval loss (points), readable at 3 and 30,000 steps.

Long runs are shrunk to the chart's width first (`core.series.downsample`: min and max per column
bucket, so spikes stay visible); short runs get visible markers, since a 3-point braille line is
nearly invisible. `series` keeps what was last drawn, for tests and for the screen's numbers.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

from tuitune.core.runs.history import RunHistory
from tuitune.core.series import downsample

FEW_POINTS = 24  # below this many points the train line gets a visible marker per point
Y_LABEL_COLUMNS = 8  # what plotext takes for the y tick labels and the frame


class LossChart(PlotextPlot):
    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, lang: str = "en", **kw) -> None:
        super().__init__(**kw)
        self.lang = lang
        self.series: dict[str, tuple[list[float], list[float]]] = {"train": ([], []), "eval": ([], [])}
        self._history: RunHistory | None = None
        self._drawn_key: tuple | None = None
        self._version = 0
        self._rendered = None

    def show(self, history: RunHistory | None) -> None:
        """Redraw from a run's history (None: an empty chart)."""
        self._history = history
        self._draw()

    def on_resize(self) -> None:
        self._draw()  # the number of buckets follows the width

    def render(self):
        """plotext's build and its ANSI parsing take ~10-30 ms: once per new data or size, not per repaint."""
        key = (self.size, self._version, self.app.theme)
        if key != self._drawn_key or self._rendered is None:
            self._rendered = super().render()
            self._drawn_key = key
        return self._rendered

    def _draw(self) -> None:
        from tuitune.tui.i18n import t

        history = self._history
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(t("train.chart_title", self.lang))
        buckets = max(8, (self.size.width or 80) - Y_LABEL_COLUMNS)
        train = eval_ = ([], [])
        if history is not None:
            train = downsample(history.train_loss.steps, history.train_loss.values, buckets)
            eval_ = downsample(history.eval_loss.steps, history.eval_loss.values, buckets)
        self.series = {"train": train, "eval": eval_}
        self._version += 1
        if train[0]:
            marker = "dot" if len(train[0]) < FEW_POINTS else "hd"
            plt.plot(*train, marker=marker, color="cyan")  # no legend: it would hide the first steps
        if eval_[0]:
            plt.scatter(*eval_, marker="x", color="orange")
        if train[0] or eval_[0]:
            steps = train[0] + eval_[0]
            lo, hi = min(steps), max(steps)
            # A little room on the right: plotext puts a point at exactly the limit on the frame.
            pad = max(0.5, (hi - lo) / 40)
            plt.xlim(lo - 0.5 if lo == hi else lo, hi + pad)
            ticks = step_ticks(int(lo), int(hi))
            plt.xticks(ticks, [step_label(x) for x in ticks])
        self.refresh()


def step_ticks(lo: int, hi: int, most: int = 5) -> list[int]:
    """Whole-step ticks at a round spacing (1, 2, 5 x 10^k), at most `most` + 1 of them."""
    span = max(1, hi - lo)
    spacing = 1
    while span / spacing > most:
        spacing = _next_round(spacing)
    first = -(-lo // spacing) * spacing
    return list(range(first, hi + 1, spacing)) or [lo]


def _next_round(spacing: int) -> int:
    """1 -> 2 -> 5 -> 10 -> 20 -> 50 ..."""
    digits = str(spacing)
    lead, zeros = int(digits[0]), len(digits) - 1
    return {1: 2, 2: 5, 5: 10}[lead] * 10**zeros


def step_label(step: int) -> str:
    return f"{step / 1000:g}k" if step >= 10_000 else str(step)
