"""Reading .csv and .tsv files: a header row, then one record per row, each with the line it starts on.

The csv module rather than pyarrow: pyarrow rejects the whole file on one malformed row. The csv
module, lenient as it is, reads a quote that is never closed as a cell running to the end of the
file (a thousand rows become one). So a record spanning several lines is checked again strictly;
when its quoting is broken, that row is reported with its line and reading starts again on the
next line, as though the stray quote were not there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from tuitune.core.data.raw import BOM, RawRow, open_file


class _Feed:
    """Lines for csv.reader that remembers the lines of the record being read, and can take lines
    back to be read again."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.again: list[str] = []  # read back before `lines`, last first
        self.record: list[str] = []

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else next(self.lines)
        self.record.append(line)
        return line


def _decoded(f) -> Iterator[str]:
    first = True
    for raw in f:
        if first and raw.startswith(BOM):
            raw = raw[3:]
        first = False
        # surrogateescape keeps bad bytes visible so the row can be reported, not the file lost
        text = raw.decode("utf-8", errors="surrogateescape")
        # CRLF files: also inside quoted multi-line cells, a line break is just "\n"
        yield text[:-2] + "\n" if text.endswith("\r\n") else text


def _quoting_broken(lines: list[str], delimiter: str) -> bool:
    try:
        list(csv.reader(io.StringIO("".join(lines)), delimiter=delimiter, strict=True))
    except csv.Error:
        return True
    return False


def csv_rows(path: Path, delimiter: str, start: int = 0) -> Iterator[RawRow]:
    csv.field_size_limit(2**31 - 1)  # the default (128 KiB) would stop reading at the first long document
    with open_file(path) as f:
        feed = _Feed(_decoded(f))
        header: list[str] | None = None
        before = 0  # physical lines before the record being read
        row = 0
        while True:
            reader = csv.reader(feed, delimiter=delimiter)
            again = False
            try:
                for cells in reader:
                    lines, feed.record = feed.record, []
                    line = before + 1
                    before += len(lines)
                    if not cells or all(not c.strip() for c in cells):
                        continue
                    if header is not None and len(lines) > 1 and _quoting_broken(lines, delimiter):
                        feed.again.extend(reversed(lines[1:]))
                        before = line
                        again = True
                        row += 1
                        if row > start:
                            yield RawRow(line, None, _unclosed_quote(line, line + len(lines) - 1))
                        break
                    if header is None:
                        header = [c.strip() or f"column {i + 1}" for i, c in enumerate(cells)]
                        continue
                    row += 1
                    if row <= start:
                        continue
                    yield _record(line, lines, cells, header)
            except csv.Error as e:
                yield RawRow(before + 1, None, f"unreadable CSV: {e}; the rest of the file was not read")
                return
            if not again:
                return


def _unclosed_quote(line: int, last: int) -> str:
    return (
        f'a quote (") opened in this row is not closed properly, so lines {line}-{last} would run together '
        "as one cell; quote the cell on both sides (a quote inside a cell is written twice: \"\"); row skipped"
    )


def _record(line: int, lines: list[str], cells: list[str], header: list[str]) -> RawRow:
    if any(_has_bad_bytes(c) for c in cells):
        return RawRow(line, None, "not valid UTF-8; save the file as UTF-8; row skipped")
    if len(cells) != len(header):
        spans = f" (lines {line}-{line + len(lines) - 1} were read as one row)" if len(lines) > 1 else ""
        return RawRow(line, None, f"has {len(cells)} cells but the header has {len(header)} ({', '.join(header)}){spans}; row skipped")
    return RawRow(line, dict(zip(header, cells, strict=True)))


def _has_bad_bytes(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)
