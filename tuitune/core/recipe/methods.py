"""The fine-tuning methods and their groups, declared once for the recipe, the engine and the estimator."""

from __future__ import annotations

METHODS = ("full", "freeze", "lora", "qlora", "prefix", "prompt", "p-tuning", "ia3", "llama-adapter")
# Methods that train an adapter with peft (the rest, full and freeze, train the base weights).
PEFT_METHODS = ("lora", "qlora", "prefix", "prompt", "p-tuning", "ia3", "llama-adapter")
# Virtual-token methods: they add learned tokens (or prompts) rather than change weights, so their
# forward runs whole (the model's own loss), rows are not packed and the adapter cannot be merged.
PROMPT_METHODS = ("prefix", "prompt", "p-tuning", "llama-adapter")
# LoRA-style methods: low-rank updates on target linears (the [lora] section).
LORA_METHODS = ("lora", "qlora")

# Which optional sections a method uses. A section not listed for the method must not appear.
SECTIONS_FOR_METHOD = {
    "lora": ("lora",),
    "qlora": ("lora", "quantization"),
    "freeze": ("freeze",),
    "prefix": ("prompt",),
    "prompt": ("prompt",),
    "p-tuning": ("prompt",),
    "llama-adapter": ("prompt",),
}
OPTIONAL_SECTIONS = ("lora", "quantization", "freeze", "prompt")


def trains_base_weights(method: str) -> bool:
    """full and freeze train the model's own weights; every other method trains an adapter."""
    return method not in PEFT_METHODS
