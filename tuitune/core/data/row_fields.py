"""Reading the fields of one row with their types checked, collecting what was wrong with them.

Where text is expected: a string is taken as it is; a number or a boolean is kept as its JSON
spelling ("42", "true") with a problem listed, since it is usually what the model should say; a
null where text is required, a list, an object or binary data make the row unusable. Field names
in messages are the user's own (the column mapping applied backwards).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tuitune.core.data.raw import MAX_DEPTH, nesting_depth, too_deep_problem, type_word

_NEEDS = {
    "alpaca": "instruction and output",
    "sharegpt": "conversations",
    "messages": "messages",
    "text": "text",
    "prompt-completion": "prompt and completion",
}


def is_null(value: Any) -> bool:
    """None, or a float NaN (how pandas writes a missing value into a Parquet column)."""
    return value is None or (type(value) is float and math.isnan(value))


def as_text(value: Any) -> tuple[str | None, str | None]:
    """(text, what was wrong): a string as it is, a number or boolean as its JSON spelling (with
    a note), anything else (None, containers, bytes) no text and why."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool) or (isinstance(value, (int, float)) and not is_null(value)):
        text = json.dumps(value)
        return text, f"is {type_word(value)} ({text}), kept as the text \"{text}\""
    if is_null(value):
        return None, "is null, expected a string"
    if isinstance(value, (list, tuple, dict, bytes, bytearray, memoryview)):
        return None, f"is {type_word(value)}, expected a string"
    text = str(value)  # a date or a decimal from a Parquet column
    return text, f"is {type_word(value)}, kept as the text \"{text[:40]}\""


class RowFields:
    """One mapped record and the problems found reading it."""

    def __init__(self, record: dict[str, Any], columns: dict[str, str]) -> None:
        self.record = record
        self.columns = columns
        self.problems: list[str] = []
        self.unusable = False

    def name(self, field: str) -> str:
        theirs = self.columns.get(field)
        return f"'{theirs}' (mapped to {field})" if theirs and theirs != field else f"'{field}'"

    def fail(self, message: str) -> None:
        self.problems.append(message + "; row skipped")
        self.unusable = True

    def warn(self, message: str) -> None:
        self.problems.append(message)

    def present(self, field: str) -> bool:
        return not is_null(self.record.get(field))

    def text(self, field: str, required: bool, fmt: str) -> str | None:
        """A text field: missing, null, empty or wrong-typed values become problems (fatal when
        required; a null optional field counts as absent)."""
        value = self.record.get(field)
        if type(value) is str:  # the common case, checked first: this runs for every field of every row
            text = value
        elif is_null(value):
            if required:
                state = "null" if field in self.record else "missing"
                self.fail(f"field {self.name(field)} is {state} ({fmt} rows need {_NEEDS.get(fmt, field)})")
            return None
        else:
            text = self._take(value, f"field {self.name(field)}")
            if text is None:
                return None
        if not text.strip():
            if required:
                self.fail(f"field {self.name(field)} is empty ({fmt} rows need {_NEEDS.get(fmt, field)})")
            return None
        return text

    def content(self, value: Any, where: str) -> str | None:
        """A turn's text (`where` names the turn); None and a failed row when it cannot be text."""
        return value if type(value) is str else self._take(value, f"{where} content")

    def _take(self, value: Any, what: str) -> str | None:
        text, wrong = as_text(value)
        if text is None:
            self.fail(f"{what} {wrong}")
        elif wrong:
            self.warn(f"{what} {wrong}")
        return text

    def listish(self, field: str) -> Any:
        """A list field; CSV and some Parquet files store it as a JSON string."""
        return self.parsed(self.record.get(field), f"field {self.name(field)}")

    def parsed(self, value: Any, where: str) -> Any:
        """`value`, or what the JSON text in it holds when it is a string that starts like a list or
        an object."""
        if not (isinstance(value, str) and value.strip()[:1] in ("[", "{")):
            return value
        brackets = value.count("[") + value.count("{")
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            self.fail(f"{where} holds invalid JSON ({e.msg} at character {e.pos + 1})")
            return None
        except RecursionError:
            self.fail(f"{where}: {too_deep_problem().removesuffix('; row skipped')}")
            return None
        if brackets > MAX_DEPTH and nesting_depth(value) > MAX_DEPTH:
            self.fail(f"{where}: {too_deep_problem().removesuffix('; row skipped')}")
            return None
        return value
