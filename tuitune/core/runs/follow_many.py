"""Follow the events of several runs at once (a group trained together), in the order they arrive."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tuitune.core.runs.directory import RunDirectory


def follow_runs(
    runs: list[RunDirectory], offsets: list[int] | None = None, poll_s: float = 0.3
) -> Iterator[tuple[RunDirectory, dict[str, Any]]]:
    """Yield (run, event) from each run's offset on, until no trainer holds any of them (then drain)."""
    offsets = list(offsets or [0] * len(runs))
    while True:
        live = [run.is_locked() for run in runs]
        got = False
        for i, run in enumerate(runs):
            events, offsets[i] = run.read_events(offsets[i])
            for event in events:
                got = True
                yield run, event
        if not got and not any(live):
            return
        if not got:
            time.sleep(poll_s)
