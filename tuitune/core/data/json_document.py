"""Reading a .json document: an array of records, an object holding one such array, or an object of
records (a file of several top-level objects is JSONL named .json and is read as such).

Parsed member by member, so each record keeps the line it starts on, an error late in the file
still leaves the records before it, and a record nested too deeply for the parser is one skipped
row rather than a rejected file.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.data.raw import (
    BOM,
    MAX_DEPTH,
    RawRow,
    nesting_depth,
    open_file,
    too_deep_problem,
    type_word,
)
from tuitune.core.errors import UserError

_WS = re.compile(r"[ \t\n\r]*")
# A JSON string (with its escapes) or one bracket: enough to find where a value too deep to parse ends.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
RECORD_KEYS = ("instruction", "output", "messages", "conversations", "text", "prompt", "completion")
FIX_HINT = "fix the file, or save it as JSONL (one object per line)"


@dataclass
class _Stop:
    line: int
    message: str


@dataclass
class _TooDeep:
    """A member the parser could not descend into; `end` is where it ends."""


def json_rows(path: Path, start: int = 0, jsonl_rows: Any = None) -> Iterator[RawRow]:
    """Every record from row `start` on. `jsonl_rows(path, start)` reads a file that turns out to be JSONL."""
    with open_file(path) as f:
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
            raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", FIX_HINT) from None
        except RecursionError:  # a member is too deep: find the records without parsing the whole
            try:
                first, end = None, _value_end(text, pos)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", FIX_HINT) from None
        rest = _WS.match(text, end).end()
        if rest < len(text):
            # More than one top-level object: it is JSONL with a .json name.
            yield from jsonl_rows(path, start)
            return
        layout = _object_layout(first) if first is not None else _layout_unparsed(text, pos, decoder)
        if layout == "records":
            items = _collect(text, pos, decoder, path)
        elif layout is not None:
            key_pos = next(p for k, (p, _, _) in _keyed_members(text, pos, decoder) if k == layout)
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
        if isinstance(value, _TooDeep) or (
            text.count("[", item_pos, item_end) + text.count("{", item_pos, item_end) > MAX_DEPTH
            and nesting_depth(value) > MAX_DEPTH
        ):
            yield RawRow(line, None, too_deep_problem())
        elif isinstance(value, dict):
            yield RawRow(line, value)
        else:
            yield RawRow(line, None, f"expected a JSON object {{...}} for each record, got {type_word(value)}; row skipped")


def _collect(text: str, pos: int, decoder: json.JSONDecoder, path: Path) -> list[tuple[int, int, Any]]:
    items: list[tuple[int, int, Any]] = []
    try:
        for item in _members(text, pos, decoder):
            items.append(item)
    except json.JSONDecodeError as e:
        if not items:
            raise UserError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}", FIX_HINT) from None
        items.append((e.pos, e.pos, _Stop(e.lineno, f"invalid JSON: {e.msg} (column {e.colno}); the rest of the file was not read")))
    return items


def _members(
    text: str, pos: int, decoder: json.JSONDecoder, keys: list[str] | None = None
) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each member of the JSON array or object that opens at `pos` (an
    object's keys are appended to `keys` when given)."""
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
            if keys is not None:
                keys.append(key)
            pos = _WS.match(text, pos).end()
            if not text.startswith(":", pos):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
            pos = _WS.match(text, pos + 1).end()
        try:
            value, end = decoder.raw_decode(text, pos)
        except RecursionError:
            value, end = _TooDeep(), _value_end(text, pos)
        yield pos, end, value
        pos = _WS.match(text, end).end()
        if text.startswith(",", pos):
            pos = _WS.match(text, pos + 1).end()
            continue
        if text.startswith(closer, pos):
            return
        raise json.JSONDecodeError(f"Expecting ',' delimiter or '{closer}'", text, pos)


def _value_end(text: str, pos: int) -> int:
    """Where the array or object opening at `pos` closes, by counting brackets outside strings."""
    depth = 0
    for m in _TOKEN.finditer(text, pos):
        token = m.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth == 0:
                return m.end()
    raise json.JSONDecodeError("Unterminated array or object", text, pos)


def _layout_unparsed(text: str, pos: int, decoder: json.JSONDecoder) -> str:
    """The layout of a top-level object too deep to parse whole: the key of its one array, else an
    object of records (members are parsed one at a time, the deep one is skipped over)."""
    try:
        arrays = [key for key, (member_pos, _, _) in _keyed_members(text, pos, decoder) if text.startswith("[", member_pos)]
    except json.JSONDecodeError:
        return "records"  # reading the records reports where the document breaks
    return arrays[0] if len(arrays) == 1 else "records"


def _keyed_members(text: str, pos: int, decoder: json.JSONDecoder) -> Iterator[tuple[str, tuple[int, int, Any]]]:
    keys: list[str] = []
    for member in _members(text, pos, decoder, keys):
        yield keys[-1], member


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
