"""How conversations with tools reach the chat template.

Native: when the model's template renders tools, tool calls and tool results (checked once per
template by rendering a probe conversation and looking for its marker strings), rows go to it as
they are, with `apply_chat_template(..., tools=...)`: the model is trained on the exact format it
will be prompted with.

Fallback (documented in README, said once in the preview and the training log), for templates that
ignore tools (most small models, and the named templates chatml, llama3, alpaca, zephyr, plain):
  - the tools become a "# Tools" block at the end of the system message (one is added if the row
    has none), each schema as one line of JSON inside <tools></tools>;
  - an assistant turn's calls are written after its text, each as
    <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>;
  - consecutive tool results become one user turn, each result inside <tool_response></tool_response>.
The tags are the ones Hermes- and Qwen-style tool models use, so a model tuned this way answers in a
format common tool-calling clients parse. Either way tool calls are trained like replies and tool
results never are.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tuitune.core.data.tool_calls import call_text

_PROBE_TOOL = "tuitune_probe_tool_q7"
_PROBE_CALL = "tuitune_probe_call_k3"
_PROBE_ARGUMENT = "tuitune_probe_argument_x9"
_PROBE_RESULT = "tuitune_probe_result_m5"
_PROBE_MESSAGES = [
    {"role": "user", "content": "Use the tool."},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "id": "call00001", "function": {"name": _PROBE_CALL, "arguments": {"q": _PROBE_ARGUMENT}}}
        ],
    },
    {"role": "tool", "content": _PROBE_RESULT, "tool_call_id": "call00001", "name": _PROBE_CALL},
    {"role": "assistant", "content": "Done."},
]
_PROBE_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": _PROBE_TOOL,
            "description": "A probe.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        },
    }
]

_cache: dict[str, bool] = {}
_lock = threading.Lock()

FALLBACK_NOTE = (
    "tools: the chat template does not render tools and tool calls, so they are written in tuitune's "
    "fallback format (a # Tools block in the system message, <tool_call> and <tool_response> tags); "
    "prompt the tuned model the same way"
)
NATIVE_NOTE = "tools: rendered by the model's own chat template (tools=...)"


def uses_tools(messages: list[dict[str, Any]] | None, tools: list[dict[str, Any]] | None) -> bool:
    return bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages or ())


def renders_tools(tokenizer: Any, jinja: str | None) -> bool:
    """Whether this template (None: the tokenizer's own) shows tools, tool calls and tool results."""
    template = jinja if jinja is not None else getattr(tokenizer, "chat_template", None)
    if not isinstance(template, str) or not template:
        return False
    with _lock:
        if template in _cache:
            return _cache[template]
    try:
        text = tokenizer.apply_chat_template(_PROBE_MESSAGES, tools=_PROBE_TOOLS, chat_template=jinja, tokenize=False)
        native = all(marker in text for marker in (_PROBE_TOOL, _PROBE_CALL, _PROBE_ARGUMENT, _PROBE_RESULT))
    except Exception:  # noqa: BLE001 - a template that rejects the probe cannot take tool rows either
        native = False
    with _lock:
        _cache[template] = native
    return native


def fallback_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """The conversation as plain system / user / assistant turns, tools written in the fallback format."""
    out: list[dict[str, str]] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "tool":
            result = f"<tool_response>\n{content}\n</tool_response>"
            if out and out[-1].get("_results"):
                out[-1]["content"] += "\n" + result
            else:
                out.append({"role": "user", "content": result, "_results": "1"})
            continue
        if message.get("tool_calls"):
            calls = "\n".join(f"<tool_call>\n{call_text(c)}\n</tool_call>" for c in message["tool_calls"])
            content = f"{content}\n{calls}" if content.strip() else calls
        out.append({"role": role, "content": content})
    for message in out:
        message.pop("_results", None)
    if tools:
        block = tools_block(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{block}"}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def tools_block(tools: list[dict[str, Any]]) -> str:
    schemas = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return (
        "# Tools\n\n"
        "You may call the functions described below, one JSON schema per line inside <tools></tools>:\n"
        f"<tools>\n{schemas}\n</tools>\n\n"
        "To call one, answer with a JSON object of its name and arguments inside <tool_call></tool_call>:\n"
        '<tool_call>\n{"name": "<function name>", "arguments": {"<argument>": "<value>"}}\n</tool_call>\n'
        "Each result comes back inside <tool_response></tool_response>."
    )


def tools_note(examples: Any, tokenizer: Any, jinja: str | None) -> str | None:
    """One line for the preview and the training log when rows use tools: native or fallback."""
    if not any(uses_tools(ex.messages, ex.tools) for ex in examples):
        return None
    return NATIVE_NOTE if renders_tools(tokenizer, jinja) else FALLBACK_NOTE
