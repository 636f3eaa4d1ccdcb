"""Checkpoints that are either complete or visibly unfinished.

transformers' Trainer writes a checkpoint's files one after the other and trainer_state.json last, with
a plain open/write: a kill in the middle leaves a half-written JSON that looks like a finished
checkpoint, and nothing is flushed to disk. Here trainer_state.json, the file that marks a checkpoint
finished (RunDirectory.checkpoints), is written only after every other file of the checkpoint has
been fsynced, to a temp file renamed into place: after a kill or a power cut a checkpoint either has
its whole state or none. What is checked before a resume is tuitune.core.runs.checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any


def fsync_tree(folder: Path) -> None:
    """Flush every file under `folder`, then the folders themselves (so the names are durable too)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync(os.path.join(root, name), os.O_RDONLY)
        _fsync(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: str, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # gone (rotated away) or not ours: nothing to flush
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on folders
            os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpoints:
    """Trainer mixin: trainer_state.json written last, atomically, after the rest is on disk."""

    state: Any

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        state = self.state
        save_to_json = state.save_to_json  # the Trainer's own writer, bound to this state

        def save_atomically(json_path: str) -> None:
            path = Path(json_path)
            fsync_tree(path.parent)
            tmp = path.with_name(f".{path.name}.tmp")
            save_to_json(str(tmp))
            _fsync(str(tmp), os.O_RDONLY)
            os.replace(tmp, path)
            _fsync(str(path.parent), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

        state.save_to_json = save_atomically  # an attribute on this one object shadows the method
        try:
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        finally:
            del state.save_to_json
