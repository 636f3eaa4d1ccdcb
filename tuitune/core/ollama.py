"""An Ollama Modelfile for an exported GGUF: FROM, TEMPLATE, SYSTEM, stops and sampling defaults.

The TEMPLATE is translated from the chat template the run was trained with, by rendering probe
conversations through it (Jinja, as transformers does) and reading what it writes between the
messages (`Transitions`). That covers the turn-based families (chatml, qwen with its default
system prompt, llama-3, mistral, phi-3, zephyr, alpaca, tuitune's plain) and templates that fold
the system prompt into the first user turn (gemma, llama-2). The translation is then checked: several conversations rendered through the
Modelfile TEMPLATE (with Ollama's rules, by tuitune.core.go_template) must equal the chat
template's rendering, or the export refuses to write a Modelfile that would prompt differently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

SYSTEM_PROBE = "TUITUNESYSTEMPROBE"
USER_PROBES = ("TUITUNEUSERONE", "TUITUNEUSERTWO")
REPLY_PROBE = "TUITUNEREPLYONE"
# tuitune chat's defaults (core.chat.GenerationSettings), so Ollama samples as `tuitune chat` does.
SAMPLING = {"temperature": 0.7, "top_p": 0.9}

CHECK_CONVERSATIONS = (
    [{"role": "user", "content": "Who are you?"}],
    [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And times 3?\nShow it."},
    ],
    [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Teal."},
        {"role": "user", "content": "Another one."},
    ],
)


@dataclass(frozen=True)
class Transitions:
    """What a chat template writes between the contents of consecutive messages.

    A conversation renders as: start (before the first message: bos, a default system prompt, the
    first turn's opening), then each message's content preceded by the text that follows the
    previous role, and `generation` after a last user message. Templates that fold the system prompt
    into the first user turn (gemma, llama-2) are the case where `system_to_user` is a separator.
    """

    bos: str
    start_user: str
    start_system: str | None  # None: the template has no system role
    system_to_user: str
    user_to_assistant: str
    assistant_to_user: str
    generation: str  # after the last user message, to prompt a reply


@dataclass(frozen=True)
class ModelfilePlan:
    template: str  # the Go template
    system: str
    stops: tuple[str, ...]
    bos_from_gguf: bool  # the bos token is added by llama.cpp, not written by the TEMPLATE


def _render(tokenizer: Any, jinja: str, messages: list[dict[str, str]], gen: bool) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=jinja, tokenize=False, add_generation_prompt=gen)


def _between(text: str, *marks: str) -> list[str]:
    """text split at each mark in order: len(marks) + 1 pieces; ValueError if a mark is missing."""
    pieces, rest = [], text
    for mark in marks:
        head, found, rest = rest.partition(mark)
        if not found:
            raise ValueError(f"{mark} missing from the rendering")
        pieces.append(head)
    return [*pieces, rest]


def read_transitions(tokenizer: Any, jinja: str) -> Transitions:
    """Render probe conversations through `jinja` and read what it writes between messages."""
    s, (u1, u2), a1 = SYSTEM_PROBE, USER_PROBES, REPLY_PROBE
    user, second = {"role": "user", "content": u1}, {"role": "user", "content": u2}
    reply = {"role": "assistant", "content": a1}
    try:
        start, generation = _between(_render(tokenizer, jinja, [user], True), u1)
        start3, to_reply, to_user, generation3 = _between(_render(tokenizer, jinja, [user, reply, second], True), u1, a1, u2)
    except Exception as e:  # noqa: BLE001 - a template that refuses the probes, or drops their text
        raise _untranslatable(f"rendering probe conversations failed ({e})") from e
    if start3 != start or generation3 != generation:
        raise _untranslatable("its turns do not repeat the same way")
    try:
        start_system, system_to_user, generation_s = _between(
            _render(tokenizer, jinja, [{"role": "system", "content": s}, user], True), s, u1
        )
    except Exception:  # noqa: BLE001 - templates without a system role raise or drop it (mistral v0.1)
        start_system, system_to_user, generation_s = None, "", generation
    if generation_s != generation:
        raise _untranslatable("a system message changes how the reply is prompted")
    bos = getattr(tokenizer, "bos_token", None) or ""
    if not (bos and start.startswith(bos) and (start_system is None or start_system.startswith(bos))):
        bos = ""
    return Transitions(bos, start, start_system, system_to_user, to_reply, to_user, generation)


def _untranslatable(why: str) -> UserError:
    return UserError(
        f"the chat template cannot be translated to an Ollama TEMPLATE: {why}",
        "export without --ollama (the GGUF carries the chat template for llama.cpp), or train with data.template = \"chatml\"",
    )


def go_template(t: Transitions, bos_from_gguf: bool) -> str:
    """Ollama's Go template: over .Messages, each content preceded by what follows the previous role;
    a last assistant message is left open (Ollama continues it)."""
    cut = len(t.bos) if bos_from_gguf else 0
    start_user, start_system = t.start_user[cut:], (t.start_system or "")[cut:]
    for piece in (start_user, start_system, t.system_to_user, t.user_to_assistant, t.assistant_to_user, t.generation):
        if "{{" in piece or '"""' in piece:
            raise _untranslatable("its literal text contains '{{' or '\"\"\"'")
    first = (
        f'{{{{ if eq .Role "system" }}}}{start_system}{{{{ else }}}}{start_user}{{{{ end }}}}'
        if t.start_system is not None
        else start_user
    )
    return (
        '{{ $prev := "" }}{{ range .Messages }}'
        f'{{{{ if eq $prev "" }}}}{first}'
        f'{{{{ else if eq $prev "system" }}}}{t.system_to_user}'
        f'{{{{ else if eq $prev "user" }}}}{t.user_to_assistant}'
        f'{{{{ else }}}}{t.assistant_to_user}{{{{ end }}}}'
        "{{ .Content }}{{ $prev = .Role }}{{ end }}"
        f'{{{{ if eq $prev "user" }}}}{t.generation}{{{{ end }}}}'
    )


def ollama_values(messages: list[dict[str, str]], system: str) -> dict[str, Any]:
    """The data Ollama renders a chat TEMPLATE with: the Modelfile SYSTEM becomes the first message
    when the conversation has none; .System joins the system messages."""
    if system and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": system}, *messages]
    systems = [m["content"] for m in messages if m["role"] == "system"]
    return {
        "System": "\n\n".join(systems),
        "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages],
        "Prompt": "",
        "Response": "",
    }


def render_modelfile_template(plan: ModelfilePlan, messages: list[dict[str, str]]) -> str:
    from tuitune.core.go_template import render

    return render(plan.template, ollama_values(messages, plan.system))


def check_translation(tokenizer: Any, served: Any) -> ModelfilePlan:
    """The Modelfile's TEMPLATE, SYSTEM and stops for `served` (a ServedTemplate), checked: each
    CHECK_CONVERSATION rendered through it equals the chat template's rendering. UserError otherwise."""
    t = read_transitions(tokenizer, served.jinja)
    bos_from_gguf = bool(t.bos) and _adds_bos(tokenizer)
    plan = ModelfilePlan(go_template(t, bos_from_gguf), served.system, tuple(served.end_tokens), bos_from_gguf)
    for convo in CHECK_CONVERSATIONS:
        if convo[0]["role"] == "system" and t.start_system is None:
            continue
        expected = served.render(tokenizer, convo)
        got = (t.bos if bos_from_gguf else "") + render_modelfile_template(plan, convo)
        if got != expected:
            raise UserError(
                "the Ollama TEMPLATE would prompt differently from the chat template",
                f"chat template: {expected!r}; TEMPLATE: {got!r}; export without --ollama",
            )
    return plan


def _adds_bos(tokenizer: Any) -> bool:
    """Whether tokenizing adds the bos token by itself (then llama.cpp adds it too: GGUF add_bos_token)."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("x")["input_ids"]
    return bool(ids) and ids[0] == bos_id


def modelfile_text(gguf_name: str, plan: ModelfilePlan) -> str:
    lines = [
        "# Ollama Modelfile written by tuitune: ollama create NAME -f Modelfile",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{plan.template}"""',
    ]
    if plan.system:
        if '"""' in plan.system:
            raise UserError("the system prompt contains '\"\"\"', which a Modelfile cannot quote", "change data.system")
        lines.append(f'SYSTEM """{plan.system}"""')
    lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in plan.stops]
    lines += [f"PARAMETER {key} {value}" for key, value in SAMPLING.items()]
    return "\n".join(lines) + "\n"


def write_modelfile(gguf_path: Path, plan: ModelfilePlan, name: str) -> tuple[Path, str]:
    """DIR/Modelfile next to the GGUF; returns it and the `ollama create` command."""
    path = gguf_path.parent / "Modelfile"
    path.write_text(modelfile_text(gguf_path.name, plan), encoding="utf-8")
    return path, f"ollama create {name} -f {path}"


def parse_modelfile(text: str) -> dict[str, Any]:
    """FROM, TEMPLATE, SYSTEM and PARAMETERs of a Modelfile as written above (for checks and tests)."""
    out: dict[str, Any] = {"parameters": []}
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        key, _, rest = line.partition(" ")
        if key in ("TEMPLATE", "SYSTEM") and rest.startswith('"""'):
            body = lines[i].split('"""', 1)[1]
            while '"""' not in body:
                i += 1
                body += lines[i]
            out[key] = body.split('"""', 1)[0]
        elif key == "FROM":
            out["FROM"] = rest
        elif key == "PARAMETER":
            name, _, value = rest.partition(" ")
            out["parameters"].append((name, json.loads(value) if value.startswith('"') else value))
        i += 1
    return out
