"""An Ollama Modelfile for an exported GGUF: FROM, TEMPLATE, SYSTEM, stops and sampling defaults.

The TEMPLATE is translated from the chat template the run was trained with, by rendering probe
conversations through it (Jinja, as transformers does) and reading where each role's turn starts
and ends. That covers the turn-based families (chatml, qwen, llama-3, mistral, phi-3, zephyr,
alpaca, tuitune's plain) and templates that fold the system prompt into the first user turn
(gemma, llama-2). The translation is then checked: several conversations rendered through the
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
class TurnFormat:
    """How a chat template writes a conversation: bos, then each turn as prefix + content + suffix."""

    bos: str
    user: tuple[str, str]
    assistant: tuple[str, str]
    generation: str  # what follows the last user turn to prompt a reply
    system: tuple[str, str] | None  # None: no system turn of its own
    system_joiner: str | None  # set when the system prompt is folded into the first user turn
    default_system: str  # what the template writes when the conversation has no system message


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
            raise ValueError(mark)
        pieces.append(head)
    return [*pieces, rest]


def read_turn_format(tokenizer: Any, jinja: str) -> TurnFormat:
    """Where each role's turn starts and ends in `jinja` (a template without a default system added)."""
    s, (u1, u2), a1 = SYSTEM_PROBE, USER_PROBES, REPLY_PROBE
    user = {"role": "user", "content": u1}
    reply = {"role": "assistant", "content": a1}
    second = {"role": "user", "content": u2}
    try:
        head, u_after = _between(_render(tokenizer, jinja, [user], False), u1)
        _, gen_full = _between(_render(tokenizer, jinja, [user], True), u1)
        _, a_after = _between(_render(tokenizer, jinja, [user, reply], False), a1)
        _, p2, p3, p4 = _between(_render(tokenizer, jinja, [user, reply, second], True), u1, a1, u2)
    except Exception as e:  # noqa: BLE001 - a template that refuses probes, or drops their text
        raise _untranslatable(f"rendering probe conversations failed ({e})") from e
    if not (p2.startswith(u_after) and gen_full.startswith(u_after) and p4 == gen_full and p3.startswith(a_after)):
        raise _untranslatable("its turns do not repeat the same way")
    u_pre = p3[len(a_after) :]
    a_pre = p2[len(u_after) :]
    gen = gen_full[len(u_after) :]
    if not head.endswith(u_pre):
        raise _untranslatable("the first user turn starts differently from the others")
    head = head[: len(head) - len(u_pre)]
    bos = getattr(tokenizer, "bos_token", None) or ""
    bos = bos if bos and head.startswith(bos) else ""
    default_block = head[len(bos) :]

    system, joiner, default = None, None, ""
    try:
        s_head, s_mid, _ = _between(_render(tokenizer, jinja, [{"role": "system", "content": s}, user], False), s, u1)
    except Exception:  # noqa: BLE001 - templates without a system role (mistral v0.1, gemma raise or drop it)
        s_head = s_mid = None
    if s_head is not None:
        if s_mid.endswith(u_pre) and s_head.startswith(bos):
            system = (s_head[len(bos) :], s_mid[: len(s_mid) - len(u_pre)])
        elif s_head == bos + u_pre:
            joiner = s_mid
        else:
            raise _untranslatable("its system turn has a shape tuitune cannot translate")
    if default_block:
        if system and default_block.startswith(system[0]) and default_block.endswith(system[1]):
            default = default_block[len(system[0]) : len(default_block) - len(system[1])]
        else:
            raise _untranslatable("it writes text before the first turn that is not a system prompt")
    return TurnFormat(bos, (u_pre, u_after), (a_pre, a_after), gen, system, joiner, default)


def _untranslatable(why: str) -> UserError:
    return UserError(
        f"the chat template cannot be translated to an Ollama TEMPLATE: {why}",
        "export without --ollama (the GGUF carries the chat template for llama.cpp), or train with data.template = \"chatml\"",
    )


def go_template(fmt: TurnFormat, bos_from_gguf: bool) -> str:
    """Ollama's Go template for `fmt`: over .Messages, the last assistant message left open (Ollama
    continues it), the generation prompt after a last user message."""
    for piece in (fmt.bos, *fmt.user, *fmt.assistant, fmt.generation, *(fmt.system or ()), fmt.system_joiner or ""):
        if "{{" in piece or '"""' in piece:
            raise _untranslatable("its literal text contains '{{' or '\"\"\"'")
    u_pre, u_suf = fmt.user
    a_pre, a_suf = fmt.assistant
    parts = ["" if bos_from_gguf else fmt.bos]
    parts.append('{{ range $i, $_ := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}')
    if fmt.system is not None:
        parts.append(f'{{{{ if eq .Role "system" }}}}{fmt.system[0]}{{{{ .Content }}}}{fmt.system[1]}{{{{ else if eq .Role "user" }}}}{u_pre}')
    else:
        parts.append(f'{{{{ if eq .Role "user" }}}}{u_pre}')
        if fmt.system_joiner is not None:
            parts.append(f'{{{{ if and $.System (eq $i 1) }}}}{{{{ $.System }}}}{fmt.system_joiner}{{{{ end }}}}')
    parts.append(f'{{{{ .Content }}}}{u_suf}{{{{ else if eq .Role "assistant" }}}}{a_pre}{{{{ .Content }}}}')
    parts.append(f'{{{{ if not $last }}}}{a_suf}{{{{ end }}}}{{{{ end }}}}')
    parts.append(f'{{{{ if and $last (ne .Role "assistant") }}}}{fmt.generation}{{{{ end }}}}{{{{ end }}}}')
    return "".join(parts)


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
    fmt = read_turn_format(tokenizer, served.base)
    if served.system and fmt.system is None and fmt.system_joiner is None:
        raise _untranslatable("the run has a system prompt but the template has no place for one")
    bos_from_gguf = bool(fmt.bos) and _adds_bos(tokenizer)
    system = served.system or fmt.default_system
    plan = ModelfilePlan(go_template(fmt, bos_from_gguf), system, tuple(served.end_tokens), bos_from_gguf)
    for convo in CHECK_CONVERSATIONS:
        if convo[0]["role"] == "system" and fmt.system is None and fmt.system_joiner is None:
            continue
        expected = served.render(tokenizer, convo)
        got = (fmt.bos if bos_from_gguf else "") + render_modelfile_template(plan, convo)
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
