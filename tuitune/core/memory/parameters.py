"""Bytes of what a step keeps for the whole run: weights as loaded, adapter, gradients, optimizer states.

Each formula says where it comes from; all take a `ModelSpec` and a resolved `Setup`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tuitune.core.memory.setup import Setup
from tuitune.core.recipe.methods import LORA_METHODS, trains_base_weights

if TYPE_CHECKING:
    from tuitune.core.models.spec import LinearModule, ModelSpec


def _matches(name: str, targets: tuple[str, ...] | str) -> bool:
    if isinstance(targets, str):  # "all-linear": every linear in the layers (peft excludes the output head)
        return True
    return name in targets


def lora_targets(spec: ModelSpec, targets: tuple[str, ...] | str) -> list[LinearModule]:
    """The linear modules of one layer that get LoRA adapters (router gates are never targeted)."""
    return [m for m in spec.linears if m.part != "router" and _matches(m.name, targets)]


def quantized_linear_bytes(m: LinearModule, bits: int, double_quant: bool, bias_bytes: int) -> float:
    """Bytes of one bitsandbytes-quantized linear layer (all `count` copies).

    4-bit (Dettmers et al. 2023, QLoRA, arXiv:2305.14314, sec. 3; bitsandbytes Params4bit defaults):
    two weights per byte, one absmax per 64-element block: fp32 (4 bytes) without double
    quantization, else 8-bit (1 byte) plus an fp32 second-level absmax per 256 blocks.
    8-bit (LLM.int8, Dettmers et al. 2022, arXiv:2208.07339; bnb Int8Params): one int8 per weight
    plus an fp32 scale per output row (SCB). Biases stay in the compute dtype.
    """
    n = m.in_features * m.out_features
    if bits == 4:
        blocks = math.ceil(n / 64)
        consts = blocks * 1 + math.ceil(blocks / 256) * 4 if double_quant else blocks * 4
        per = n / 2 + consts
    else:
        per = n + 4 * m.out_features
    bias = m.out_features * bias_bytes if m.bias else 0
    return m.count * (per + bias)


def weight_bytes(spec: ModelSpec, s: Setup) -> float:
    """Base weights as loaded. Under bitsandbytes only the decoder layers' linears are quantized:
    embeddings, the output head and the norms stay in model.dtype (transformers skips the output
    embedding when quantizing, and embeddings/norms are not nn.Linear).

    QLoRA as the engine prepares it (engine.build.prepare_quantized_base): peft's
    prepare_model_for_kbit_training casts every unquantized weight to fp32, then the engine puts the
    embeddings and the output head back to 16-bit when training runs under autocast. So the norms
    are fp32 (a few MB), and embeddings/head are fp32 only without autocast.
    """
    wb = s.weight_bytes
    norms = spec.num_layers * spec.norm_params + spec.hidden_size
    head = spec.embedding_params + spec.lm_head_params
    if s.quant_bits:
        rest = norms * 4 + head * (wb if s.autocast else 4)
    else:
        rest = (head + norms) * wb
    if s.quant_bits:
        lin = sum(quantized_linear_bytes(m, s.quant_bits, s.double_quant, wb) for m in spec.linears)
    else:
        lin = spec.linear_params_per_layer * wb
    return rest + spec.num_layers * lin


# peft's default IA3 targets scale q_proj and v_proj for these model types and k_proj and v_proj for
# the others (TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING; tests/core/test_memory.py compares).
IA3_QUERY_MODEL_TYPES = frozenset(
    {"bart", "gemma", "gemma2", "gemma3_text", "gpt_neo", "gptj", "llama4", "opt", "phi", "qwen2", "qwen3"}
)


def ia3_attention_targets(spec: ModelSpec) -> tuple[str, str]:
    """The two attention projections IA3 scales for this model type (peft's defaults)."""
    return ("q_proj", "v_proj") if spec.model_type in IA3_QUERY_MODEL_TYPES else ("k_proj", "v_proj")


def adapter_params(spec: ModelSpec, s: Setup) -> int:
    """Trainable parameters a PEFT method adds (0 for full and freeze, which train base weights).

    LoRA (Hu et al. 2021): r x (in + out) per target linear; DoRA (Liu et al. 2024) adds a
    magnitude vector of out_features. Prefix tuning (Li & Liang 2021): a key and a value per
    virtual token per layer (peft's default has no reparametrization MLP). Prompt tuning (Lester et
    al. 2021): virtual tokens x hidden. P-tuning (Liu et al. 2021): the virtual token embeddings
    plus peft's MLP encoder hidden->enc->enc->hidden with biases. IA3 (Liu et al. 2022): scaling
    vectors on k, v (q, v for Qwen and Gemma) outputs and down_proj's input, peft's default targets. LLaMA-Adapter (Zhang et al.
    2023): adapter_len x hidden prompts and one gate per adapted layer.
    """
    m, h, L = s.method, spec.hidden_size, spec.num_layers
    if m in LORA_METHODS:
        per = 0
        for lin in lora_targets(spec, s.lora_targets):
            per += lin.count * s.lora_r * (lin.in_features + lin.out_features)
            if s.use_dora:
                per += lin.count * lin.out_features
        return per * L
    if m == "prefix":
        return s.virtual_tokens * L * 2 * spec.kv_dim
    if m == "prompt":
        return s.virtual_tokens * h
    if m == "p-tuning":
        e = s.encoder_hidden
        return s.virtual_tokens * h + (h * e + e) + (e * e + e) + (e * h + h)
    if m == "ia3":
        per = 0
        for lin in spec.linears:
            if lin.name in ia3_attention_targets(spec):
                per += lin.out_features * lin.count
            elif lin.name in ("down_proj", "w2", "dense_4h_to_h"):
                per += lin.in_features * lin.count
            elif lin.name in ("qkv_proj", "query_key_value"):
                per += 2 * spec.kv_dim
        return per * L
    if m == "llama-adapter":
        n = min(s.adapter_layers, L)
        return n * (s.virtual_tokens * h + 1)
    return 0


def trainable_params(spec: ModelSpec, s: Setup) -> int:
    if s.method == "full":
        return spec.total_params
    if s.method == "freeze":
        return min(s.freeze_layers, spec.num_layers) * spec.params_per_layer
    return adapter_params(spec, s)


def trainable_bytes_per_param(s: Setup) -> int:
    """Full/freeze train the base weights in their own dtype ("pure bf16" when model.dtype is 16-bit);
    peft upcasts adapter weights to fp32 (get_peft_model(autocast_adapter_dtype=True))."""
    return s.weight_bytes if trains_base_weights(s.method) else 4


def optimizer_state_bytes(spec: ModelSpec, s: Setup, n_trainable: int) -> float:
    """Optimizer state per trainable parameter.

    adamw_torch / paged_adamw_32bit: exp_avg and exp_avg_sq, each like the parameter (torch.optim.AdamW
    zeros_like): 8 bytes for fp32 adapters, 4 for pure bf16 weights. adamw_8bit / paged_adamw_8bit
    (Dettmers et al. 2021, arXiv:2110.02861; bitsandbytes Optimizer8bit): two uint8 states plus an
    fp32 absmax per 256-element block, 2.03 bytes; paged states can be evicted to CPU under pressure.
    sgd (the Trainer's SGD has no momentum): nothing. adafactor (Shazeer & Stern 2018,
    arXiv:1804.04235, no first moment by default): a row and a column vector per matrix, fp32.
    """
    name = s.optimizer
    pb = trainable_bytes_per_param(s)
    if name in ("adamw_torch", "paged_adamw_32bit"):
        return 2 * pb * n_trainable
    if name in ("adamw_8bit", "paged_adamw_8bit"):
        return n_trainable * (2 + 2 * 4 / 256)
    if name == "sgd":
        return 0.0
    if name == "adafactor":
        return 4 * _factored_elements(spec, s)
    return 2 * pb * n_trainable


def _factored_elements(spec: ModelSpec, s: Setup) -> float:
    """Adafactor's second-moment size: rows + columns for each trainable matrix, full size for vectors."""
    L, h, V = spec.num_layers, spec.hidden_size, spec.vocab_size
    if trains_base_weights(s.method):
        layers = L if s.method == "full" else min(s.freeze_layers, L)
        per = sum(m.count * (m.in_features + m.out_features) for m in spec.linears) + spec.norm_params
        emb = (V + h) * (1 if spec.tie_embeddings else 2) if s.method == "full" else 0
        return layers * per + emb
    if s.method in LORA_METHODS:
        per = sum(m.count * (2 * s.lora_r + m.in_features + m.out_features) for m in lora_targets(spec, s.lora_targets))
        return L * per
    return adapter_params(spec, s)


def optimizer_temporaries(spec: ModelSpec, s: Setup, n_train: int) -> float:
    """What optimizer.step() allocates on top of gradients and states.

    On CUDA the engine asks the Trainer for "adamw_torch_fused" (engine.arguments.OPTIMIZERS): one
    kernel updates weights and states in place, no temporaries. On CPU the engine's plain
    "adamw_torch" runs torch's single-tensor loop, which makes two temporaries of the largest
    parameter (sqrt, then the division). bitsandbytes' 8-bit and paged optimizers update in place.
    Gradient clipping's norms are per tensor (negligible).
    """
    pb = trainable_bytes_per_param(s)
    if s.optimizer in ("adamw_torch",):
        if s.device == "cuda":
            return 0.0
        return 2 * _largest_trainable(spec, s) * pb
    if s.optimizer == "adafactor":
        return 2 * _largest_trainable(spec, s) * 4
    return 0.0


def _largest_trainable(spec: ModelSpec, s: Setup) -> int:
    if s.method == "full":
        return max(spec.embedding_params, max(m.in_features * m.out_features for m in spec.linears))
    if s.method == "freeze":
        return max(m.in_features * m.out_features * m.count for m in spec.linears)
    return max(1, adapter_params(spec, s) // max(1, spec.num_layers) // 2)
