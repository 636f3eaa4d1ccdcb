"""Loading a dataset: whole (`load_examples`, for training and stats) or a page at a time
(`read_page`, for a viewer that must not freeze on a million rows).

The format is detected per file from its first rows (a folder may mix formats); every row is
normalized to messages (or text) and every problem is collected with its line, never raised.
Only a source that cannot be read at all raises UserError.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.data import readers
from tuitune.core.data.dataset_info import INFO_NAME, DatasetEntry, info_file, list_entries, resolve_entry
from tuitune.core.data.formats import (
    FORMATS,
    apply_columns,
    check_columns,
    detect_from_records,
    example_key,
    normalize_row,
    unknown_format_message,
)
from tuitune.core.data.records import DataPage, DataProblem, DataScan, Example, LoadedData, PageRow
from tuitune.core.data.refusals import file_kind_message, majority_kind
from tuitune.core.data.sources import Source, resolve_source
from tuitune.core.data.text_rows import check_text_split, text_mode
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
    note: str | None = None  # how the file was read (e.g. a text file's split), not a problem


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


@dataclass(frozen=True)
class OpenedSource:
    """What a path (and data.dataset) names, with the format and columns to read it with."""

    source: Source
    format: str
    columns: dict[str, str]
    text_split: str
    entry: DatasetEntry | None = None


def open_source(
    path: str | Path, format: str = "auto", columns: dict[str, str] | None = None, dataset: str = "", text_split: str = "auto"
) -> OpenedSource:
    """Resolve a source: a file, folder or hub name, or with `dataset` an entry of LLaMA-Factory's
    dataset_info.json (its format and columns, then data.format / data.columns on top). A folder
    holding a dataset_info.json without `dataset` is refused with the entries to choose from."""
    fmt = check_format(format)
    columns = check_columns(columns)
    text_split = check_text_split(text_split)
    if dataset:
        entry = resolve_entry(path, dataset)
        fmt = entry.format if fmt == "auto" else fmt
        return OpenedSource(resolve_source(entry.path), fmt, {**entry.columns, **columns}, text_split, entry)
    info = info_file(path)
    if info is not None:
        usable = [e.name for e in list_entries(info) if e.usable]
        raise UserError(
            f"{path} is a LLaMA-Factory data folder ({INFO_NAME}): choose one of its datasets",
            "set data.dataset (or --dataset) to one of: " + (", ".join(usable[:20]) or "(no usable entry)"),
        )
    return OpenedSource(resolve_source(path), fmt, columns, text_split)


def _parts(source: Source) -> list[_Part]:
    if source.kind == "hub":
        return [_Part("hub", None, None)]
    base = source.path if source.is_folder else None
    return [_Part(kind, path, str(path.relative_to(base)) if base else None) for path, kind in source.files]


def _part_rows(opened: OpenedSource, part: _Part, start: int, split: str) -> Iterator[readers.RawRow]:
    if part.kind == "hub":
        return readers.hub_rows(opened.source.name, split, start)
    assert part.path is not None
    return readers.file_rows(part.path, part.kind, start, opened.text_split)


def _part_count(opened: OpenedSource, part: _Part, split: str, cancel: threading.Event | None = None) -> int | None:
    if part.kind == "hub":
        return len(readers.hub_dataset(opened.source.name, split))
    assert part.path is not None
    return readers.count_file_rows(part.path, part.kind, cancel, opened.text_split)


def _head(opened: OpenedSource, part: _Part, split: str) -> list[dict]:
    head: list[dict] = []
    for raw in _part_rows(opened, part, 0, split):
        if raw.record is not None:
            head.append(apply_columns(raw.record, opened.columns))
            if len(head) >= DETECT_ROWS:
                break
    return head


TEXT_MODE_NOTES = {
    "line": "plain text: one example per line",
    "paragraph": "plain text: one example per blank-line-separated block",
    "file": "plain text: one example per file",
}


def _walk(opened: OpenedSource, start: int, split: str) -> Iterator[_Item]:
    """Every row from row `start` on, normalized, with its problems."""
    fmt, columns = opened.format, opened.columns
    parts = _parts(opened.source)
    for part in parts:
        if start > 0 and len(parts) > 1:
            n = _part_count(opened, part, split)
            if n is not None and n <= start:
                start -= n
                continue
        part_fmt: str | None = fmt
        if part.kind == "txt":
            assert part.path is not None
            part_fmt = "text" if fmt == "auto" else fmt
            note = TEXT_MODE_NOTES[text_mode(part.path, opened.text_split)] + f" (data.text_split = {opened.text_split})"
            yield _Item(None, None, None, [], part.label, part_fmt, whole_file=True, note=note)
        else:
            head = _head(opened, part, split)
            kind = majority_kind(head)
            if kind is not None:
                yield _Item(None, None, None, [file_kind_message(kind, head)], part.label, None, whole_file=True)
                start = 0
                continue
            if fmt == "auto":
                part_fmt = detect_from_records(head)
            if part_fmt is None:
                msg = unknown_format_message(head) + "; file skipped" if head else "no readable rows to tell the format from"
                yield _Item(None, None, None, [msg], part.label, None, whole_file=True)
                start = 0
                continue
        for raw in _part_rows(opened, part, start, split):
            if raw.record is None:
                yield _Item(raw.line, None, None, [raw.problem or "unreadable row"], part.label, part_fmt)
                continue
            row = normalize_row(raw.record, part_fmt, columns)
            example = None
            if row.text is not None:
                example = Example(None, row.text, raw.line, part.label)
            elif row.messages is not None:
                example = Example(row.messages, None, raw.line, part.label, row.tools)
            yield _Item(raw.line, raw.record, example, row.problems, part.label, part_fmt)
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
    *,
    dataset: str = "",
    text_split: str = "auto",
) -> LoadedData:
    """Every usable row of a dataset, normalized; problems collected (never raised) with their lines.

    Raises UserError only when the source cannot be read at all (missing file, not UTF-8/JSON at
    all, hub unreachable, an unusable dataset_info.json entry). `max_samples` > 0 stops after that
    many usable rows. `dataset`: an entry of the dataset_info.json at `path`; `text_split`: how .txt
    files are cut into examples (auto, line, paragraph, file).
    """
    scan = _scan(path, format, columns, split, keep=None, max_samples=max_samples, cancel=cancel, dataset=dataset, text_split=text_split)
    return LoadedData(scan.format, scan.sample, scan.problems, scan.rows, scan.columns, scan.notes)


def scan_examples(
    path: str | Path,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    split: str = "train",
    sample: int = 0,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    dataset: str = "",
    text_split: str = "auto",
) -> DataScan:
    """Check every row of a dataset (problems, duplicates, usable count) keeping only the first
    `sample` usable rows: a viewer's whole-file check of a million rows without holding them all.

    `progress(rows_read)` is called every few thousand rows; `cancel` stops the scan early (the
    result then says `cancelled` and covers the rows read so far). UserError as load_examples."""
    return _scan(
        path, format, columns, split, keep=sample, max_samples=0, cancel=cancel, progress=progress, dataset=dataset, text_split=text_split
    )


PROGRESS_EVERY = 4096  # rows between cancel checks and progress calls


def _scan(
    path: str | Path,
    format: str,
    columns: dict[str, str] | None,
    split: str,
    keep: int | None,
    max_samples: int,
    cancel: threading.Event | None,
    progress: Callable[[int], None] | None = None,
    dataset: str = "",
    text_split: str = "auto",
) -> DataScan:
    """The one pass behind load_examples and scan_examples. keep=None keeps every usable row."""
    opened = open_source(path, format, columns, dataset, text_split)
    examples: list[Example] = []
    problems = ProblemList()
    notes: list[str] = []
    seen: dict[int, tuple[int, str | None]] = {}
    formats: Counter = Counter()
    first_columns: list[str] = []
    rows = usable = 0
    cancelled = False
    for item in _walk(opened, 0, split):
        if item.whole_file:
            if item.note and item.note not in notes:
                notes.append(item.note)
            for message in item.problems:
                problems.add(DataProblem(None, message, item.file))
            continue
        rows += 1
        if rows % PROGRESS_EVERY == 0:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if progress is not None:
                progress(rows)
        if item.record is not None and rows <= DETECT_ROWS:
            for key in apply_columns(item.record, opened.columns):
                if key not in first_columns:
                    first_columns.append(str(key))
        for message in item.problems:
            problems.add(DataProblem(item.line, message, item.file))
        ex = item.example
        if ex is None:
            continue
        formats[item.format] += 1
        key = example_key(ex.messages, ex.text, ex.tools)
        if key in seen:
            line, file = seen[key]
            where = f"line {line}" if file == ex.file or not file else f"{file} line {line}"
            problems.add(DataProblem(ex.line, f"duplicate of {where} (same turns)", ex.file))
        else:
            seen[key] = (ex.line, ex.file)
        usable += 1
        if keep is None or len(examples) < keep:
            examples.append(ex)
        if max_samples and usable >= max_samples:
            break
    return DataScan(_format_name(formats), examples, problems.finish(), rows, usable, first_columns, cancelled, notes)


def read_page(
    path: str | Path,
    format: str = "auto",
    columns: dict[str, str] | None = None,
    offset: int = 0,
    limit: int = 50,
    split: str = "train",
    *,
    dataset: str = "",
    text_split: str = "auto",
) -> DataPage:
    """Rows offset .. offset+limit, streamed: the first page of a million-row JSONL file reads only
    its first rows (and one megabyte to estimate the total). Duplicates need the whole file and are
    reported by load_examples only."""
    opened = open_source(path, format, columns, dataset, text_split)
    fmt = opened.format
    rows: list[PageRow] = []
    page_problems: list[DataProblem] = []
    notes: list[str] = []
    formats: Counter = Counter()
    cols: list[str] = []
    at_end = True
    walk = _walk(opened, max(0, offset), split)
    for item in walk:
        if item.whole_file:
            page_problems += [DataProblem(None, m, item.file) for m in item.problems]
            if item.note and item.note not in notes:
                notes.append(item.note)
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
    total, exact = _estimate(opened, split)
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
        notes=notes,
        dataset=opened.entry.name if opened.entry else "",
    )


def estimate_rows(
    source: Source | str | Path, split: str = "train", *, dataset: str = "", text_split: str = "auto"
) -> tuple[int, bool]:
    """(rows, exact) without reading a big file whole: small files are counted, big line-based
    files are estimated from their first megabyte, Parquet and hub datasets know their size."""
    if isinstance(source, Source):
        opened = OpenedSource(source, "auto", {}, check_text_split(text_split))
    else:
        opened = open_source(source, dataset=dataset, text_split=text_split)
    return _estimate(opened, split)


def _estimate(opened: OpenedSource, split: str) -> tuple[int, bool]:
    total, exact = 0, True
    for part in _parts(opened.source):
        if part.kind == "hub":
            n, e = len(readers.hub_dataset(opened.source.name, split)), True
        else:
            assert part.path is not None
            n, e = readers.estimate_file_rows(part.path, part.kind, opened.text_split)
        total += n
        exact = exact and e
    return total, exact


def count_rows(
    path: str | Path, split: str = "train", cancel: threading.Event | None = None, *, dataset: str = "", text_split: str = "auto"
) -> int | None:
    """The exact number of rows (blank lines excluded), by a full scan that does not parse JSON:
    run it in a worker. Also remembers checkpoints that make later deep pages fast.
    None when `cancel` is set before it finishes."""
    opened = open_source(path, dataset=dataset, text_split=text_split)
    total = 0
    for part in _parts(opened.source):
        n = _part_count(opened, part, split, cancel)
        if n is None:
            return None
        total += n
    return total


def row_at_line(
    path: str | Path, line: int, file: str | None = None, split: str = "train", *, dataset: str = "", text_split: str = "auto"
) -> int | None:
    """The 0-based row (as read_page's offset counts) of the row starting at `line` of `file` (a
    folder's file as problems name it; None for a single file), or None when there is no such line.
    Problems name lines; a viewer pages by rows, and blank lines or multi-line records make the two
    differ. JSONL (and one-per-line text) is counted without parsing (and seeks from remembered offsets)."""
    opened = open_source(path, dataset=dataset, text_split=text_split)
    before = 0
    for part in _parts(opened.source):
        if part.kind == "hub":
            return line - 1 if line >= 1 else None
        assert part.path is not None
        if file is not None and part.label != file:
            n = _part_count(opened, part, split)
            before += n or 0
            continue
        if part.kind == "jsonl" or (part.kind == "txt" and text_mode(part.path, opened.text_split) == "line"):
            row = readers.jsonl_row_at_line(part.path, line)
            n = readers.count_file_rows(part.path, part.kind, text_split=opened.text_split) or 0
            return before + row if row < n else None
        for row, raw in enumerate(readers.file_rows(part.path, part.kind, 0, opened.text_split)):
            if raw.line >= line:
                return before + row
        return None
    return None


__all__ = [
    "load_examples", "scan_examples", "read_page", "estimate_rows", "count_rows", "row_at_line", "check_format", "open_source",
    "OpenedSource",
]
