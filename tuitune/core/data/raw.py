"""What every reader shares: the raw row, opening a file, and the words problems use for values.

A row that cannot be read comes out as a RawRow with a `problem` instead of a `record`, so one bad
line never stops reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Deeper than this is never a dataset row (Python's own JSON parser gives up near 1,000 levels, and
# every later walk over the record would too): such a row is reported and skipped, the file kept.
MAX_DEPTH = 100


@dataclass
class RawRow:
    line: int
    record: dict[str, Any] | None
    problem: str | None = None
    file: str | None = None


def open_file(path: Path):
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


def utf8_problem(raw: bytes, e: UnicodeDecodeError) -> str:
    return f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line); save the file as UTF-8; row skipped"


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and objects nest in `value`, counted up to limit + 1 (iteratively: a deep
    value must not exhaust the interpreter's stack while being measured)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def too_deep_problem() -> str:
    return f"lists or objects nested more than {MAX_DEPTH} levels deep; row skipped"


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
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"binary data ({len(value):,} bytes)"
    return type(value).__name__


def shown_value(value: Any) -> Any:
    """A value as a viewer may print it: bytes and other non-JSON values (Parquet binary, dates,
    decimals) become short descriptions, so `json.dumps` and tables never fail on them."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): shown_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shown_value(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value):,} bytes>"
    return str(value)
