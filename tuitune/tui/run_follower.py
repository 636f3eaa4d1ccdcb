"""The app's view of one training run: an App-level thread tails events.jsonl, the event loop folds.

The tailing thread reads new complete lines every POLL_S (`RunDirectory.read_events(offset)`), parses
them off the event loop and posts them as one `RunEvents` message per read, so a trainer writing
hundreds of events a second costs the UI a few messages a second. It then waits until the app has
applied that batch before reading again: when the UI falls behind, batches grow instead of queueing.
The follower lives on the app, not on a screen, so the run is followed (and the bell rings when it
ends) whichever screen is shown.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import get_current_worker

from tuitune.core.events import DoneEvent, ErrorEvent, Event
from tuitune.core.runs import RunDirectory, RunSummary
from tuitune.core.runs.history import RunHistory
from tuitune.tui.i18n import t

if TYPE_CHECKING:
    from textual.app import App

CRASHED = "crashed"  # told like an event: the trainer died without a final status
POLL_S = 0.2  # how often the file is read while a trainer runs (event -> chart stays well under 1 s)


class RunEvents(Message):
    """A batch of events read by the tailing thread; `final` once the trainer let go of the run."""

    def __init__(self, token: int, events: list[dict], final: bool, summary: RunSummary | None) -> None:
        super().__init__()
        self.token = token
        self.events = events
        self.final = final
        self.summary = summary


@dataclass
class Attached:
    """The run the app follows now."""

    run: RunDirectory
    history: RunHistory
    live: bool = True  # the tailing thread still runs (a trainer holds the run, or we have not looked yet)
    summary: RunSummary | None = None  # how it ended, once final
    replayed: bool = False  # the first batch (the history) has been applied


class RunFollower:
    def __init__(self, app: App) -> None:
        self.app = app
        self.attached: Attached | None = None
        self.version = 0  # bumped on every change; screens redraw when it moved
        self._token = 0
        self._applied = threading.Event()
        self._quiet_replay = True

    def attach(self, run: RunDirectory, quiet_replay: bool = True) -> Attached:
        """Follow `run` from its first event. With quiet_replay, events already in the file when we
        attach (a finished run, a reattach) do not ring the bell; a run just started rings for all."""
        self._token += 1
        self._quiet_replay = quiet_replay
        self.attached = Attached(run, RunHistory())
        self.version += 1
        self._applied.set()
        self.app.run_worker(
            partial(self._tail, run, self._token),
            name=f"tail {run.name}",
            group="run-tail",
            thread=True,
            exclusive=True,
            exit_on_error=False,
        )
        return self.attached

    # ---------------------------------------------------------------- the tailing thread

    def _tail(self, run: RunDirectory, token: int) -> None:
        worker = get_current_worker()
        offset = 0
        first = True
        while not worker.is_cancelled and token == self._token:
            # The lock first, the file second: once the lock is free, everything is in the file.
            locked = run.is_locked()
            events, offset = run.read_events(offset)
            final = not locked
            if events or final or first:
                summary = run.summary() if final else None
                self._applied.clear()
                self.app.post_message(RunEvents(token, events, final, summary))
                first = False
                # Wait for the app to fold this batch in before reading more (back-pressure).
                while not self._applied.wait(0.5):
                    if worker.is_cancelled or token != self._token:
                        return
            if final:
                return
            time.sleep(POLL_S)

    # ---------------------------------------------------------------- on the event loop

    def apply(self, message: RunEvents) -> None:
        """Fold a batch into the attached run's history (App.on_run_events calls this)."""
        try:
            attached = self.attached
            if attached is None or message.token != self._token:
                return  # from a run we no longer follow
            notable = attached.history.add(message.events)
            replay = not attached.replayed
            attached.replayed = True
            if message.final:
                attached.live = False
                attached.summary = message.summary
                if message.summary is not None and message.summary.status in ("crashed", "interrupted"):
                    attached.history.status = message.summary.status
                    notable.append(CRASHED)
            self.version += 1
            if not (replay and self._quiet_replay):
                for event in notable:
                    self._tell(attached.run, event)
        finally:
            self._applied.set()

    def _tell(self, run: RunDirectory, event: Event | str) -> None:
        """Bell and a notification: the run ended, failed, or its loss went NaN / memory ran out."""
        lang = getattr(self.app, "lang", "en")
        if isinstance(event, DoneEvent):
            text, severity = t("train.note.done", lang, name=run.name, steps=event.steps), "information"
        elif isinstance(event, ErrorEvent):
            key = {"nan": "train.note.nan", "oom": "train.note.oom"}.get(str(event.kind), "train.note.failed")
            text, severity = t(key, lang, name=run.name, message=event.message or ""), "error"
        else:  # CRASHED: the trainer died without a final status
            text, severity = t("train.note.crashed", lang, name=run.name), "error"
        self.app.bell()
        self.app.notify(text, severity=severity, timeout=30 if severity == "error" else 10)
