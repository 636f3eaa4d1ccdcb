"""Bytes per token that a training step holds for the backward pass: the decoder layers' saved activations.

The terms enumerate the tensors autograd saves in a Llama-style decoder layer (RMSNorm with fp32
upcast, RoPE, SwiGLU); see estimator.py for how they are checked against measured peaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuitune.core.memory.parameters import ia3_attention_targets, lora_targets
from tuitune.core.memory.setup import Setup
from tuitune.core.recipe.methods import LORA_METHODS

if TYPE_CHECKING:
    from tuitune.core.models.spec import ModelSpec

def _lora_input_saves(s: Setup) -> tuple[float, bool]:
    """(bytes per input element one LoRA target saves, whether that input is shared with others).

    peft's LoRA forward is lora_B(lora_A(dropout(x.to(fp32)))): with dropout > 0 every target makes
    its own dropped copy and dropout keeps a mask (bool on CUDA, a float mask on CPU). Under autocast
    lora_A's matmul casts its input to 16-bit and saves that copy (the fp32 copy is transient).
    peft's bnb Linear4bit skips the fp32 cast under autocast. Without dropout (nn.Identity) on CPU
    or QLoRA+autocast, lora_A saves x itself, shared by every target reading it.
    """
    a = s.act_bytes
    if s.device == "cpu":
        return ((a + a), False) if s.lora_dropout > 0 else (a, True)
    qlora_autocast = s.method == "qlora" and s.autocast
    if s.lora_dropout > 0:
        if s.autocast:
            return 1 + 2, False
        return 1 + 4, False
    if qlora_autocast:
        return a, True
    return (2 if s.autocast else 4), False


def layer_saved_bytes(spec: ModelSpec, s: Setup, trainable_base: bool, seq_kv: int) -> float:
    """Bytes per token that autograd saves in one decoder layer during the forward pass.

    trainable_base: the layer's own weights train (full, freeze's top layers); otherwise the base
    is frozen and only adapters (or nothing but the input gradient) need saved tensors.
    """
    h, i = spec.hidden_size, spec.intermediate_size
    qd, kvd, H = spec.q_dim, spec.kv_dim, spec.num_heads
    a = s.act_bytes
    k_routed = max(1, spec.experts_per_token) if spec.num_experts else 1
    total = 0.0

    # RMSNorm (transformers LlamaRMSNorm): x.to(fp32) is saved by pow and mul (4 bytes/elt, a copy
    # in 16-bit, the residual itself in fp32), plus rsqrt (4 bytes per token). A trainable norm
    # weight also saves the normalized input (weight * x needs x). One per norm in the layer.
    norm = 4 * h + 4 + (s.weight_bytes * h if trainable_base else 0)
    total += spec.norms_per_layer * norm

    lora = s.method in LORA_METHODS
    targets = {m.name for m in lora_targets(spec, s.lora_targets)} if lora else set()
    per_elt, shared = _lora_input_saves(s) if lora else (0.0, True)
    r = s.lora_r

    def linear_group(names: list[str], in_features: int, copies: int = 1) -> float:
        """Saved bytes for linears that read the same input tensor (q/k/v; gate/up; o; down)."""
        present = [n for n in names if any(m.name == n for m in spec.linears)]
        out = 0.0
        input_saved = False
        if trainable_base and present:
            input_saved = True  # Linear saves its input for the weight gradient
        if s.method == "qlora" and s.quant_bits == 8 and present and s.device == "cuda":
            # bnb MatMul8bitLt (CUDA) keeps its input A in ctx.tensors until backward, for every
            # 8-bit linear whose input needs a gradient, targeted or not (its backward never reads
            # it). The CPU path, MatMul8bitFp, keeps only the weight.
            input_saved = True
        for n in present:
            if n in targets:
                out += copies * r * a  # lora_A's output, saved by lora_B
                if s.use_dora:
                    out += copies * a * max(m.out_features for m in spec.linears if m.name == n)
                if shared:
                    input_saved = True
                else:
                    out += copies * per_elt * in_features
        if input_saved:
            out += copies * a * in_features
        return out

    attn_in = [m.name for m in spec.linears if m.part == "attn" and m.name not in ("o_proj", "dense")]
    o_name = [m.name for m in spec.linears if m.name in ("o_proj", "dense")]
    mlp_in = [m.name for m in spec.linears if m.part == "mlp" and m.name not in ("down_proj", "w2", "dense_4h_to_h")]
    down = [m.name for m in spec.linears if m.name in ("down_proj", "w2", "dense_4h_to_h")]
    total += linear_group(attn_in, h)
    # The attention output feeds o_proj. sdpa/flash return it in (batch, seq, heads, dim) memory
    # order, so o_proj's saved input is the very tensor attention saved: counted below.
    total += linear_group(o_name, qd) - (a * qd if (s.attention != "eager" and (trainable_base or (shared and o_name and o_name[0] in targets))) else 0)

    # Attention. RoPE multiplies by cos/sin, which saves only cos/sin (shared, negligible).
    # sdpa / FlashAttention-2 (Dao et al. 2022) save q, k, v, the output and a fp32 logsumexp per
    # head and token. transformers' sdpa path repeats k/v for grouped-query attention when there is
    # a padding mask (use_gqa_in_sdpa), so unpacked batches save full-size k and v.
    if s.attention == "eager":
        # eager_attention_forward: matmul saves q and the repeated k; softmax runs in fp32 and saves
        # its output; the 16-bit copy of the probabilities is saved by the matmul with the repeated v.
        probs = (4 + (a if a < 4 else 0)) * H * seq_kv
        total += a * 3 * qd + probs
    else:
        # With any attention mask transformers' sdpa repeats k/v for grouped-query attention
        # (integrations.sdpa_attention.use_gqa_in_sdpa): padded batches of more than one row, and
        # packed rows, whose restarting position ids become a block-diagonal mask.
        repeat = s.attention == "sdpa" and (s.packing or s.batch_size > 1)
        kv_saved = qd if repeat else kvd
        total += a * (2 * qd + 2 * kv_saved) + 4 * H
    if s.method == "ia3":
        # IA3 multiplies two projections' outputs (k, v; q, v for Qwen/Gemma) and down_proj's input:
        # the products save them.
        scaled = qd + kvd if ia3_attention_targets(spec)[0] == "q_proj" else 2 * kvd
        total += a * (scaled + i)

    # SwiGLU MLP: act_fn saves gate's output, the product saves silu(gate) and up: 3 x intermediate.
    # (Fused gate_up projections, ChatGLM and Phi-3, save the same bytes as views of one output.)
    mlp = a * 3 * i
    mlp += linear_group(mlp_in, h) if not spec.num_experts else k_routed * linear_group(mlp_in, h)
    mlp += linear_group(down, i) if not spec.num_experts else k_routed * linear_group(down, i)
    if spec.num_experts:
        mlp = mlp * k_routed if mlp == a * 3 * i else mlp + a * 3 * i * (k_routed - 1)
        mlp += 4 * spec.num_experts + a * h * k_routed  # router logits (fp32) and the gathered inputs
    total += mlp
    return total


def layer_workspace_bytes(spec: ModelSpec, s: Setup) -> float:
    """Bytes per token of gradients alive while one layer runs its backward pass.

    The incoming and outgoing hidden-state gradients (2 x hidden) plus the MLP's gradients: the
    product's, silu's, up's and gate's (up to 3 x intermediate at once before they are consumed).
    Calibrated on CPU step measurements (bench/memory_accuracy.py).
    """
    k = max(1, spec.experts_per_token) if spec.num_experts else 1
    return s.act_bytes * (3 * spec.intermediate_size * k + 3 * spec.hidden_size)
