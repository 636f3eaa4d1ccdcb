"""Named chat templates for tokenizers without one (base models) or to override the model's own.

Written as Jinja, the language transformers' `apply_chat_template` renders, so the model's own
template and these go through the same code. Every assistant turn ends with an end marker
(`<|im_end|>`, `<|eot_id|>` or the tokenizer's EOS) so that the model learns where a reply stops.
transformers renders with trim_blocks, so newlines are written as '\\n' inside expressions.
"""

from __future__ import annotations

from typing import Any

from tuitune.core.errors import UserError

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

LLAMA3 = (
    "{% if bos_token %}{{ bos_token }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

ALPACA_SYSTEM = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
ALPACA = (
    "{% if messages[0]['role'] == 'system' %}"
    "{{ messages[0]['content'] + '\\n\\n' }}{% set turns = messages[1:] %}"
    "{% else %}"
    "{{ '" + ALPACA_SYSTEM + "\\n\\n' }}{% set turns = messages %}"
    "{% endif %}"
    "{% for message in turns %}"
    "{% if message['role'] == 'assistant' %}{{ '### Response:\\n' + message['content'] + (eos_token or '') + '\\n\\n' }}"
    "{% else %}{{ '### Instruction:\\n' + message['content'] + '\\n\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\\n' }}{% endif %}"
)

ZEPHYR = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + (eos_token or '') + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

# For base models: labelled lines, nothing the tokenizer must know. The reply starts with a space
# after "Assistant:" so that the generation prompt ends exactly where the reply's first token starts.
PLAIN = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + (eos_token or '') + '\\n' }}"
    "{% else %}{{ 'User: ' + message['content'] + '\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "alpaca": ALPACA, "zephyr": ZEPHYR, "plain": PLAIN}
DEFAULT_FALLBACK = "chatml"

# Strings that end a turn in common templates; used to extend a reply over its end marker when
# the template's output cannot be cut into prefixes (see encoding._search_spans).
END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|end_of_text|>")


def chat_template_for(tokenizer: Any, template: str = "auto") -> tuple[str | None, str]:
    """(Jinja to pass to apply_chat_template or None for the tokenizer's own, name to show)."""
    template = (template or "auto").strip().lower()
    if template == "auto":
        if getattr(tokenizer, "chat_template", None):
            return None, "tokenizer"
        return TEMPLATES[DEFAULT_FALLBACK], DEFAULT_FALLBACK
    if template not in TEMPLATES:
        raise UserError(f"unknown chat template '{template}'", "one of auto, " + ", ".join(TEMPLATES))
    return TEMPLATES[template], template
