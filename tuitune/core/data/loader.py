"""Loading a dataset: whole (`load_examples`, for training and stats) or a page at a time
(`read_page`, for a viewer that must not freeze on a million rows).

The format is detected per file from its first rows (a folder may mix formats); every row is
normalized to messages (or text) and every problem is collected with its line, never raised.
Only a source that cannot be read at all raises UserError.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.data import readers
from tuitune.core.data.formats import (
    FORMATS,
    apply_columns,
    check_columns,
    detect_from_records,
    example_key,
    normalize,
    unknown_format_message,
)
from tuitune.core.data.records import DataPage, DataProblem, Example, LoadedData, PageRow
from tuitune.core.data.sources import Source, resolve_source
from tuitune.core.errors import UserError

DETECT_ROWS = 50  # rows of each file looked at to detect its format
MAX_PROBLEMS = 1000  # problems kept in full; beyond this they are only counted


@dataclass(frozen=True)
class _Part:
    """One file of a source (or the hub dataset)."""

    kind: str
    path: Path | None
    label: str | None  # file name shown in problems when the source is a folder


@dataclass
class _Item:
    line: int | None
    record: dict[str, Any] | None
    example: Example | None
    problems: list[str]
    file: str | None
    format: str | None
    whole_file: bool = False  # a problem about the whole file (e.g. unknown format), not a row


class ProblemList(list):
    """Keeps the first MAX_PROBLEMS problems and counts the rest, so a file of a million broken
    lines does not keep a million messages in memory."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        super().__init__()
        self.limit = limit
        self.more = 0

    def add(self, problem: DataProblem) -> None:
        if len(self) < self.limit:
            self.append(problem)
        else:
            self.more += 1

    def finish(self) -> list[DataProblem]:
        out = list(self)
        if self.more:
            out.append(DataProblem(None, f"... and {self.more} more problems not listed"))
        return out


def check_format(fmt: str | None) -> str:
    fmt = (fmt or "auto").strip().lower()
    if fmt != "auto" and fmt not in FORMATS:
        raise UserError(f"unknown data format '{fmt}'", "one of auto, " + ", ".join(FORMATS))
    return fmt


def _parts(source: Source) -> list[_Part]:
    if source.kind == "hub":
        return [_Part("hub", None, None)]
    base = source.path if source.is_folder else None
    return [_Part(kind, path, str(path.relative_to(base)) if base else None) for path, kind in source.files]


def _part_rows(source: Source, part: _Part, start: int, split: str) -> Iterator[readers.RawRow]:
    if part.kind == "hub":
        return readers.hub_rows(source.name, split, start)
    assert part.path is not None
    return readers.file_rows(part.path, part.kind, start)


def _part_count(source: Source, part: _Part, split: str, cancel: threading.Event | None = None) -> int | None:
    if part.kind == "hub":
        return len(readers.hub_dataset(source.name, split))
    assert part.path is not None
    return readers.count_file_rows(part.path, part.kind, cancel)


def _detect(source: Source, part: _Part, columns: dict[str, str], split: str) -> tuple[str | None, list[dict]]:
    if part.kind == "txt":
        return "text", []
    head: list[dict] = []
    for raw in _part_rows(source, part, 0, split):
        if raw.record is not None:
            head.append(apply_columns(raw.record, columns))
            if len(head) >= DETECT_ROWS:
                break
    return detect_from_records(head), head


def _walk(source: Source, fmt: str, columns: dict[str, str], start: int, split: str) -> Iterator[_Item]:
    """Every row from row `start` on, normalized, with its problems."""
    parts = _parts(source)
    for part in parts:
        if start > 0 and len(parts) > 1:
            n = _part_count(source, part, split)
            if n is not None and n <= start:
                start -= n
                continue
        part_fmt: str | None = fmt
        if fmt == "auto":
            part_fmt, head = _detect(source, part, columns, split)
            if part_fmt is None:
                if head:
                    msg = unknown_format_message(head) + "; file skipped"
                else:
                    msg = "no readable rows to tell the format from"
                yield _Item(None, None, None, [msg], part.label, None, whole_file=True)
                start = 0
                continue
        for raw in _part_rows(source, part, start, split):
            if raw.record is None:
                yield _Item(raw.line, None, None, [raw.problem or "unreadable row"], part.label, part_fmt)
                continue
            value, problems = normalize(raw.record, part_fmt, columns)
            example = None
            if value is not None:
                if isinstance(value, str):
                    example = Example(None, value, raw.line, part.label)
                else:
                    example = Example(value, None, raw.line, part.label)
            yield _Item(raw.line, raw.record, example, problems, part.label, part_fmt)
        start = 0


def _format_name(counts: Counter) -> str:
    """The format, or "a+b" for a folder mixing formats (in order of first appearance)."""
    if not counts:
        return "unknown"
    return "+".join(counts)


def load_examples(
    path: str | Path,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    max_samples: int = 0,
    split: str = "train",
    cancel: threading.Event | None = None,
) -> LoadedData:
    """Every usable row of a dataset, normalized; problems collected (never raised) with their lines.

    Raises UserError only when the source cannot be read at all (missing file, not UTF-8/JSON at
    all, hub unreachable). `max_samples` > 0 stops after that many usable rows.
    """
    source = resolve_source(path)
    fmt = check_format(format)
    columns = check_columns(columns)
    examples: list[Example] = []
    problems = ProblemList()
    seen: dict[int, tuple[int, str | None]] = {}
    formats: Counter = Counter()
    first_columns: list[str] = []
    rows = 0
    for item in _walk(source, fmt, columns, 0, split):
        if item.whole_file:
            for message in item.problems:
                problems.add(DataProblem(None, message, item.file))
            continue
        rows += 1
        if cancel is not None and rows % 4096 == 0 and cancel.is_set():
            break
        if item.record is not None and len(first_columns) < 64:
            for key in apply_columns(item.record, columns):
                if key not in first_columns:
                    first_columns.append(str(key))
        for message in item.problems:
            problems.add(DataProblem(item.line, message, item.file))
        ex = item.example
        if ex is None:
            continue
        formats[item.format] += 1
        key = example_key(ex.messages, ex.text)
        if key in seen:
            line, file = seen[key]
            where = f"line {line}" if file == ex.file or not file else f"{file} line {line}"
            problems.add(DataProblem(ex.line, f"duplicate of {where} (same turns)", ex.file))
        else:
            seen[key] = (ex.line, ex.file)
        examples.append(ex)
        if max_samples and len(examples) >= max_samples:
            break
    return LoadedData(_format_name(formats), examples, problems.finish(), rows, first_columns)


def read_page(
    path: str | Path,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    offset: int = 0,
    limit: int = 50,
    split: str = "train",
) -> DataPage:
    """Rows offset .. offset+limit, streamed: the first page of a million-row JSONL file reads only
    its first rows (and one megabyte to estimate the total). Duplicates need the whole file and are
    reported by load_examples only."""
    source = resolve_source(path)
    fmt = check_format(format)
    columns = check_columns(columns)
    rows: list[PageRow] = []
    page_problems: list[DataProblem] = []
    formats: Counter = Counter()
    cols: list[str] = []
    at_end = True
    walk = _walk(source, fmt, columns, max(0, offset), split)
    for item in walk:
        if item.whole_file:
            page_problems += [DataProblem(None, m, item.file) for m in item.problems]
            continue
        if len(rows) >= limit:
            at_end = False
            break
        assert item.line is not None
        if item.format:
            formats[item.format] += 1
        if item.record is not None:
            for key in item.record:
                if key not in cols:
                    cols.append(str(key))
        rows.append(
            PageRow(item.line, item.record, item.example, [DataProblem(item.line, m, item.file) for m in item.problems], item.file)
        )
    total, exact = estimate_rows(source, split)
    if at_end:
        total, exact = max(0, offset) + len(rows), True
    return DataPage(
        format=_format_name(formats) if formats else (fmt if fmt != "auto" else "unknown"),
        rows=rows,
        offset=offset,
        next_offset=offset + len(rows),
        at_end=at_end,
        total_rows=max(total, offset + len(rows)),
        total_exact=exact,
        columns=cols,
        problems=page_problems,
    )


def estimate_rows(source: Source | str | Path, split: str = "train") -> tuple[int, bool]:
    """(rows, exact) without reading a big file whole: small files are counted, big line-based
    files are estimated from their first megabyte, Parquet and hub datasets know their size."""
    if not isinstance(source, Source):
        source = resolve_source(source)
    total, exact = 0, True
    for part in _parts(source):
        if part.kind == "hub":
            n, e = len(readers.hub_dataset(source.name, split)), True
        else:
            assert part.path is not None
            n, e = readers.estimate_file_rows(part.path, part.kind)
        total += n
        exact = exact and e
    return total, exact


def count_rows(path: str | Path, split: str = "train", cancel: threading.Event | None = None) -> int | None:
    """The exact number of rows (blank lines excluded), by a full scan that does not parse JSON:
    run it in a worker. Also remembers checkpoints that make later deep pages fast.
    None when `cancel` is set before it finishes."""
    source = resolve_source(path)
    total = 0
    for part in _parts(source):
        n = _part_count(source, part, split, cancel)
        if n is None:
            return None
        total += n
    return total


__all__ = ["load_examples", "read_page", "estimate_rows", "count_rows", "check_format"]
