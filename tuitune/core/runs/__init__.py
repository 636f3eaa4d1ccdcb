"""Run folders: the contract between a trainer process and whoever watches it.

- directory.py  `RunDirectory` (paths, status.json, events, lock, checkpoints, recipe, result),
                `read_run`, `open_finished_run`, `RunSummary`
- events_io.py  `EventWriter`, `read_events` (events.jsonl as JSON lines; their types: core.events)
- lock.py       the flock that marks a run as owned by a trainer
- listing.py    `list_runs`, `run_choices`, `locate_run` / `find_run` (the one lookup), `delete_run`
- history.py    `RunHistory`: events folded into what a live view shows
- follow_many.py `follow_runs`: several runs' events at once (a group trained together)
"""

from tuitune.core.runs.directory import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RunDirectory,
    RunSummary,
    open_finished_run,
    read_run,
)
from tuitune.core.runs.events_io import EventWriter, read_events
from tuitune.core.runs.listing import (
    check_deletable,
    delete_run,
    find_run,
    known_runs,
    list_runs,
    locate_run,
    run_choices,
)
from tuitune.core.runs.lock import RunLock

__all__ = [
    "ACTIVE_STATUSES", "FINAL_STATUSES", "EventWriter", "RunDirectory", "RunLock", "RunSummary", "check_deletable",
    "delete_run", "find_run", "known_runs", "list_runs", "locate_run", "open_finished_run", "read_events", "read_run",
    "run_choices",
]
