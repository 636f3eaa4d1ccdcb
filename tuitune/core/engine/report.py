"""What the trainer tells the world: events.jsonl lines and status.json, from rank 0 only.

Other ranks get a Reporter that does nothing, so training code can report unconditionally.
A full disk or a permission change must not end a run that could otherwise finish: a status.json
that cannot be written is a warning, and the fields wait for the next update (final statuses are
retried a few times); events that cannot be written wait in memory and go out with the next one.
When events.jsonl is deleted or truncated under the trainer, the writer starts a new file with a
warning and the latest start and status are written again, so the new file describes the run.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

from tuitune.core.events import Event, LogEvent, StartEvent, StatusEvent, WarningEvent
from tuitune.core.runs import EventWriter, RunDirectory
from tuitune.core.runs.disk import os_error_text

FINAL = ("stopped", "done", "failed")
FINAL_TRIES = 5  # a final status is worth waiting for: without it a finished run looks crashed
RETRY_S = 1.0
MAX_UNSENT = 10_000  # events kept while events.jsonl cannot be written (the oldest are dropped)


class Reporter:
    def __init__(self, run: RunDirectory, enabled: bool = True) -> None:
        self.run = run
        self.enabled = enabled
        self._writer: EventWriter | None = None  # opened on the first event
        self.status_name = ""
        self.step: int | None = None  # the latest step written to status.json
        self._unsent: list[Event] = []
        self._events_problem = ""
        self._pending: dict[str, Any] = {}  # status.json fields not written yet
        self._status_problem = ""
        self._start: StartEvent | None = None
        self._status: StatusEvent | None = None

    # ---- events.jsonl

    def emit(self, event: Event) -> None:
        """Append one typed event (tuitune.core.events) to events.jsonl."""
        if not self.enabled:
            return
        if isinstance(event, StartEvent):
            self._start = event
        elif isinstance(event, StatusEvent):
            self._status = event
        self._unsent.append(event)
        del self._unsent[:-MAX_UNSENT]
        try:
            if self._writer is None:
                self._writer = self.run.event_writer(on_reopen=self._events_restarted)
            while self._unsent:
                self._writer.emit(self._unsent[0])
                self._unsent.pop(0)
        except OSError as e:
            self._say_once("_events_problem", os_error_text(e), f"cannot write {self.run.events_path.name} "
                           f"({os_error_text(e)}); events wait in memory and go out with the next one")
            return
        if self._events_problem:
            self._events_problem = ""
            print(f"{self.run.events_path.name} is written again", file=sys.stderr, flush=True)

    def _events_restarted(self, reason: str) -> None:
        """events.jsonl was deleted or truncated: describe the run again at the top of the new file."""
        print(f"warning: {self.run.events_path.name} was {reason} while training; continuing in a new file",
              file=sys.stderr, flush=True)
        assert self._writer is not None
        if self._start is not None:
            # resumed_from = where this file begins, so readers do not cut the steps already shown.
            self._writer.emit(dataclasses.replace(self._start, resumed_from=self.step or self._start.resumed_from))
        if self._status is not None:
            self._writer.emit(self._status)

    # ---- status.json

    def status(self, status: str, message: str = "", **fields: Any) -> None:
        """A status change: one `status` event plus status.json (with any extra fields merged in)."""
        self.status_name = status
        if not self.enabled:
            return
        self.emit(StatusEvent(status=status, message=message))
        extra = {"finished": time.time()} if status in FINAL else {}
        self._write_status({"status": status, "message": message, **fields, **extra}, tries=FINAL_TRIES if status in FINAL else 1)

    def update(self, **fields: Any) -> None:
        """status.json fields without a status change (step, loss, ...)."""
        if self.enabled:
            self._write_status(fields)

    def claim(self, **fields: Any) -> None:
        """Record this process as the run's trainer (the pid `tuitune stop` signals)."""
        if self.enabled:
            self._write_status({"pid": os.getpid(), **fields})

    def _write_status(self, fields: dict[str, Any], tries: int = 1) -> bool:
        """Merge `fields` (and any earlier ones not written yet) into status.json; False when it failed."""
        if isinstance(fields.get("step"), int):
            self.step = fields["step"]
        self._pending.update(fields)
        for attempt in range(tries):
            try:
                self.run.update_status(**self._pending)
            except OSError as e:
                self._say_once("_status_problem", os_error_text(e), f"cannot write {self.run.status_path.name} "
                               f"({os_error_text(e)}); training goes on and it is written again at the next update",
                               event=True)
                if attempt + 1 < tries:
                    time.sleep(RETRY_S)
                continue
            self._pending.clear()
            if self._status_problem:
                self._status_problem = ""
                self.log(f"{self.run.status_path.name} is written again")
            return True
        return False

    # ---- messages

    def _say_once(self, attr: str, reason: str, message: str, event: bool = False) -> None:
        """Tell a problem once per reason (train.log, and as a warning event), not at every step it lasts."""
        if getattr(self, attr) == reason:
            return
        setattr(self, attr, reason)
        print(f"warning: {message}", file=sys.stderr, flush=True)
        if event:
            self.warning(message)

    def warning(self, message: str) -> None:
        self.emit(WarningEvent(message=message))

    def log(self, message: str) -> None:
        self.emit(LogEvent(message=message))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
