"""The loss chart: train loss by step (a line) and eval loss (points), readable at 3 and 30,000 steps.

Long runs are shrunk to the chart's width first (`core.series.downsample`: min and max per column
bucket, so spikes stay visible); short runs get visible markers, since a 3-point braille line is
nearly invisible. `series` keeps what was last drawn, for tests and for the screen's numbers.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
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
        self._strips: list[Strip] = []
        self._built: dict[tuple, list[Strip]] = {}  # (size, version, theme) -> strips, the last two sizes
        self._drawn_width = -1  # the width the series were shrunk for

    def show(self, history: RunHistory | None) -> None:
        """Redraw from a run's history (None: an empty chart)."""
        self._history = history
        self._draw()

    def on_resize(self) -> None:
        """The number of buckets follows the width; a new height alone (the log shown or hidden) only
        needs the plot built again at that size, which render_line does."""
        if self._drawn_width != self.size.width:
            self._draw()

    def render_line(self, y: int) -> Strip:
        """Lines of the plot, built once per new data, size or theme, not per repaint."""
        key = (self.size, self._version, self.app.theme)
        if key != self._drawn_key:
            # The last two sizes are kept: `l` (the log shown or hidden) switches between two heights.
            strips = self._built.get(key)
            if strips is None:
                strips = self._build_strips()
                self._built = {k: v for k, v in self._built.items() if k[1:] == key[1:]}
                while len(self._built) >= 2:
                    self._built.pop(next(iter(self._built)))
                self._built[key] = strips
            self._strips, self._drawn_key = strips, key
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)

    def _build_strips(self) -> list[Strip]:
        """plotext's character matrix straight into Textual strips.

        PlotextPlot.render() has plotext write the whole chart as one ANSI string and then parses it
        back (Text.from_ansi) and lays that Text out again: under a busy trainer that round trip was
        about half the chart's cost. No library turns plotext's matrix into strips, so this does it:
        plotext's own build (as PlotextPlot.render sets it up), then one segment per run of cells with
        the same colours, each colour triple decoded once through plotext's own ANSI codes.
        """
        width, height = self.size
        if not width or not height:
            return []
        plt = self.plt
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as PlotextPlot.render: plotext needs both
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt._set_sizes()
        plt._build_matrix()
        matrix = plt.monitor.matrix
        strips = []
        for row in reversed(matrix.Rows):  # plotext's row 0 is the bottom one
            markers, fg, st, bg = matrix.marker[row], matrix.fullground[row], matrix.style[row], matrix.background[row]
            segments: list[Segment] = []
            start = 0
            for col in range(1, matrix.cols + 1):
                if col == matrix.cols or fg[col] != fg[start] or st[col] != st[start] or bg[col] != bg[start]:
                    segments.append(Segment("".join(markers[start:col]), _style(fg[start], st[start], bg[start])))
                    start = col
            strips.append(Strip(segments).crop_extend(0, width, None))
        return strips[:height]

    def _draw(self) -> None:
        from tuitune.tui.i18n import t

        history = self._history
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(t("train.chart_title", self.lang))
        buckets = max(8, (self.size.width or 80) - Y_LABEL_COLUMNS)
        self._drawn_width = self.size.width
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


_STYLES: dict[tuple, Style] = {}


def _style(fullground, style, background) -> Style:
    """The rich style of one plotext colour triple, through plotext's ANSI codes (cached: a chart has a few)."""
    key = (fullground, style, background)
    found = _STYLES.get(key)
    if found is None:
        from plotext import _utility as ut

        text = Text.from_ansi(ut.colors_to_ansi(fullground, style, background) + "x" + ut.ansi_end)
        spans = [span.style for span in text.spans if isinstance(span.style, Style)]
        found = _STYLES[key] = Style.combine(spans) if spans else Style()
    return found


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
