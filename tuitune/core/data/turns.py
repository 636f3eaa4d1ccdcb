"""Conversations in rows (sharegpt `conversations`, OpenAI `messages`, conversational prompt /
completion) read into messages: {"role", "content"} plus "tool_calls" on assistant turns that call
tools and "name" / "tool_call_id" on tool results when the row has them.

Speakers: the names in ROLE_NAMES, plus the dataset's own (data.columns user_tag = "USER" and so on,
as LLaMA-Factory's dataset_info.json tags say). A sharegpt `function_call` turn becomes an assistant
turn with tool calls (the model writes them, so they are trained); `observation` / `tool` turns are
tool results (never trained).
"""

from __future__ import annotations

from typing import Any

from tuitune.core.data.raw import type_word
from tuitune.core.data.refusals import media_part
from tuitune.core.data.row_fields import RowFields, is_null
from tuitune.core.data.tool_calls import read_calls

FUNCTION_CALL = "function_call"  # a speaker whose value is a tool call

# Speaker names seen in the wild -> the roles chat templates know (and the function_call speaker).
ROLE_NAMES = {
    "user": "user",
    "human": "user",
    "prompter": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "function_call": FUNCTION_CALL,
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
    "ipython": "tool",
}
ROLE_WORDS = "user/human, assistant/gpt, system, tool/observation, function_call"
# data.columns keys that name a dataset's own speakers (LLaMA-Factory's tags).
ROLE_TAGS = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
    "observation_tag": "tool",
    "function_tag": FUNCTION_CALL,
}


def role_names(columns: dict[str, str]) -> dict[str, str]:
    """ROLE_NAMES with the dataset's own speaker names (data.columns user_tag = ... and so on)."""
    tags = {value.strip().lower(): ROLE_TAGS[key] for key, value in columns.items() if key in ROLE_TAGS}
    return {**ROLE_NAMES, **tags} if tags else ROLE_NAMES


def read_turns(row: RowFields, field: str, fmt: str, roles: dict[str, str]) -> list[dict[str, Any]] | None:
    turns = row.listish(field)
    if row.unusable:
        return None
    if is_null(turns):
        state = "null" if field in row.record else "missing"
        row.fail(f"field {row.name(field)} is {state} ({fmt} rows need a list of turns)")
        return None
    if not isinstance(turns, list):
        row.fail(f"field {row.name(field)} is {type_word(turns)}, expected a list of turns")
        return None
    if not turns:
        row.fail(f"field {row.name(field)} is empty (expected a list of turns)")
        return None
    messages = []
    for i, turn in enumerate(turns, 1):
        msg = read_turn(row, field, i, turn, roles)
        if msg is None:
            return None
        messages.append(msg)
    return messages


def read_turn(row: RowFields, field: str, i: int, turn: Any, roles: dict[str, str]) -> dict[str, Any] | None:
    where = f"{row.name(field)} turn {i}"
    if not isinstance(turn, dict):
        row.fail(f"{where} is {type_word(turn)}, expected an object with role and content (or from and value)")
        return None
    speaker = turn.get("role", turn.get("from"))
    if is_null(speaker):
        row.fail(f"{where} has no 'role' (or 'from')")
        return None
    role = roles.get(str(speaker).strip().lower()) if isinstance(speaker, str) else None
    if role is None:
        own = [k for k in roles if k not in ROLE_NAMES]
        words = ROLE_WORDS + (", " + ", ".join(own) if own else "")
        row.fail(f"{where} has role {speaker!r}, expected one of {words}")
        return None
    content = turn["content"] if "content" in turn else turn.get("value")
    if role == FUNCTION_CALL:
        calls = read_calls(row, content, f"{where} ({speaker})")
        return None if calls is None else {"role": "assistant", "content": "", "tool_calls": calls}
    calls = None
    raw_calls = turn.get("tool_calls") if not is_null(turn.get("tool_calls")) else turn.get("function_call")
    if role == "assistant" and not is_null(raw_calls) and raw_calls != []:
        calls = read_calls(row, raw_calls, f"{where} tool_calls")
        if calls is None:
            return None
    text = _content(row, where, role, content, calls is not None)
    if text is None:
        return None
    message: dict[str, Any] = {"role": role, "content": text}
    if calls:
        message["tool_calls"] = calls
    if role == "tool":
        for key in ("name", "tool_call_id"):
            if isinstance(turn.get(key), str):
                message[key] = turn[key]
    return message


def _content(row: RowFields, where: str, role: str, content: Any, has_calls: bool) -> str | None:
    if isinstance(content, list):  # OpenAI content parts: text ones are read, media refused
        media = media_part(content)
        if media:
            row.fail(f"{where} has a content part of type '{media}': only text is supported")
            return None
        texts = [_part_text(p) for p in content]
        if not all(isinstance(t, str) for t in texts):
            row.fail(f"{where} has content parts that are not text (expected {{\"type\": \"text\", \"text\": ...}})")
            return None
        content = "".join(texts)  # type: ignore[arg-type]
    if is_null(content) or (isinstance(content, str) and not content.strip()):
        if has_calls:
            return ""  # an assistant turn that only calls tools
        row.fail(f"{where} ({role}) has {'no' if is_null(content) else 'empty'} 'content' (or 'value')")
        return None
    return row.content(content, where)


def _part_text(part: Any) -> str | None:
    if not isinstance(part, dict) or part.get("type", "text") != "text":
        return None
    text = part.get("text", part.get("value"))
    return text if isinstance(text, str) else None
