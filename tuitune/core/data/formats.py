"""Dataset formats: map the user's column names, detect the format, normalize a row to messages.

Formats (the names of `data.format`):
  alpaca             instruction, input (optional), output, system (optional), history [[q, a], ...]
  sharegpt           conversations: [{"from": human|gpt|system|function_call|observation, "value"}]
  messages           messages: [{"role": user|assistant|system|tool, "content"}] (OpenAI style)
  text               text: a plain document, every token trained (also every .txt file)
  prompt-completion  prompt, completion (strings, or lists of messages), system (optional)

Normalizing never raises: it returns the example (or None when the row is unusable) and the
problems found, each naming the field and what was expected.
"""

from __future__ import annotations

import json
from typing import Any

from tuitune.core.data.readers import type_word
from tuitune.core.errors import UserError

FORMATS = ("alpaca", "sharegpt", "messages", "text", "prompt-completion")

# Standard field names a column mapping may target: top-level columns and, for the chat formats,
# the keys inside each message.
ROW_FIELDS = ("instruction", "input", "output", "system", "history", "conversations", "messages", "text", "prompt", "completion")
MESSAGE_FIELDS = ("role", "content", "from", "value")
STANDARD_FIELDS = ROW_FIELDS + MESSAGE_FIELDS

# Speaker names seen in the wild -> the four roles chat templates know.
ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "function_call": "assistant",  # the model writes the call, so it is trained like a reply
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
}
ROLE_WORDS = "user/human, assistant/gpt, system, tool/observation, function_call"

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
            raise UserError(f"data.columns: {key} must name one of your columns (a non-empty string)", f'e.g. {key} = "my_column"')
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
        if std in MESSAGE_FIELDS:
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
    """The format one (mapped) record looks like, or None."""
    keys = {k for k, v in record.items() if v is not None}
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


class _Row:
    """Collects the problems of one row; field names shown are the user's own (mapping applied)."""

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

    def text(self, field: str, required: bool, fmt: str) -> str | None:
        """A string field: missing/empty/wrong type become problems (fatal when required)."""
        value = self.record.get(field)
        if value is None:
            if required:
                self.fail(f"field {self.name(field)} is missing ({fmt} rows need {_needs(fmt)})")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # e.g. a numeric answer: written as text, it is what the model should say
        if not isinstance(value, str):
            self.fail(f"field {self.name(field)} is {type_word(value)}, expected a string")
            return None
        if not value.strip():
            if required:
                self.fail(f"field {self.name(field)} is empty ({fmt} rows need {_needs(fmt)})")
            return None
        return value

    def listish(self, field: str) -> Any:
        """A list field; CSV and some Parquet files store it as a JSON string."""
        value = self.record.get(field)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                self.fail(f"field {self.name(field)} holds invalid JSON ({e.msg} at character {e.pos + 1})")
                return None
        return value


def _needs(fmt: str) -> str:
    return {
        "alpaca": "instruction and output",
        "sharegpt": "conversations",
        "messages": "messages",
        "text": "text",
        "prompt-completion": "prompt and completion",
    }.get(fmt, "")


def normalize(record: dict[str, Any], fmt: str, columns: dict[str, str] | None = None) -> tuple[dict | str | None, list[str]]:
    """(messages list, or the text for the text format, or None if unusable; problems)."""
    columns = columns or {}
    row = _Row(apply_columns(record, columns), columns)
    if fmt == "alpaca":
        result: Any = _alpaca(row)
    elif fmt in ("sharegpt", "messages"):
        field = "conversations" if fmt == "sharegpt" else "messages"
        if field not in row.record and ("messages" if fmt == "sharegpt" else "conversations") in row.record:
            field = "messages" if fmt == "sharegpt" else "conversations"
        result = _turns(row, field, fmt)
    elif fmt == "prompt-completion":
        result = _prompt_completion(row)
    elif fmt == "text":
        result = row.text("text", True, "text")
    else:
        raise UserError(f"unknown data format '{fmt}'", "one of auto, " + ", ".join(FORMATS))
    if row.unusable:
        return None, row.problems
    if isinstance(result, list):
        row.problems.extend(order_problems(result))
    return result, row.problems


def _alpaca(row: _Row) -> list[dict[str, str]] | None:
    instruction = row.text("instruction", False, "alpaca")
    extra = row.text("input", False, "alpaca")
    if instruction is None and extra is None:
        if row.unusable:
            return None
        row.fail(f"field {row.name('instruction')} is {'empty' if 'instruction' in row.record else 'missing'} (alpaca rows need instruction and output)")
        return None
    output = row.text("output", True, "alpaca")
    system = row.text("system", False, "alpaca")
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    history = row.listish("history")
    if history not in (None, []):
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


def _turns(row: _Row, field: str, fmt: str) -> list[dict[str, str]] | None:
    turns = row.listish(field)
    if row.unusable:
        return None
    if turns is None:
        row.fail(f"field {row.name(field)} is missing ({fmt} rows need a list of turns)")
        return None
    if not isinstance(turns, list):
        row.fail(f"field {row.name(field)} is {type_word(turns)}, expected a list of turns")
        return None
    if not turns:
        row.fail(f"field {row.name(field)} is empty (expected a list of turns)")
        return None
    messages = []
    for i, turn in enumerate(turns, 1):
        msg = _turn(row, field, i, turn)
        if msg is None:
            return None
        messages.append(msg)
    return _with_system(row, messages)


def _turn(row: _Row, field: str, i: int, turn: Any) -> dict[str, str] | None:
    where = f"{row.name(field)} turn {i}"
    if not isinstance(turn, dict):
        row.fail(f"{where} is {type_word(turn)}, expected an object with role and content (or from and value)")
        return None
    speaker = turn.get("role", turn.get("from"))
    if speaker is None:
        row.fail(f"{where} has no 'role' (or 'from')")
        return None
    role = ROLE_NAMES.get(str(speaker).strip().lower())
    if role is None:
        row.fail(f"{where} has role '{speaker}', expected one of {ROLE_WORDS}")
        return None
    content = turn.get("content", turn.get("value"))
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            row.fail(f"{where} has content parts that are not text (only text is supported)")
            return None
        content = "".join(texts)
    if content is None or (isinstance(content, str) and not content.strip()):
        if role == "assistant" and turn.get("tool_calls"):
            content = json.dumps(turn["tool_calls"], ensure_ascii=False)
        else:
            row.fail(f"{where} ({role}) has {'no' if content is None else 'empty'} 'content' (or 'value')")
            return None
    if not isinstance(content, str):
        row.fail(f"{where} content is {type_word(content)}, expected a string")
        return None
    return {"role": role, "content": content}


def _with_system(row: _Row, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A `system` column beside the turns becomes the first message, unless one is there already."""
    system = row.text("system", False, "messages")
    if system and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *messages]
    return messages


def _prompt_completion(row: _Row) -> list[dict[str, str]] | None:
    parts: dict[str, list[dict[str, str]]] = {}
    for field, role in (("prompt", "user"), ("completion", "assistant")):
        value = row.listish(field)
        if row.unusable:
            return None
        if isinstance(value, list):  # conversational prompt-completion (lists of messages)
            turns = [_turn(row, field, i, t) for i, t in enumerate(value, 1)]
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


def order_problems(messages: list[dict[str, str]]) -> list[str]:
    """Turn-order problems worth a warning; the row is still used."""
    out: list[str] = []
    roles = [m["role"] for m in messages]
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


def example_key(messages: list[dict[str, str]] | None, text: str | None) -> int:
    """A hash of a normalized row, to find duplicates (same turns, whatever the key order)."""
    if text is not None:
        return hash(("text", text))
    return hash(tuple((m["role"], m["content"]) for m in messages or ()))
