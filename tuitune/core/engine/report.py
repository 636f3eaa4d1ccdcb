"""What the trainer tells the world: events.jsonl lines and status.json, from rank 0 only.

Other ranks get a Reporter that does nothing, so training code can report unconditionally.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tuitune.core.events import Event, LogEvent, StatusEvent, WarningEvent
from tuitune.core.runs import EventWriter, RunDirectory


class Reporter:
    def __init__(self, run: RunDirectory, enabled: bool = True) -> None:
        self.run = run
        self.enabled = enabled
        self._writer: EventWriter | None = None  # opened on the first event
        self.status_name = ""

    def emit(self, event: Event) -> None:
        """Append one typed event (tuitune.core.events) to events.jsonl."""
        if not self.enabled:
            return
        if self._writer is None:
            self._writer = self.run.event_writer()
        self._writer.emit(event)

    def status(self, status: str, message: str = "", **fields: Any) -> None:
        """A status change: one `status` event plus status.json (with any extra fields merged in)."""
        self.status_name = status
        if not self.enabled:
            return
        self.emit(StatusEvent(status=status, message=message))
        extra = {"finished": time.time()} if status in ("stopped", "done", "failed") else {}
        self.run.update_status(status=status, message=message, **fields, **extra)

    def update(self, **fields: Any) -> None:
        """status.json fields without a status change (step, loss, ...)."""
        if self.enabled:
            self.run.update_status(**fields)

    def warning(self, message: str) -> None:
        self.emit(WarningEvent(message=message))

    def log(self, message: str) -> None:
        self.emit(LogEvent(message=message))

    def claim(self, **fields: Any) -> None:
        """Record this process as the run's trainer (the pid `tuitune stop` signals)."""
        if self.enabled:
            self.run.update_status(pid=os.getpid(), **fields)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
