"""Byte offsets of rows in line-based files (JSONL, one-per-line text), learned while skipping or
counting, so that paging deep into a huge file seeks instead of scanning from the top again."""

from __future__ import annotations

import threading
from pathlib import Path

from tuitune.core.data.raw import open_file

CHECKPOINT_EVERY = 1024  # rows between remembered byte offsets of a line-based file


class _LineIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[tuple[str, int, int], dict[int, tuple[int, int]]] = {}

    @staticmethod
    def _key(path: Path) -> tuple[str, int, int]:
        st = path.stat()
        return (str(path.resolve()), st.st_size, st.st_mtime_ns)

    def add(self, path: Path, row: int, offset: int, lines: int) -> None:
        with self._lock:
            self._files.setdefault(self._key(path), {})[row] = (offset, lines)

    def nearest(self, path: Path, row: int) -> tuple[int, int, int]:
        """(row, byte offset, lines before) of the last checkpoint at or before `row`."""
        with self._lock:
            marks = self._files.get(self._key(path))
            if not marks:
                return 0, 0, 0
            best = max((r for r in marks if r <= row), default=0)
            if best == 0:
                return 0, 0, 0
            offset, lines = marks[best]
            return best, offset, lines

    def before_line(self, path: Path, line: int) -> tuple[int, int, int]:
        """(row, byte offset, lines before) of the last checkpoint that starts before `line`."""
        with self._lock:
            marks = self._files.get(self._key(path)) or {}
            best = max((r for r, (_, lines) in marks.items() if lines < line), default=0)
            if best == 0:
                return 0, 0, 0
            offset, lines = marks[best]
            return best, offset, lines


LINE_INDEX = _LineIndex()


def skip_rows(f, path: Path, start: int) -> int:
    """Position `f` at row `start` (non-blank lines); returns the physical lines before it."""
    row, offset, lines = LINE_INDEX.nearest(path, start)
    f.seek(offset)
    while row < start:
        raw = f.readline()
        if not raw:
            break
        lines += 1
        offset += len(raw)
        if raw.strip():
            row += 1
            if row % CHECKPOINT_EVERY == 0:
                LINE_INDEX.add(path, row, offset, lines)
    return lines


def count_lines_fast(path: Path, cancel: threading.Event | None = None) -> int | None:
    """Rows (non-blank lines) of a line-based file, remembering checkpoints for later seeks.
    None when cancelled."""
    rows = lines = offset = 0
    with open_file(path) as f:
        for raw in f:
            lines += 1
            offset += len(raw)
            if raw.strip():
                rows += 1
                if rows % CHECKPOINT_EVERY == 0:
                    LINE_INDEX.add(path, rows, offset, lines)
                    if cancel is not None and cancel.is_set():
                        return None
    return rows


def row_at_physical_line(path: Path, line: int) -> int:
    """The 0-based row starting at physical `line` (or the first row after it), counting non-blank
    lines without parsing them; seeks from the nearest remembered checkpoint."""
    row, offset, lines = LINE_INDEX.before_line(path, line)
    with open_file(path) as f:
        f.seek(offset)
        for raw in f:
            lines += 1
            if lines >= line:
                return row
            if raw.strip():
                row += 1
    return row
