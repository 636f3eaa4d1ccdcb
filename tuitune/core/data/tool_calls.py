"""Tool calling in rows: the tools a conversation offers and the calls the assistant makes.

Both are normalized to the shapes transformers' chat templates read (OpenAI's):
  tool:  {"type": "function", "function": {"name", "description", "parameters"}}
  call:  {"type": "function", "function": {"name", "arguments": {...}}} (+ "id" when the row has one)
Accepted in rows: a `tools` column holding a list of such schemas (or of bare {"name", ...}
functions, as LLaMA-Factory writes them), as a list or as a JSON string; OpenAI `tool_calls` on
assistant messages (arguments as a JSON string or an object) and the older `function_call`; and
sharegpt `function_call` turns whose value is the JSON of one call or a list of calls.
"""

from __future__ import annotations

import json
from typing import Any

from tuitune.core.data.raw import type_word
from tuitune.core.data.row_fields import RowFields, is_null

CALL_SHAPE = 'a tool call {"name": ..., "arguments": {...}}'


def read_tools(row: RowFields) -> list[dict[str, Any]] | None:
    """The row's `tools` column as a list of function schemas; None when absent or empty (a bad value
    makes the row unusable, with a problem naming the field)."""
    value = row.record.get("tools")
    if is_null(value) or (isinstance(value, str) and not value.strip()):
        return None
    where = f"field {row.name('tools')}"
    value = row.parsed(value, where)
    if row.unusable:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        row.fail(f"{where} is {type_word(value)}, expected a list of function schemas (JSON)")
        return None
    tools = []
    for i, tool in enumerate(value, 1):
        schema = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str) or not schema["name"].strip():
            row.fail(f"{where} item {i} is not a function schema (expected an object with a \"name\")")
            return None
        tools.append({"type": "function", "function": _without_nulls(schema)})
    return tools or None


def _without_nulls(value: Any) -> Any:
    """A schema without null members: a Parquet struct column gives every row every key seen in any
    row, absent ones as null, and a null is never a meaningful part of a JSON schema."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def read_calls(row: RowFields, value: Any, where: str) -> list[dict[str, Any]] | None:
    """Tool calls from a message's `tool_calls` (or `function_call`), or from a sharegpt
    function_call turn's value (JSON text); None and a failed row when they are not calls."""
    value = row.parsed(value, where)
    if row.unusable:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        row.fail(f"{where} is {type_word(value) if value != [] else 'an empty list'}, expected {CALL_SHAPE}")
        return None
    calls = []
    for i, item in enumerate(value, 1):
        call = _call(row, item, f"{where} call {i}" if len(value) > 1 else where)
        if call is None:
            return None
        calls.append(call)
    return calls


def _call(row: RowFields, item: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        row.fail(f"{where} is {type_word(item)}, expected {CALL_SHAPE}")
        return None
    fn = item.get("function", item)
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str) or not name.strip():
        row.fail(f"{where} has no function name (expected {CALL_SHAPE})")
        return None
    arguments = fn.get("arguments", fn.get("parameters", {}))
    if is_null(arguments):
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            row.fail(f"{where} ({name}) arguments are not valid JSON ({e.msg} at character {e.pos + 1})")
            return None
    if not isinstance(arguments, dict):
        row.fail(f"{where} ({name}) arguments are {type_word(arguments)}, expected an object")
        return None
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": arguments}}
    if isinstance(item.get("id"), str):
        call["id"] = item["id"]
    return call


def call_text(call: dict[str, Any]) -> str:
    """One call as the JSON object the fallback rendering writes: {"name": ..., "arguments": {...}}."""
    fn = call["function"]
    return json.dumps({"name": fn["name"], "arguments": fn["arguments"]}, ensure_ascii=False)


def call_summary(call: dict[str, Any]) -> str:
    """One call as a viewer shows it in a line: get_weather({"city": "Paris"})."""
    fn = call["function"]
    return f"{fn['name']}({json.dumps(fn['arguments'], ensure_ascii=False)})"


def tool_key(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
    """The tool parts of a conversation as one string, for finding duplicate rows."""
    calls = [m.get("tool_calls") for m in messages if m.get("tool_calls")]
    return json.dumps([tools, calls], sort_keys=True, ensure_ascii=False) if (tools or calls) else ""
