"""Built-in architectures of popular models, for memory estimates without a download.

Each entry is the subset of the model's own `config.json` (hub id as the key) that the estimator
reads, so catalog entries and real configs go through the same parser in `model_spec`. Values are
copied from the models' published configs; parameter counts computed from them are checked
against the published totals in tests/core/test_model_spec.py.

Short aliases ("llama-3-8b", "qwen2.5-7b") map to hub ids; lookups ignore case, and a hub id of an
instruct/chat variant resolves to its base entry (same architecture).
"""

from __future__ import annotations

import re
from typing import Any


def _llama(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv: int, *, tied: bool = False,
           max_pos: int = 4096, head_dim: int | None = None, model_type: str = "llama", **extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_type": model_type,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "tie_word_embeddings": tied,
        "max_position_embeddings": max_pos,
        "torch_dtype": "bfloat16",
    }
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    cfg.update(extra)
    return cfg


def _qwen2(vocab: int, hidden: int, inter: int, layers: int, heads: int, kv: int, *, tied: bool,
           max_pos: int = 32768) -> dict[str, Any]:
    # Qwen2 / Qwen2.5 / Qwen1.5: bias on q, k and v projections only (not o_proj).
    return _llama(vocab, hidden, inter, layers, heads, kv, tied=tied, max_pos=max_pos, model_type="qwen2")


CATALOG: dict[str, dict[str, Any]] = {
    # Llama 2 (meta-llama/Llama-2-*-hf config.json)
    "meta-llama/Llama-2-7b-hf": _llama(32000, 4096, 11008, 32, 32, 32),
    "meta-llama/Llama-2-13b-hf": _llama(32000, 5120, 13824, 40, 40, 40),
    "meta-llama/Llama-2-70b-hf": _llama(32000, 8192, 28672, 80, 64, 8),
    # Llama 3 / 3.1: 128k vocabulary, GQA with 8 key/value heads
    "meta-llama/Meta-Llama-3-8B": _llama(128256, 4096, 14336, 32, 32, 8, max_pos=8192),
    "meta-llama/Meta-Llama-3-70B": _llama(128256, 8192, 28672, 80, 64, 8, max_pos=8192),
    "meta-llama/Llama-3.1-8B": _llama(128256, 4096, 14336, 32, 32, 8, max_pos=131072),
    "meta-llama/Llama-3.1-70B": _llama(128256, 8192, 28672, 80, 64, 8, max_pos=131072),
    # Llama 3.2: tied embeddings
    "meta-llama/Llama-3.2-1B": _llama(128256, 2048, 8192, 16, 32, 8, tied=True, max_pos=131072, head_dim=64),
    "meta-llama/Llama-3.2-3B": _llama(128256, 3072, 8192, 28, 24, 8, tied=True, max_pos=131072, head_dim=128),
    # Mistral
    "mistralai/Mistral-7B-v0.1": _llama(32000, 4096, 14336, 32, 32, 8, max_pos=32768, model_type="mistral"),
    "mistralai/Mistral-7B-v0.3": _llama(32768, 4096, 14336, 32, 32, 8, max_pos=32768, model_type="mistral"),
    "mistralai/Mixtral-8x7B-v0.1": _llama(
        32000, 4096, 14336, 32, 32, 8, max_pos=32768, model_type="mixtral", num_local_experts=8, num_experts_per_tok=2
    ),
    # Qwen 2.5
    "Qwen/Qwen2.5-0.5B": _qwen2(151936, 896, 4864, 24, 14, 2, tied=True),
    "Qwen/Qwen2.5-1.5B": _qwen2(151936, 1536, 8960, 28, 12, 2, tied=True),
    "Qwen/Qwen2.5-3B": _qwen2(151936, 2048, 11008, 36, 16, 2, tied=True),
    "Qwen/Qwen2.5-7B": _qwen2(152064, 3584, 18944, 28, 28, 4, tied=False, max_pos=131072),
    "Qwen/Qwen2.5-14B": _qwen2(152064, 5120, 13824, 48, 40, 8, tied=False, max_pos=131072),
    "Qwen/Qwen2.5-32B": _qwen2(152064, 5120, 27648, 64, 40, 8, tied=False, max_pos=131072),
    "Qwen/Qwen2.5-72B": _qwen2(152064, 8192, 29568, 80, 64, 8, tied=False, max_pos=131072),
    # Qwen 1.5
    "Qwen/Qwen1.5-7B": _qwen2(151936, 4096, 11008, 32, 32, 32, tied=False),
    "Qwen/Qwen1.5-32B": _qwen2(152064, 5120, 27392, 64, 40, 8, tied=False),
    # Yi
    "01-ai/Yi-34B": _llama(64000, 7168, 20480, 60, 56, 8, max_pos=4096),
    # ChatGLM3: fused query_key_value with bias, multi-query groups, fused SwiGLU dense_h_to_4h
    "THUDM/chatglm3-6b": {
        "model_type": "chatglm",
        "padded_vocab_size": 65024,
        "hidden_size": 4096,
        "ffn_hidden_size": 13696,
        "num_layers": 28,
        "num_attention_heads": 32,
        "kv_channels": 128,
        "multi_query_attention": True,
        "multi_query_group_num": 2,
        "add_qkv_bias": True,
        "add_bias_linear": False,
        "seq_length": 8192,
        "torch_dtype": "float16",
    },
    # Gemma 2: head_dim 256, four norms per layer, tied embeddings
    "google/gemma-2-2b": _llama(256000, 2304, 9216, 26, 8, 4, tied=True, max_pos=8192, head_dim=256, model_type="gemma2"),
    "google/gemma-2-9b": _llama(256000, 3584, 14336, 42, 16, 8, tied=True, max_pos=8192, head_dim=256, model_type="gemma2"),
    # Phi-3: fused qkv_proj and gate_up_proj
    "microsoft/Phi-3-mini-4k-instruct": _llama(32064, 3072, 8192, 32, 32, 32, max_pos=4096, model_type="phi3"),
    # SmolLM2 (the demo model is SmolLM2-135M-Instruct)
    "HuggingFaceTB/SmolLM2-135M": _llama(49152, 576, 1536, 30, 9, 3, tied=True, max_pos=8192),
    "HuggingFaceTB/SmolLM2-360M": _llama(49152, 960, 2560, 32, 15, 5, tied=True, max_pos=8192),
    "HuggingFaceTB/SmolLM2-1.7B": _llama(49152, 2048, 8192, 24, 32, 32, tied=True, max_pos=8192),
}

ALIASES: dict[str, str] = {
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
    "llama-2-13b": "meta-llama/Llama-2-13b-hf",
    "llama-2-70b": "meta-llama/Llama-2-70b-hf",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B",
    "llama-3-70b": "meta-llama/Meta-Llama-3-70B",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B",
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "mistral-7b-v0.3": "mistralai/Mistral-7B-v0.3",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-v0.1",
    "qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B",
    "qwen2.5-3b": "Qwen/Qwen2.5-3B",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B",
    "qwen2.5-32b": "Qwen/Qwen2.5-32B",
    "qwen2.5-72b": "Qwen/Qwen2.5-72B",
    "qwen1.5-7b": "Qwen/Qwen1.5-7B",
    "qwen1.5-32b": "Qwen/Qwen1.5-32B",
    "yi-34b": "01-ai/Yi-34B",
    "chatglm3-6b": "THUDM/chatglm3-6b",
    "gemma-2-2b": "google/gemma-2-2b",
    "gemma-2-9b": "google/gemma-2-9b",
    "phi-3-mini": "microsoft/Phi-3-mini-4k-instruct",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M",
    "smollm2-360m": "HuggingFaceTB/SmolLM2-360M",
    "smollm2-1.7b": "HuggingFaceTB/SmolLM2-1.7B",
}

# Words of fine-tuned variants that keep the base architecture (…-Instruct, …-chat-hf, -it).
_VARIANT = re.compile(r"[-_](instruct|chat|it|hf|base)(?=$|[-_])", re.IGNORECASE)


def _norm(name: str) -> str:
    return name.strip().lower()


def _short(name: str) -> str:
    """'meta-llama/Meta-Llama-3-8B-Instruct' -> 'llama-3-8b' (org, 'meta-' and variant words removed)."""
    short = _norm(name).split("/", 1)[-1]
    if short.startswith("meta-"):
        short = short[len("meta-") :]
    return _VARIANT.sub("", short)


_BY_LOWER = {_norm(k): k for k in CATALOG}
_BY_SHORT = {_short(k): k for k in CATALOG}
_BY_SHORT.update({_short(a): k for a, k in ALIASES.items()})


def catalog_key(name: str) -> str | None:
    """The catalog key for a hub id or alias, or None. Instruct/chat variants find their base."""
    low = _norm(name)
    if low in _BY_LOWER:
        return _BY_LOWER[low]
    if low in ALIASES:
        return ALIASES[low]
    return _BY_SHORT.get(_short(name))


def catalog_names() -> list[str]:
    """Every catalog hub id, in declaration order."""
    return list(CATALOG)


def recipe_model_name(name: str) -> str:
    """What a recipe should say for a model typed as `name`: a short alias ("llama-3-8b"), which
    only the estimator knows, becomes its hub id, which training can download; hub ids, local
    paths and names the catalog does not know stay as they are."""
    from pathlib import Path

    text = name.strip()
    if "/" in text or Path(text).expanduser().exists():
        return text
    return ALIASES.get(_norm(text), text)
