"""Progress of long headless work (evaluation, export), reported through a callback.

Core code calls `report(progress, ...)`; the CLI prints the updates, the TUI turns them into
messages from its worker thread. `done`/`total` are counts of the current stage (0/0 = unknown).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    stage: str
    message: str
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


def report(progress: ProgressFn | None, stage: str, message: str, done: int = 0, total: int = 0) -> None:
    if progress is not None:
        progress(Progress(stage, message, done, total))
