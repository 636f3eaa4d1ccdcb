"""Reading raw rows from each kind of source, streamed, each row tagged with where it starts.

A row that cannot be read (invalid JSON, invalid UTF-8, a CSV row with the wrong number of cells,
a record nested too deeply) comes out as a RawRow with a `problem` instead of a `record`, so a
broken line never stops reading. Rows are counted without blank lines; `start` skips that many
rows cheaply (without parsing them).

JSONL and TXT are read line by line by hand rather than through `datasets`: `datasets` reads the
whole file into Arrow before returning anything (seconds to minutes for a big file) and fails the
whole file on one bad line, while a viewer needs the first page at once and every error with its
line number. Parquet is read with pyarrow, batch by batch; hub datasets through `datasets`.
The other kinds have a module each: json_document, csv_rows, text_rows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuitune.core.data.csv_rows import csv_rows
from tuitune.core.data.json_document import json_rows
from tuitune.core.data.line_index import count_lines_fast, row_at_physical_line, skip_rows
from tuitune.core.data.raw import (
    BOM,
    MAX_DEPTH,
    RawRow,
    nesting_depth,
    open_file,
    too_deep_problem,
    type_word,
    utf8_problem,
)
from tuitune.core.data.text_rows import estimate_text_rows, text_mode, txt_rows
from tuitune.core.errors import UserError

SAMPLE_BYTES = 1 << 20  # bytes read to estimate the row count of a big file

__all__ = ["RawRow", "type_word", "file_rows", "hub_rows", "hub_dataset", "count_file_rows", "estimate_file_rows"]


# --------------------------------------------------------------------------- dispatch


def file_rows(path: Path, kind: str, start: int = 0, text_split: str = "auto") -> Iterator[RawRow]:
    """Every row of one local file from row `start` (0-based) on."""
    if kind == "jsonl":
        return _jsonl_rows(path, start)
    if kind == "json":
        return json_rows(path, start, _jsonl_rows)
    if kind in ("csv", "tsv"):
        return csv_rows(path, "\t" if kind == "tsv" else ",", start)
    if kind == "parquet":
        return _parquet_rows(path, start)
    if kind == "txt":
        return txt_rows(path, start, text_split)
    raise UserError(f"{path}: unsupported file type", "use .jsonl, .json, .csv, .tsv, .parquet or .txt")


# --------------------------------------------------------------------------- JSONL


def _jsonl_rows(path: Path, start: int = 0) -> Iterator[RawRow]:
    with open_file(path) as f:
        line = skip_rows(f, path, start) if start else 0
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
                yield RawRow(line, None, utf8_problem(raw, e))
                continue
            try:
                obj = loads(text)
            except json.JSONDecodeError as e:
                yield RawRow(line, None, f"invalid JSON: {e.msg} (column {e.colno}); row skipped")
                continue
            except RecursionError:
                yield RawRow(line, None, too_deep_problem())
                continue
            if not isinstance(obj, dict):
                yield RawRow(line, None, f"expected a JSON object {{...}} on each line, got {type_word(obj)}; row skipped")
            elif raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and nesting_depth(obj) > MAX_DEPTH:
                yield RawRow(line, None, too_deep_problem())
            else:
                yield RawRow(line, obj)


def jsonl_row_at_line(path: Path, line: int) -> int:
    """The 0-based row starting at physical `line` of a line-based file (see line_index)."""
    return row_at_physical_line(path, line)


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


def count_file_rows(path: Path, kind: str, cancel: threading.Event | None = None, text_split: str = "auto") -> int | None:
    """Exact number of rows of one file (None when cancelled)."""
    if kind == "jsonl" or (kind == "txt" and text_mode(path, text_split) == "line"):
        return count_lines_fast(path, cancel)
    if kind == "parquet":
        return _parquet_file(path).metadata.num_rows
    n = 0
    for n, _ in enumerate(file_rows(path, kind, 0, text_split), 1):
        if cancel is not None and n % 4096 == 0 and cancel.is_set():
            return None
    return n


def estimate_file_rows(path: Path, kind: str, text_split: str = "auto") -> tuple[int, bool]:
    """(rows, exact): exact for small files and Parquet; else scaled from the first megabyte."""
    if kind == "parquet":
        return _parquet_file(path).metadata.num_rows, True
    size = path.stat().st_size
    if size <= SAMPLE_BYTES or kind == "json":
        return count_file_rows(path, kind, text_split=text_split) or 0, True
    if kind == "txt" and text_mode(path, text_split) == "file":
        return 1, True
    with open_file(path) as f:
        sample = f.read(SAMPLE_BYTES)
    cut = sample.rfind(b"\n") + 1 or len(sample)
    sample = sample[:cut]
    if kind == "txt":
        return max(1, round(estimate_text_rows(sample, text_mode(path, text_split)) * size / cut)), False
    rows = sum(1 for line in sample.splitlines() if line.strip())
    if kind in ("csv", "tsv"):
        rows -= 1
    return max(1, round(rows * size / cut)), False
