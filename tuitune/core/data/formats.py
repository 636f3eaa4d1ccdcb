"""Dataset formats: map the user's column names, detect the format, normalize a row to messages.

Formats (the names of `data.format`):
  alpaca             instruction, input (optional), output, system (optional), history [[q, a], ...]
  sharegpt           conversations: [{"from": human|gpt|system|function_call|observation, "value"}],
                     tools (optional)
  messages           messages: [{"role": user|assistant|system|tool, "content", "tool_calls"}] (OpenAI
                     style), tools (optional)
  text               text: a plain document, every token trained (also every .txt file)
  prompt-completion  prompt, completion (strings, or lists of messages), system (optional)
Recognized and refused as a whole file: preference data (chosen/rejected, KTO labels) and
multimodal rows (see refusals.py).

Normalizing never raises: it returns the example (or None when the row is unusable) and the
problems found, each naming the field and what was expected. Value types: see row_fields.py; turns
and tool calls: turns.py and tool_calls.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuitune.core.data.refusals import row_kind, row_kind_problem
from tuitune.core.data.row_fields import RowFields, is_null
from tuitune.core.data.tool_calls import read_tools, tool_key
from tuitune.core.data.turns import ROLE_TAGS, read_turn, read_turns, role_names
from tuitune.core.errors import UserError

FORMATS = ("alpaca", "sharegpt", "messages", "text", "prompt-completion")

# Standard field names a column mapping may target: top-level columns and, for the chat formats,
# the keys inside each message.
ROW_FIELDS = (
    "instruction", "input", "output", "system", "history", "conversations", "messages", "text", "prompt", "completion",
    "tools",
)
MESSAGE_FIELDS = ("role", "content", "from", "value")
# Not columns: the dataset's own speaker names (user_tag = "USER", ...), as LLaMA-Factory's tags.
STANDARD_FIELDS = ROW_FIELDS + MESSAGE_FIELDS + tuple(ROLE_TAGS)

FORMAT_HINT = (
    "expected columns instruction + output (alpaca), conversations (sharegpt), messages, text, or prompt + "
    "completion; choose with --format / data.format and rename with --columns / data.columns"
)


def check_columns(columns: dict[str, str] | None) -> dict[str, str]:
    """The column mapping {standard name: your column}, checked; UserError names a wrong key."""
    if not columns:
        return {}
    if not isinstance(columns, dict):
        raise UserError("data.columns must be a table of standard name = your column", 'e.g. {instruction = "question"}')
    for key, value in columns.items():
        if key not in STANDARD_FIELDS:
            import difflib

            close = difflib.get_close_matches(key, STANDARD_FIELDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"data.columns: '{key}' is not a standard field name{hint}", "one of " + ", ".join(STANDARD_FIELDS))
        if not isinstance(value, str) or not value:
            what = "a speaker name of your data" if key in ROLE_TAGS else "one of your columns"
            raise UserError(f"data.columns: {key} must name {what} (a non-empty string)", f'e.g. {key} = "my_column"')
    return dict(columns)


def parse_columns(text: str) -> dict[str, str]:
    """`instruction=question,output=answer` (the CLI's --columns) -> a mapping."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            raise UserError(f"--columns: '{part}' is not standard=yours", "e.g. --columns instruction=question,output=answer")
        key, value = (s.strip() for s in part.split("=", 1))
        out[key] = value
    return check_columns(out)


def apply_columns(record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """A copy of the record with the user's columns renamed to the standard names."""
    if not columns:
        return record
    out = dict(record)
    for std, theirs in columns.items():
        if std in MESSAGE_FIELDS or std in ROLE_TAGS:
            continue
        if theirs in record:
            out[std] = out.pop(theirs) if theirs != std else out[std]
    inner = {theirs: std for std, theirs in columns.items() if std in MESSAGE_FIELDS and theirs != std}
    if inner:
        for key in ("messages", "conversations", "prompt", "completion"):
            turns = out.get(key)
            if isinstance(turns, list):
                out[key] = [{inner.get(k, k): v for k, v in t.items()} if isinstance(t, dict) else t for t in turns]
    return out


def detect_format(record: dict[str, Any]) -> str | None:
    """The format one (mapped) record looks like, or None. Preference and multimodal rows are told
    apart by `refusals.row_kind`, not here."""
    keys = {k for k, v in record.items() if not is_null(v)}
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys or {"input", "output"} <= keys:
        return "alpaca"
    if {"prompt", "completion"} <= keys:
        return "prompt-completion"
    if "text" in keys:
        return "text"
    return None


def detect_from_records(records: list[dict[str, Any]]) -> str | None:
    """The format most of the first records look like."""
    votes: dict[str, int] = {}
    for record in records:
        fmt = detect_format(record)
        if fmt:
            votes[fmt] = votes.get(fmt, 0) + 1
    return max(votes, key=lambda k: votes[k]) if votes else None


def unknown_format_message(records: list[dict[str, Any]]) -> str:
    seen: list[str] = []
    for record in records:
        for key in record:
            if key not in seen:
                seen.append(str(key))
    cols = ", ".join(seen[:12]) or "none"
    return f"cannot tell the format: the rows have columns {cols}; {FORMAT_HINT}"


# --------------------------------------------------------------------------- normalizing


@dataclass
class NormalizedRow:
    """One record as the data layer uses it: messages (chat formats) or text, the tools offered, and
    what was wrong. `messages` and `text` are both None when the row is unusable."""

    messages: list[dict[str, Any]] | None
    text: str | None
    tools: list[dict[str, Any]] | None
    problems: list[str]


def normalize(record: dict[str, Any], fmt: str, columns: dict[str, str] | None = None) -> tuple[list | str | None, list[str]]:
    """(messages list, or the text for the text format, or None if unusable; problems)."""
    row = normalize_row(record, fmt, columns)
    return (row.text if row.text is not None else row.messages), row.problems


def normalize_row(record: dict[str, Any], fmt: str, columns: dict[str, str] | None = None) -> NormalizedRow:
    columns = columns or {}
    row = RowFields(apply_columns(record, columns), columns)
    kind = row_kind(row.record)
    if kind is not None:
        return NormalizedRow(None, None, None, [row_kind_problem(kind, row.record)])
    tools = None
    if fmt == "alpaca":
        result: Any = _alpaca(row)
    elif fmt in ("sharegpt", "messages"):
        field = "conversations" if fmt == "sharegpt" else "messages"
        if field not in row.record and ("messages" if fmt == "sharegpt" else "conversations") in row.record:
            field = "messages" if fmt == "sharegpt" else "conversations"
        result = read_turns(row, field, fmt, role_names(columns))
        result = _with_system(row, result) if result is not None else None
    elif fmt == "prompt-completion":
        result = _prompt_completion(row, role_names(columns))
    elif fmt == "text":
        result = row.text("text", True, "text")
    else:
        raise UserError(f"unknown data format '{fmt}'", "one of auto, " + ", ".join(FORMATS))
    if fmt != "text" and not row.unusable and "tools" in row.record:
        tools = read_tools(row)
    if row.unusable:
        return NormalizedRow(None, None, None, row.problems)
    if isinstance(result, str):
        return NormalizedRow(None, result, None, row.problems)
    row.problems.extend(order_problems(result))
    return NormalizedRow(result, None, tools, row.problems)


def _alpaca(row: RowFields) -> list[dict[str, str]] | None:
    instruction = row.text("instruction", False, "alpaca")
    extra = row.text("input", False, "alpaca")
    if instruction is None and extra is None:
        if row.unusable:
            return None
        state = "null" if "instruction" in row.record and row.record["instruction"] is None else (
            "empty" if "instruction" in row.record else "missing"
        )
        row.fail(f"field {row.name('instruction')} is {state} (alpaca rows need instruction and output)")
        return None
    output = row.text("output", True, "alpaca")
    system = row.text("system", False, "alpaca")
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    history = row.listish("history")
    if not is_null(history) and history != []:
        if not isinstance(history, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in history
        ):
            row.fail(f"field {row.name('history')} must be a list of [question, answer] string pairs")
            return None
        for q, a in history:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if row.unusable:
        return None
    user = "\n\n".join(part for part in (instruction, extra) if part)
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": output or ""}]
    return messages


def _with_system(row: RowFields, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A `system` column beside the turns becomes the first message, unless one is there already."""
    system = row.text("system", False, "messages")
    if system and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages


def _prompt_completion(row: RowFields, roles: dict[str, str]) -> list[dict[str, Any]] | None:
    parts: dict[str, list[dict[str, Any]]] = {}
    for field, role in (("prompt", "user"), ("completion", "assistant")):
        value = row.listish(field)
        if row.unusable:
            return None
        if isinstance(value, list):  # conversational prompt-completion (lists of messages)
            turns = [read_turn(row, field, i, t, roles) for i, t in enumerate(value, 1)]
            if row.unusable:
                return None
            if not turns:
                row.fail(f"field {row.name(field)} is empty (prompt-completion rows need prompt and completion)")
                return None
            parts[field] = [t for t in turns if t is not None]
        else:
            text = row.text(field, True, "prompt-completion")
            if text is None:
                return None
            parts[field] = [{"role": role, "content": text}]
    return _with_system(row, parts["prompt"] + parts["completion"])


_PLAIN_SHAPES = {("user", "assistant"), ("system", "user", "assistant")}


def order_problems(messages: list[dict[str, str]]) -> list[str]:
    """Turn-order problems worth a warning; the row is still used."""
    roles = [m["role"] for m in messages]
    if tuple(roles) in _PLAIN_SHAPES:
        return []  # the common single exchange, checked without the general walk
    out: list[str] = []
    for i, role in enumerate(roles[1:], 2):
        if role == "system":
            out.append(f"system message at turn {i}; only the first turn may be a system message")
    talk = [(i, "user" if r == "tool" else r) for i, r in enumerate(roles, 1) if r != "system"]
    if not talk:
        return out + ["no user or assistant turn"]
    if talk[0][1] == "assistant":
        out.append(f"the conversation starts with the assistant (turn {talk[0][0]}); expected a user turn first")
    for (i, a), (j, b) in zip(talk, talk[1:], strict=False):
        if a == b and roles[i - 1] != "tool" and roles[j - 1] != "tool":
            out.append(f"two {a} turns in a row (turns {i} and {j}); expected user and assistant to alternate")
    if "assistant" not in roles:
        out.append("no assistant turn: nothing to train on")
    elif talk[-1][1] == "user":
        out.append(f"the conversation ends on a user turn (turn {talk[-1][0]}); the last turn should be the assistant's reply")
    return out


def example_key(messages: list[dict[str, Any]] | None, text: str | None, tools: list[dict[str, Any]] | None = None) -> int:
    """A hash of a normalized row, to find duplicates (same turns and tools, whatever the key order)."""
    if text is not None:
        return hash(("text", text))
    turns = tuple((m["role"], m["content"]) for m in messages or ())
    return hash((turns, tool_key(messages or [], tools)))
