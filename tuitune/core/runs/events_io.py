"""events.jsonl and status.json on disk: append one JSON line per event, read complete lines from an
offset (a tail), rewrite a JSON file atomically. What the events mean is tuitune.core.events."""

from __future__ import annotations

import json
import math
import os
import time
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
    """Write to a temp file in the same folder and rename it over the target: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(json_safe(data), f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class EventWriter:
    """Appends one JSON object per line. Each line goes out in a single write() on an O_APPEND file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"time": time.time(), "type": type, **fields}
        line = (json.dumps(json_safe(event), ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        return event

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
    """
    try:
        with open(path, "rb") as f:
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
