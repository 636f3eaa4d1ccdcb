"""events.jsonl and status.json on disk: append one JSON line per event, read complete lines from an
offset (a tail), rewrite a JSON file atomically. What the events mean is tuitune.core.events.

events.jsonl may be deleted or truncated under a live trainer (a clean-up script, a user's `> file`).
The writer notices before its next line (the path no longer names its file, or the file shrank),
starts a new file with a warning saying what was lost, and tells its owner (`on_reopen`), which writes
the run's start and status again so the new file describes the run on its own. Readers that find the
file shorter than their offset start again from its beginning.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuitune.core.events import Event


def json_safe(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (strict JSON readers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temp file in the same folder and rename it over the target: readers never see half a file.

    On failure (disk full, no permission) the temp file is removed and the OSError raised.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(json_safe(data), f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class EventWriter:
    """Appends one JSON object per line. Each line goes out in a single write() on an O_APPEND file.

    Before each line it checks that events.jsonl is still its file and has not shrunk; if it was
    deleted, replaced or truncated, it writes a warning line first (into a new file when the old one
    is gone) and calls `on_reopen(reason)`.
    """

    def __init__(self, path: Path, on_reopen: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.on_reopen = on_reopen
        self._fd = -1
        self._identity: tuple[int, int] = (0, 0)
        self._size = 0
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        st = os.fstat(self._fd)
        self._identity, self._size = (st.st_dev, st.st_ino), st.st_size

    def lost(self) -> str | None:
        """How the file went missing since the last line: deleted, replaced, truncated, or None."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "deleted"
        if (st.st_dev, st.st_ino) != self._identity:
            return "replaced"
        if st.st_size < self._size:
            return "truncated"
        return None

    def _append(self, event: dict[str, Any]) -> None:
        line = (json.dumps(json_safe(event), ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        self._size = os.fstat(self._fd).st_size

    def write(self, type: str, **fields: Any) -> dict[str, Any]:
        reason = self.lost() if self._fd >= 0 else None
        if reason is not None:
            self._start_again(reason)
        event = {"time": time.time(), "type": type, **fields}
        self._append(event)
        return event

    def _start_again(self, reason: str) -> None:
        if reason != "truncated":  # our descriptor points at a file nobody can see: open the path again
            os.close(self._fd)
            self._open()
        else:
            self._size = os.fstat(self._fd).st_size
        message = (
            f"{self.path.name} was {reason} while the run trained: the events written before this line are "
            "lost from it (status.json and the checkpoints are unaffected); continuing in this file"
        )
        self._append({"time": time.time(), "type": "warning", "message": message})
        if self.on_reopen is not None:
            self.on_reopen(reason)

    def emit(self, event: Event) -> dict[str, Any]:
        """Write a typed event (tuitune.core.events); its time is stamped now."""
        return self.write(event.type, **event.fields())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events from byte `offset` on, and the offset to continue from.

    A last line without its newline is still being written: it is left for the next call.
    A line that is not valid JSON (a disk hiccup) is skipped rather than stopping the reader.
    A file shorter than `offset` was truncated or replaced under the reader: read it from the start.
    """
    try:
        with open(path, "rb") as f:
            if offset > os.fstat(f.fileno()).st_size:
                offset = 0
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events: list[dict[str, Any]] = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end + 1
