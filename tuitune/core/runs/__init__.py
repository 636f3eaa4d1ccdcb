"""Run folders: the contract between a trainer process and whoever watches it.

- directory.py  `RunDirectory` (paths, status.json, events, lock, checkpoints, recipe, result),
                `read_run`, `open_finished_run`, `RunSummary`
- events_io.py  `EventWriter`, `read_events` (events.jsonl as JSON lines; their types: core.events)
- summary.py    `RunSummary` (a row of `tuitune runs`), status.json read with its types checked
- lock.py       the flock that marks a run as owned by a trainer, and who holds it
- listing.py    `list_runs`, `run_choices`, `locate_run` / `find_run` (the one lookup)
- ownership.py  the folder marker, which folders a new run may use, `delete_run` (only what tuitune wrote)
- checkpoints.py  verify a checkpoint before resuming from it; the newest intact one
- remote_code.py  `trust_remote_code` from a run folder runs only when allowed
- disk.py       OSError while writing -> one-line UserError (full, read-only, not ours)
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
from tuitune.core.runs.listing import find_run, known_runs, list_runs, locate_run, run_choices
from tuitune.core.runs.lock import RunLock
from tuitune.core.runs.ownership import check_deletable, check_new_run_folder, delete_run, mark_run_folder
from tuitune.core.runs.remote_code import RemoteCodeRefused, allow_remote_code, check_remote_code

__all__ = [
    "ACTIVE_STATUSES", "FINAL_STATUSES", "EventWriter", "RemoteCodeRefused", "RunDirectory", "RunLock", "RunSummary",
    "allow_remote_code", "check_deletable", "check_new_run_folder", "check_remote_code", "delete_run", "find_run",
    "known_runs", "list_runs", "locate_run", "mark_run_folder", "open_finished_run", "read_events", "read_run",
    "run_choices",
]
