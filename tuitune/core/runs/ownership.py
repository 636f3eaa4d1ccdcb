"""Which folders are tuitune's to write into, and which files are tuitune's to delete.

A run folder is created with a marker file (`.tuitune-run`) before anything else goes in. A new run
only starts in a folder that does not exist, is empty, or carries the marker: `--run-dir .` in a
project folder is refused instead of being taken over. Deleting a run removes only the files and
folders tuitune writes there (by name), never what else lies in the folder, and never follows a
symbolic link: a linked entry is unlinked, a run folder that is itself a link is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.runs.directory import MARKER_FILE, RECIPE_FILE, STATUS_FILE, RunDirectory
from tuitune.core.runs.disk import writing

DAMAGED_DIR = "damaged-checkpoints"  # checkpoints that failed verification are moved here (checkpoints.py)
OWNED_FILES = frozenset({MARKER_FILE, RECIPE_FILE, STATUS_FILE, "events.jsonl", "train.log", "lock", "stop",
                         RECIPE_FILE + ".tmp"})
OWNED_FOLDERS = frozenset({"checkpoints", "adapter", "model", "eval", "adapter.partial", "model.partial", DAMAGED_DIR})
SHOWN = 5  # foreign names listed in a message


def is_owned_name(name: str) -> bool:
    """Whether tuitune writes an entry of this name in a run folder (status.json's temp files included)."""
    return name in OWNED_FILES or name in OWNED_FOLDERS or (name.startswith(f".{STATUS_FILE}.") and name.endswith(".tmp"))


def foreign_entries(run: RunDirectory) -> list[str]:
    """Names in the run folder that tuitune did not write, sorted."""
    try:
        return sorted(name for name in os.listdir(run.path) if not is_owned_name(name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def check_new_run_folder(run: RunDirectory) -> None:
    """UserError unless a new run may be written into run.path: absent, empty, or made by tuitune.

    Checked before anything is written, so a refused folder is left exactly as it was.
    """
    path = run.path
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a folder", "give --run-dir a new or empty folder")
    if not path.is_dir() or run.is_marked():
        return
    foreign = foreign_entries(run)
    if foreign:
        raise UserError(
            f"{path} holds files tuitune did not write ({_names(foreign)}): a run needs a folder of its own",
            "give --run-dir a new or empty folder, or leave it out to train into runs/NAME",
        )


def mark_run_folder(run: RunDirectory) -> None:
    """Create the run folder (if needed) and its marker. UserError for a read-only or full disk."""
    with writing(run.path, "creating the run folder"):
        run.path.mkdir(parents=True, exist_ok=True)
        if not run.is_marked():
            from tuitune import __version__

            marker = {"created_by": "tuitune", "version": __version__, "created": time.time()}
            run.marker_path.write_text(json.dumps(marker) + "\n", encoding="utf-8")


def check_deletable(run: RunDirectory) -> None:
    """UserError when `run` must not be deleted now: not a run, a symbolic link, or a trainer holds it."""
    if run.path.is_symlink():
        raise UserError(
            f"{run.path} is a symbolic link (to {os.readlink(run.path)}): tuitune does not delete through links",
            f"remove the link itself (rm {run.path}), or delete the run where it lives",
        )
    if not run.is_run():
        raise UserError(f"{run.path} is not a tuitune run (no recipe.toml or status.json)", "give a run name from `tuitune runs`")
    if run.is_locked():
        holder = run.holder_pid()
        who = f" (pid {holder})" if holder else ""
        raise UserError(
            f"run {run.name} is in use by a trainer{who}: it cannot be deleted while it trains",
            f"stop it first (`tuitune stop {run.reference()}`), then delete it once it has stopped",
        )


def delete_run(run: RunDirectory) -> list[str]:
    """Remove what tuitune wrote in a run folder, and the folder once nothing else is left in it.

    Returns the names that were kept (files tuitune did not write). Refuses a run a trainer holds;
    the run's lock is held meanwhile, so no trainer can start (resume) in it.
    """
    check_deletable(run)
    try:
        lock = run.acquire_lock(wait_s=0.2)
    except UserError:
        check_deletable(run)  # a trainer took it just now: say so in the deletion's words
        raise
    kept: list[str] = []
    try:
        with writing(run.path, "deleting the run"):
            for entry in sorted(os.scandir(run.path), key=lambda e: e.name):
                if entry.name == "lock":
                    continue  # removed last, still held
                if not is_owned_name(entry.name):
                    kept.append(entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)  # unlinks links inside, never follows them
                else:
                    os.unlink(entry.path)  # a file, or a link (the link goes, not what it points at)
            run.lock_path.unlink(missing_ok=True)
    finally:
        lock.release()
    if not kept:
        with writing(run.path, "deleting the run"):
            Path(run.path).rmdir()
    return kept
