"""The chat template a run is served with after export: the one it was trained with, its system prompt
and the tokens that end a reply. Shared by the GGUF export, the Ollama Modelfile and the parity check.

Training renders every row through `data.template` and adds `data.system` to rows without a system
message (tuitune.core.data.encoding). An exported model must be prompted the same way, so the
exported Jinja template carries the system prompt as its default: a GGUF then prompts like training
in llama.cpp without the user knowing the prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]

# Sentinels rendered through a template to find where its turns start and end; words no template adds.
PROBE_USER = "TUITUNEPROBEUSER"
PROBE_REPLY = "TUITUNEPROBEREPLY"


@dataclass(frozen=True)
class ServedTemplate:
    """jinja: the template to ship; system: the trained system prompt ("" when none);
    end_tokens: the tokens that end a reply (the template's end-of-turn marker, then eos)."""

    jinja: str
    system: str
    end_tokens: tuple[str, ...]
    name: str  # tokenizer | chatml | llama3 | alpaca | zephyr | plain
    base: str  # the template without the system prompt default

    def render(self, tokenizer: Any, messages: list[Message], add_generation_prompt: bool = True) -> str:
        return render(tokenizer, self.jinja, messages, add_generation_prompt)


def with_default_system(jinja: str, system: str) -> str:
    """The template, with `system` added as the first message when the conversation has none."""
    if not system:
        return jinja
    # json.dumps gives a string literal Jinja reads back unchanged (quotes, newlines, unicode escaped).
    literal = json.dumps(system)
    return (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        "{%- set messages = [{'role': 'system', 'content': " + literal + "}] + messages -%}"
        "{%- endif -%}" + jinja
    )


def served_template(tokenizer: Any, template: str = "auto", system: str = "") -> ServedTemplate:
    """What a model trained with data.template = `template`, data.system = `system` is served with."""
    from tuitune.core.data.templates import chat_template_for

    jinja, name = chat_template_for(tokenizer, template)
    jinja = jinja if jinja is not None else tokenizer.chat_template
    full = with_default_system(jinja, system or "")
    return ServedTemplate(full, system or "", tuple(end_of_turn_tokens(tokenizer, jinja)), name, jinja)


def render(tokenizer: Any, jinja: str, messages: list[Message], add_generation_prompt: bool = True) -> str:
    return tokenizer.apply_chat_template(
        messages, chat_template=jinja, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def end_of_turn_tokens(tokenizer: Any, jinja: str) -> list[str]:
    """Special tokens the template writes right after an assistant reply, then the tokenizer's eos.

    chatml: <|im_end|>; llama-3: <|eot_id|>; gemma: <end_of_turn>; templates that end replies with
    eos (alpaca, zephyr, plain, mistral): eos only.
    """
    convo = [{"role": "user", "content": PROBE_USER}, {"role": "assistant", "content": PROBE_REPLY}]
    tokens: list[str] = []
    try:
        text = render(tokenizer, jinja, convo, add_generation_prompt=False)
    except Exception:  # noqa: BLE001 - a template that refuses the probe: fall back to eos
        text = ""
    after = text.split(PROBE_REPLY, 1)[1] if PROBE_REPLY in text else ""
    specials = _special_tokens(tokenizer)
    # The first special token after the reply, in the order it appears.
    found = sorted((after.find(tok), tok) for tok in specials if tok and tok in after)
    if found:
        tokens.append(found[0][1])
    eos = getattr(tokenizer, "eos_token", None)
    if eos and eos not in tokens:
        tokens.append(eos)
    return tokens


def _special_tokens(tokenizer: Any) -> set[str]:
    specials = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for token in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(token, "special", False):
            specials.add(str(token.content))
    return specials


def token_ids(tokenizer: Any, tokens: tuple[str, ...] | list[str]) -> list[int]:
    """Ids of the tokens that are single tokens in the vocabulary (others cannot stop generation)."""
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in tokens if t in vocab]
