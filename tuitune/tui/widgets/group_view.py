"""The runs of a group trained together: one loss line per run (its own colour), and beside the chart a
legend with each run's status and progress, and the memory the group shares.

`follow(run)` looks (in a thread) whether the run's status.json names a group; if so it tails every
member's events.jsonl in that thread, one batch per read for all members, and waits for the batch to
be folded in before reading again (as the app's RunFollower does for one run). The widget posts
`GroupView.Shown(active)` so the screen shows it instead of the one-run chart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from tuitune.core.events import format_size
from tuitune.core.runs import RunDirectory, RunSummary
from tuitune.core.runs.history import RunHistory
from tuitune.core.series import downsample
from tuitune.tui.i18n import t
from tuitune.tui.widgets.loss_chart import FEW_POINTS, Y_LABEL_COLUMNS, LossChart, step_label, step_ticks
from tuitune.tui.workers import ReportsWorkerErrors

# (plotext colour, rich colour): the same hue in the chart and in the legend.
PALETTE = [("cyan", "cyan"), ("orange", "dark_orange"), ("green", "green"), ("magenta", "magenta"),
           ("yellow", "yellow"), ("blue", "dodger_blue1"), ("red", "red"), ("white", "white")]
STATUS_MARK = {"training": "▶", "done": "✓", "stopped": "■", "failed": "✗", "crashed": "✗", "interrupted": "■"}
POLL_S = 0.3
CHART_S = 0.5


@dataclass
class Member:
    run: RunDirectory
    history: RunHistory
    colour: tuple[str, str]
    live: bool = True
    summary: RunSummary | None = None
    followed: bool = False  # the run the Train screen follows (its line on top, its name in bold)

    @property
    def status(self) -> str:
        if self.summary is not None and not self.live:
            return self.summary.status
        return self.history.status or "starting"


class GroupChart(LossChart):
    """The train loss of every member, one line each."""

    def __init__(self, lang: str = "en", **kw: Any) -> None:
        super().__init__(lang, **kw)
        self.members: list[Member] = []

    def show_members(self, members: list[Member]) -> None:
        self.members = members
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(t("group.chart_title", self.lang))
        buckets = max(8, (self.size.width or 80) - Y_LABEL_COLUMNS)
        steps: list[int] = []
        self.series = {}
        followed = [m for m in self.members if m.followed]
        for m in [m for m in self.members if not m.followed] + followed:  # the followed run's line on top
            xs, ys = downsample(m.history.train_loss.steps, m.history.train_loss.values, buckets)
            self.series[m.run.name] = (xs, ys)
            if xs:
                plt.plot(xs, ys, marker="dot" if len(xs) < FEW_POINTS else "hd", color=m.colour[0])
                steps += xs
        if steps:
            lo, hi = min(steps), max(steps)
            plt.xlim(lo - 0.5 if lo == hi else lo, hi + max(0.5, (hi - lo) / 40))
            ticks = step_ticks(int(lo), int(hi))
            plt.xticks(ticks, [step_label(x) for x in ticks])
        self._version += 1
        self.refresh()


class GroupView(ReportsWorkerErrors, Horizontal):
    DEFAULT_CSS = """
    GroupView {
        height: 1fr;
        #group-side { width: 34; padding-left: 1; }
        #group-legend { height: auto; }
        #group-memory { height: auto; color: $text-muted; margin-top: 1; }
    }
    """

    class Shown(Message):
        """Whether the followed run trains in a group (the screen swaps its chart for this view)."""

        def __init__(self, active: bool) -> None:
            super().__init__()
            self.active = active

    class Events(Message):
        def __init__(self, token: int, group: dict | None, batches: list[list[dict]], locked: list[bool],
                     summaries: list[RunSummary | None]) -> None:
            super().__init__()
            self.token, self.group, self.batches, self.locked, self.summaries = token, group, batches, locked, summaries

    def __init__(self, lang: str = "en", **kw: Any) -> None:
        super().__init__(**kw)
        self.lang = lang
        self.group: dict | None = None
        self.members: list[Member] = []
        self.followed: RunDirectory | None = None
        self.replayed = False
        self._token = 0
        self._applied = threading.Event()
        self._chart_at = 0.0
        self._pending_chart = False

    def compose(self) -> ComposeResult:
        yield GroupChart(self.lang, id="group-chart")
        with Vertical(id="group-side"):
            yield Static("", id="group-legend")
            yield Static("", id="group-memory", markup=False)

    @property
    def is_settled(self) -> bool:
        """Nothing left to draw: the replay is in, no chart redraw waits, and no member is shown as
        training after its trainer let go of the run (the tail reads its last events next)."""
        if self.followed is None:
            return True
        return (self.replayed and not self._pending_chart
                and not any(m.live and not m.run.is_locked() for m in self.members))

    # ---- following

    def follow(self, run: RunDirectory | None) -> None:
        """Show `run`'s group (nothing when it trains alone or is None)."""
        if run is not None and self.followed is not None and run.path == self.followed.path:
            return
        here = run.path.resolve() if run is not None else None
        if here is not None and any(m.run.path.resolve() == here for m in self.members):
            self.followed = run  # another run of the group shown: same data, another run on top
            for m in self.members:
                m.followed = m.run.path.resolve() == here
            self._draw_side()
            self._draw_chart(force=True)
            return
        self._token += 1
        self.followed, self.group, self.members, self.replayed = run, None, [], False
        self._applied.set()
        if run is None:
            self.post_message(self.Shown(False))
            return
        self.run_worker(partial(self._tail, run, self._token), name=f"group tail {run.name}", group="group-tail",
                        thread=True, exclusive=True, exit_on_error=False)

    def _tail(self, run: RunDirectory, token: int) -> None:
        from tuitune.core.engine.together.plan import group_members, group_of

        worker = get_current_worker()
        group = group_of(run)
        runs = group_members(run) if group else []
        offsets = [0] * len(runs)
        while not worker.is_cancelled and token == self._token:
            locked = [r.is_locked() for r in runs]
            batches = []
            for i, r in enumerate(runs):
                events, offsets[i] = r.read_events(offsets[i])
                batches.append(events)
            summaries = [None if lock else r.summary() for r, lock in zip(runs, locked, strict=True)]
            self._applied.clear()
            self.post_message(self.Events(token, group, batches, locked, summaries))
            while not self._applied.wait(0.5):
                if worker.is_cancelled or token != self._token:
                    return
            if not any(locked):
                return
            time.sleep(POLL_S)

    def on_group_view_events(self, message: Events) -> None:
        try:
            if message.token != self._token:
                return
            if message.group is None or not message.group.get("runs"):
                self.replayed = True
                self.post_message(self.Shown(False))
                return
            if not self.members:
                self.group = message.group
                here = self.followed.path.resolve() if self.followed is not None else None
                self.members = [Member(RunDirectory(p), RunHistory(), PALETTE[i % len(PALETTE)],
                                       followed=Path(p).resolve() == here)
                                for i, p in enumerate(message.group["runs"])]
                self.post_message(self.Shown(True))
            for m, events, locked, summary in zip(self.members, message.batches, message.locked, message.summaries,
                                                  strict=False):
                m.history.add(events)
                m.live, m.summary = locked, summary
            first = not self.replayed
            self.replayed = True
            self._draw_side()
            self._draw_chart(force=first or not any(m.live for m in self.members))
        finally:
            self._applied.set()

    # ---- drawing

    def _draw_chart(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._chart_at < CHART_S:
            if not self._pending_chart:
                self._pending_chart = True
                self.set_timer(CHART_S, lambda: self._draw_chart(force=True))
            return
        self._pending_chart = False
        self._chart_at = now
        self.query_one(GroupChart).show_members(self.members)

    def _draw_side(self) -> None:
        group = self.group or {}
        schedule = str(group.get("schedule", ""))
        key = f"group.schedule.{schedule}"
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=14)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, justify="right")
        for m in self.members:
            step = max(m.history.step, m.summary.step if m.summary else 0)
            total = m.history.max_steps or (m.summary.max_steps if m.summary else 0)
            status = m.status
            table.add_row(
                Text.assemble(("━━ ", m.colour[1]), (m.run.name, "bold" if m.followed else "")),
                Text(f"{STATUS_MARK.get(status, '…')} {step}/{total or '?'}", style="dim" if not m.live else ""),
                Text(f"{m.history.train_loss.values[-1]:.3f}" if m.history.train_loss.values else "-"),
            )
        title = Text(t("group.title", self.lang, name=group.get("name", "?"), n=len(self.members),
                       schedule=t(key, self.lang) if key in _KNOWN else schedule), style="bold")
        legend = Table.grid()
        legend.add_row(title)
        legend.add_row(table)
        self.query_one("#group-legend", Static).update(legend)
        self.query_one("#group-memory", Static).update(self._memory_text())

    def _memory_text(self) -> str:
        """The process's memory from the newest step event of any member: one figure for the group."""
        latest = max((m.history.last_step for m in self.members if m.history.last_step is not None),
                     key=lambda e: e.time or 0, default=None)
        memory = latest.memory if latest is not None else None
        if not isinstance(memory, dict):
            text = t("group.memory_none", self.lang)
        elif memory.get("device") == "cuda":
            text = t("group.memory_gpu", self.lang, allocated=format_size(memory.get("allocated")),
                     peak=format_size(memory.get("peak")))
        else:
            text = t("group.memory_ram", self.lang, rss=format_size(memory.get("rss")))
        # Each run's rate is its share of the process's time: together they are the group's throughput.
        rates = [m.history.last_step.tokens_per_s for m in self.members
                 if m.live and m.history.last_step is not None and m.history.last_step.tokens_per_s]
        if rates:
            text += "\n" + t("group.speed", self.lang, rate=f"{sum(rates):,.0f}")
        return text


def _known() -> frozenset[str]:
    from tuitune.tui.i18n import STRINGS

    return frozenset(k for k in STRINGS if k.startswith("group.schedule."))


_KNOWN = _known()
