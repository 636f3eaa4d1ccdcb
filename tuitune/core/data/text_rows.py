"""Reading plain .txt files: one example per line, per blank-line-separated block, or the whole file.

`data.text_split`: "line" (what `datasets`' text loader does), "paragraph" (multi-line documents
stay whole), "file", or "auto": paragraphs when a blank line separates text in the first megabyte,
else lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tuitune.core.data.line_index import skip_rows
from tuitune.core.data.raw import BOM, RawRow, open_file, utf8_problem
from tuitune.core.errors import UserError

TEXT_SPLITS = ("auto", "line", "paragraph", "file")
SNIFF_BYTES = 1 << 20
_BLANK_BETWEEN = re.compile(rb"\S[ \t\r]*\n[ \t\r]*\n[ \t\r\n]*\S")


def check_text_split(text_split: str | None) -> str:
    split = (text_split or "auto").strip().lower()
    if split not in TEXT_SPLITS:
        raise UserError(f"unknown text split '{text_split}'", "one of " + ", ".join(TEXT_SPLITS))
    return split


def text_mode(path: Path, text_split: str = "auto") -> str:
    """The split a .txt file is read with: the one asked for, or for "auto" what its start looks like."""
    split = check_text_split(text_split)
    if split != "auto":
        return split
    with open_file(path) as f:
        head = f.read(SNIFF_BYTES)
    return "paragraph" if _BLANK_BETWEEN.search(head) else "line"


def txt_rows(path: Path, start: int = 0, text_split: str = "auto") -> Iterator[RawRow]:
    mode = text_mode(path, text_split)
    if mode == "line":
        return _line_rows(path, start)
    if mode == "file":
        return _file_rows(path, start)
    return _block_rows(path, start)


def _numbered(f, line: int = 0) -> Iterator[tuple[int, bytes]]:
    """(line number, the line without its BOM and line break) from the file's position on."""
    for raw in f:
        line += 1
        if line == 1 and raw.startswith(BOM):
            raw = raw[3:]
        yield line, raw.rstrip(b"\r\n")


def _line_rows(path: Path, start: int) -> Iterator[RawRow]:
    with open_file(path) as f:
        for line, raw in _numbered(f, skip_rows(f, path, start) if start else 0):
            if not raw.strip():
                continue
            try:
                yield RawRow(line, {"text": raw.decode("utf-8")})
            except UnicodeDecodeError as e:
                yield RawRow(line, None, utf8_problem(raw, e))


def _file_rows(path: Path, start: int) -> Iterator[RawRow]:
    if start > 0:
        return
    with open_file(path) as f:
        data = f.read()
    if data.startswith(BOM):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        yield RawRow(1, None, f"line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8; file skipped")
        return
    text = text.replace("\r\n", "\n").strip("\n")
    if text.strip():
        yield RawRow(1, {"text": text})


def _block_rows(path: Path, start: int) -> Iterator[RawRow]:
    """One row per block of text separated by blank lines (so multi-line documents stay whole)."""
    block: list[str] = []
    block_line = 0
    bad: str | None = None
    row = 0
    with open_file(path) as f:
        for line, raw in _numbered(f):
            if not raw.strip():
                if block_line:
                    if row >= start:
                        yield _block_row(block_line, block, bad)
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
                bad = bad or f"line {line}: " + utf8_problem(raw, e)
        if block_line and row >= start:
            yield _block_row(block_line, block, bad)


def _block_row(line: int, block: list[str], bad: str | None) -> RawRow:
    if bad:
        return RawRow(line, None, bad.replace("row skipped", "block skipped"))
    return RawRow(line, {"text": "\n".join(block)})


def estimate_text_rows(sample: bytes, mode: str) -> int:
    """Rows in a sample of a text file read with `mode`."""
    if mode == "file":
        return 1
    if mode == "paragraph":
        return len([b for b in re.split(rb"\r?\n[ \t]*\r?\n", sample) if b.strip()])
    return sum(1 for line in sample.splitlines() if line.strip())
