"""Reading raw rows from each kind of source, streamed, each row tagged with where it starts.

A row that cannot be read (invalid JSON, invalid UTF-8, a CSV row with the wrong number of cells)
comes out as a RawRow with a `problem` instead of a `record`, so a broken line never stops reading.
Rows are counted without blank lines; `start` skips that many rows cheaply (without parsing them).

JSONL and TXT are read line by line by hand rather than through `datasets`: `datasets` reads the
whole file into Arrow before returning anything (seconds to minutes for a big file) and fails the
whole file on one bad line, while a viewer needs the first page at once and every error with its
line number. Parquet is read with pyarrow, batch by batch; hub datasets through `datasets`.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
CHECKPOINT_EVERY = 1024  # rows between remembered byte offsets of a line-based file
SAMPLE_BYTES = 1 << 20  # bytes read to estimate the row count of a big file


@dataclass
class RawRow:
    line: int
    record: dict[str, Any] | None
    problem: str | None = None
    file: str | None = None


# --------------------------------------------------------------------------- dispatch


def file_rows(path: Path, kind: str, start: int = 0) -> Iterator[RawRow]:
    """Every row of one local file from row `start` (0-based) on."""
    if kind == "jsonl":
        return _jsonl_rows(path, start)
    if kind == "json":
        return _json_rows(path, start)
    if kind in ("csv", "tsv"):
        return _csv_rows(path, "\t" if kind == "tsv" else ",", start)
    if kind == "parquet":
        return _parquet_rows(path, start)
    if kind == "txt":
        return _txt_rows(path, start)
    raise UserError(f"{path}: unsupported file type", "use .jsonl, .json, .csv, .tsv, .parquet or .txt")


def _open(path: Path):
    try:
        f = open(path, "rb")
    except OSError as e:
        raise UserError(f"{path}: cannot be read: {e.strerror or e}", "check the path and its permissions") from None
    head = f.read(2)
    f.seek(0)
    if head in UTF16_BOMS:
        f.close()
        raise UserError(f"{path}: the file is UTF-16 encoded", "save it as UTF-8")
    return f


def _utf8_problem(raw: bytes, e: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line); save the file as UTF-8; row skipped"


# --------------------------------------------------------------------------- JSONL


class _LineIndex:
    """Byte offsets of every CHECKPOINT_EVERY-th row of line-based files, learned while skipping or
    counting, so that paging deep into a huge file seeks instead of scanning from the top again."""

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


LINE_INDEX = _LineIndex()


def _skip_rows(f, path: Path, start: int) -> int:
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


def _jsonl_rows(path: Path, start: int = 0) -> Iterator[RawRow]:
    with _open(path) as f:
        line = _skip_rows(f, path, start) if start else 0
        loads = json.loads
        for raw in f:
            line += 1
            if line == 1 and raw.startswith(BOM):
                raw = raw[3:]
            raw = raw.strip()
            if not raw:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield RawRow(line, None, _utf8_problem(raw, e))
                continue
            try:
                obj = loads(text)
            except json.JSONDecodeError as e:
                yield RawRow(line, None, f"invalid JSON: {e.msg} (column {e.colno}); row skipped")
                continue
            if isinstance(obj, dict):
                yield RawRow(line, obj)
            else:
                yield RawRow(line, None, f"expected a JSON object {{...}} on each line, got {type_word(obj)}; row skipped")


def count_lines_fast(path: Path, cancel: threading.Event | None = None) -> int | None:
    """Rows (non-blank lines) of a line-based file, remembering checkpoints for later seeks.
    None when cancelled."""
    rows = lines = offset = 0
    with _open(path) as f:
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


# --------------------------------------------------------------------------- TXT


def _txt_rows(path: Path, start: int = 0) -> Iterator[RawRow]:
    """One row per block of text separated by blank lines (so multi-line documents stay whole)."""
    block: list[str] = []
    block_line = 0
    bad: str | None = None
    row = 0
    with _open(path) as f:
        line = 0
        for raw in f:
            line += 1
            if line == 1 and raw.startswith(BOM):
                raw = raw[3:]
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                if block_line:
                    if row >= start:
                        yield _txt_row(block_line, block, bad)
                    row += 1
                block, block_line, bad = [], 0, None
                continue
            if not block_line:
                block_line = line
            if row < start:
                continue  # skipping: no need to decode
            try:
                block.append(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                bad = bad or f"line {line}: " + _utf8_problem(raw, e)
        if block_line and row >= start:
            yield _txt_row(block_line, block, bad)


def _txt_row(line: int, block: list[str], bad: str | None) -> RawRow:
    if bad:
        return RawRow(line, None, bad.replace("row skipped", "block skipped"))
    return RawRow(line, {"text": "\n".join(block)})


# --------------------------------------------------------------------------- JSON


_WS = re.compile(r"[ \t\n\r]*")
RECORD_KEYS = ("instruction", "output", "messages", "conversations", "text", "prompt", "completion")


def _json_rows(path: Path, start: int = 0) -> Iterator[RawRow]:
    """A JSON array of records, an object holding one such array, or an object of records.

    Parsed member by member so each record keeps the line it starts on and an error late in the
    file still leaves the records before it.
    """
    with _open(path) as f:
        data = f.read()
    if data.startswith(BOM):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    newlines = [m.start() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    bad_lines = sorted({line_of(m.start()) for m in re.finditer("[\udc80-\udcff]", text)})
    pos = _WS.match(text).end()
    if pos >= len(text):
        raise UserError(f"{path}: the file is empty", "a JSON array of records, e.g. [{\"instruction\": ..., \"output\": ...}]")
    decoder = json.JSONDecoder()
    if text[pos] == "{":
        try:
            first, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", "fix the file, or save it as JSONL (one object per line)") from None
        rest = _WS.match(text, end).end()
        if rest < len(text):
            # More than one top-level object: it is JSONL with a .json name.
            yield from _jsonl_rows(path, start)
            return
        layout = _object_layout(first)
        if layout == "records":
            items = list(_members(text, pos, decoder))
        elif layout is not None:
            key_pos = next(p for (p, _, _), k in zip(_members(text, pos, decoder), first, strict=False) if k == layout)
            items = _collect(text, key_pos, decoder, path)
        else:
            items = [(pos, end, first)]
    elif text[pos] == "[":
        items = _collect(text, pos, decoder, path)
    else:
        raise UserError(f"{path}: expected a JSON array or object, found {text[pos]!r} at line {line_of(pos)}", "a JSON array of records")
    row = 0
    for item_pos, item_end, value in items:
        if isinstance(value, _Stop):
            yield RawRow(value.line, None, value.message)
            return
        row += 1
        if row <= start:
            continue
        line = line_of(item_pos)
        if bad_lines:
            hit = [b for b in bad_lines if line <= b <= line_of(item_end)]
            if hit:
                yield RawRow(hit[0], None, "not valid UTF-8; save the file as UTF-8; row skipped")
                continue
        if isinstance(value, dict):
            yield RawRow(line, value)
        else:
            yield RawRow(line, None, f"expected a JSON object {{...}} for each record, got {type_word(value)}; row skipped")


@dataclass
class _Stop:
    line: int
    message: str


def _collect(text: str, pos: int, decoder: json.JSONDecoder, path: Path) -> list[tuple[int, int, Any]]:
    items: list[tuple[int, int, Any]] = []
    try:
        for item in _members(text, pos, decoder):
            items.append(item)
    except json.JSONDecodeError as e:
        if not items:
            raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", "fix the file, or save it as JSONL (one object per line)") from None
        items.append((e.pos, e.pos, _Stop(e.lineno, f"invalid JSON: {e.msg} (column {e.colno}); the rest of the file was not read")))
    return items


def _members(text: str, pos: int, decoder: json.JSONDecoder) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each member of the JSON array or object that opens at `pos`."""
    opener = text[pos]
    closer = "]" if opener == "[" else "}"
    pos = _WS.match(text, pos + 1).end()
    if text.startswith(closer, pos):
        return
    while True:
        if opener == "{":
            key, pos = decoder.raw_decode(text, pos)
            if not isinstance(key, str):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
            pos = _WS.match(text, pos).end()
            if not text.startswith(":", pos):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _WS.match(text, pos + 1).end()
        value, end = decoder.raw_decode(text, pos)
        yield pos, end, value
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
            continue
        if text.startswith(closer, pos):
            return
        raise json.JSONDecodeError(f"Expecting ',' delimiter or '{closer}'", text, pos)


def _object_layout(obj: dict[str, Any]) -> str | None:
    """How records sit in a top-level JSON object: "records" (an object of records), the key of
    the one array holding them, or None (the object is itself one record)."""
    if any(k in obj for k in RECORD_KEYS):
        return None
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    if len(lists) == 1:
        return lists[0]
    if obj and all(isinstance(v, dict) for v in obj.values()):
        return "records"
    return None


# --------------------------------------------------------------------------- CSV / TSV


def _csv_rows(path: Path, delimiter: str, start: int = 0) -> Iterator[RawRow]:
    """csv module rather than pyarrow: pyarrow rejects the whole file on one malformed row."""
    import csv

    with _open(path) as f:

        def decoded() -> Iterator[str]:
            first = True
            for raw in f:
                if first and raw.startswith(BOM):
                    raw = raw[3:]
                first = False
                # surrogateescape keeps bad bytes visible so the row can be reported, not the file lost
                text = raw.decode("utf-8", errors="surrogateescape")
                # CRLF files: also inside quoted multi-line cells, a line break is just "\n"
                yield text[:-2] + "\n" if text.endswith("\r\n") else text

        reader = csv.reader(decoded(), delimiter=delimiter)
        header: list[str] | None = None
        last = 0
        row = 0
        try:
            for cells in reader:
                line = last + 1
                last = reader.line_num
                if not cells or all(not c.strip() for c in cells):
                    continue
                if header is None:
                    header = [c.strip() or f"column {i + 1}" for i, c in enumerate(cells)]
                    continue
                row += 1
                if row <= start:
                    continue
                if any(_has_bad_bytes(c) for c in cells):
                    yield RawRow(line, None, "not valid UTF-8; save the file as UTF-8; row skipped")
                elif len(cells) != len(header):
                    yield RawRow(
                        line, None, f"has {len(cells)} cells but the header has {len(header)} ({', '.join(header)}); row skipped"
                    )
                else:
                    yield RawRow(line, dict(zip(header, cells, strict=True)))
        except csv.Error as e:
            yield RawRow(reader.line_num, None, f"unreadable CSV: {e}; the rest of the file was not read")


def _has_bad_bytes(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


# --------------------------------------------------------------------------- Parquet


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable Parquet file: {e}", "write it with pandas/pyarrow .to_parquet()") from None


def _parquet_rows(path: Path, start: int = 0) -> Iterator[RawRow]:
    pf = _parquet_file(path)
    meta = pf.metadata
    groups, row = [], 0
    for g in range(pf.num_row_groups):
        n = meta.row_group(g).num_rows
        if row + n <= start:
            row += n
            continue
        groups.append(g)
    if not groups:
        return
    skip = start - row
    for batch in pf.iter_batches(batch_size=1024, row_groups=groups):
        for record in batch.to_pylist():
            row += 1
            if skip > 0:
                skip -= 1
                continue
            yield RawRow(row, record)


# --------------------------------------------------------------------------- hub


_HUB_CACHE: dict[tuple[str, str], Any] = {}


def hub_dataset(name: str, split: str = "train"):
    """A hub dataset loaded through `datasets` (memory-mapped, cached on disk by `datasets`)."""
    key = (name, split or "train")
    if key in _HUB_CACHE:
        return _HUB_CACHE[key]
    import os

    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency
        raise UserError(f"dataset '{name}': the datasets package is not installed", "pip install datasets") from None
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        ds = datasets.load_dataset(name, split=key[1])
    except Exception as e:  # noqa: BLE001 - datasets raises many types; each becomes one line
        kind = type(e).__name__
        if offline:
            reason = "the hub is offline (HF_HUB_OFFLINE=1) and it is not in the local datasets cache"
        elif "NotFound" in kind or "doesn't exist" in str(e):
            reason = "no such dataset on the hub (or it is private: run `hf auth login`)"
        elif "split" in str(e).lower():
            reason = f"no split '{key[1]}' ({str(e).splitlines()[0][:200]})"
        else:
            reason = f"{kind}: {str(e).splitlines()[0][:200] if str(e) else 'the hub could not be reached'}"
        raise UserError(f"dataset '{name}' could not be loaded: {reason}", "use a local file, or check the name and your connection") from None
    _HUB_CACHE[key] = ds
    return ds


def hub_rows(name: str, split: str = "train", start: int = 0) -> Iterator[RawRow]:
    ds = hub_dataset(name, split)
    for i in range(start, len(ds)):
        yield RawRow(i + 1, dict(ds[i]))


# --------------------------------------------------------------------------- counting


def count_file_rows(path: Path, kind: str, cancel: threading.Event | None = None) -> int | None:
    """Exact number of rows of one file (None when cancelled)."""
    if kind in ("jsonl",):
        return count_lines_fast(path, cancel)
    if kind == "parquet":
        return _parquet_file(path).metadata.num_rows
    n = 0
    for n, _ in enumerate(file_rows(path, kind, 0), 1):
        if cancel is not None and n % 4096 == 0 and cancel.is_set():
            return None
    return n


def estimate_file_rows(path: Path, kind: str) -> tuple[int, bool]:
    """(rows, exact): exact for small files and Parquet; else scaled from the first megabyte."""
    if kind == "parquet":
        return _parquet_file(path).metadata.num_rows, True
    size = path.stat().st_size
    if size <= SAMPLE_BYTES or kind == "json":
        return count_file_rows(path, kind) or 0, True
    with _open(path) as f:
        sample = f.read(SAMPLE_BYTES)
    cut = sample.rfind(b"\n") + 1 or len(sample)
    sample = sample[:cut]
    if kind == "txt":
        blocks = len([b for b in re.split(rb"\r?\n[ \t]*\r?\n", sample) if b.strip()])
        return max(1, round(blocks * size / cut)), False
    rows = sum(1 for line in sample.splitlines() if line.strip())
    if kind in ("csv", "tsv"):
        rows -= 1
    return max(1, round(rows * size / cut)), False


def type_word(value: Any) -> str:
    """A JSON-ish name for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
