"""How much memory a fine-tuning run needs: pure arithmetic on a `ModelSpec` and a `Recipe`.

`estimate(spec, recipe, available_bytes=None, n_gpus=1)` returns a `MemoryEstimate`: the bytes of
each component at the training peak, the training peak, the inference peak and a verdict against
the memory available. No torch, no weights: it runs in well under a millisecond, so the planner can
call it hundreds of times.

How the peak is found. A training step goes through moments with different live tensors; the
estimate evaluates each and takes the largest (the same thing `torch.cuda.max_memory_allocated`
reports after a real step):
  forward end   weights + optimizer states + saved activations + logits being formed
  loss backward weights + states + saved activations + the three V x T fp32 loss tensors
  layer backward weights + states + checkpoints + one recomputed layer + its gradient workspace
  backward end  weights + states + every gradient (+ tied embedding gradients being summed)
  optimizer step weights + states + every gradient + what the optimizer step allocates
Steady state (second step and later) is assumed: optimizer states exist from the first step.

Where each formula comes from is written next to it. The activation terms enumerate the tensors
autograd saves in a Llama-style decoder layer (RMSNorm with fp32 upcast, RoPE, SwiGLU), in the
spirit of Korthikanti et al. 2022 "Reducing Activation Recomputation in Large Transformer Models"
(arXiv:2205.05198), which does the same for GPT blocks. The list was read off real models with
`torch.autograd.graph.saved_tensors_hooks` and is checked against measured peaks in
tests/core/test_memory_accuracy.py (bench/memory_accuracy.py prints the table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuitune.core.models.spec import LinearModule, ModelSpec
    from tuitune.core.recipe import Recipe

MiB = 2**20
GiB = 2**30

# CUDA context: the driver's per-process state, cuBLAS/cuDNN handles and kernels loaded by PyTorch.
# Measured at 300-600 MiB on Ampere/Hopper with PyTorch 2.x and CUDA 12 lazy loading (nvidia-smi
# after `torch.ones(1, device="cuda") @ ...`); it never shows in max_memory_allocated.
CUDA_CONTEXT_BYTES = 500 * MiB
# The caching allocator reserves more than it hands out: blocks are rounded and activations of
# varying sizes fragment the cache. Reserved exceeds allocated by ~5-20% in training runs (PyTorch
# "CUDA semantics: memory management" notes; our own step measurements); 10% of the peak is used.
ALLOCATOR_MARGIN = 0.10
# "tight": the estimate is within this fraction below the available memory.
TIGHT_FRACTION = 0.10

# Model types whose logits are exactly lm_head(last hidden state). For these the training engine
# (tuitune.core.engine.trainer.trained_positions_loss) applies the output head only at positions
# that have a label, so logits and loss memory scale with the trained tokens, not all tokens.
PLAIN_HEAD_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
# Methods that prepend virtual tokens: their forward must run whole, so the model's own loss is used.
VIRTUAL_TOKEN_METHODS = ("prefix", "prompt", "p-tuning", "llama-adapter")

VERDICT_FITS = "fits"
VERDICT_TIGHT = "tight"
VERDICT_NO = "does not fit"
VERDICT_UNKNOWN = "unknown"

COMPONENT_LABELS = {
    "weights": "base weights",
    "adapter": "trainable adapter",
    "gradients": "gradients",
    "optimizer": "optimizer states",
    "master_weights": "fp32 master / autocast copies",
    "activations": "saved activations",
    "logits": "logits and loss",
    "workspace": "temporaries",
    "cuda_context": "CUDA context",
    "allocator_margin": "allocator margin",
}


# --------------------------------------------------------------------------- resolved inputs


@dataclass(frozen=True)
class Setup:
    """Everything the arithmetic needs, resolved from the recipe and the device."""

    device: str  # cuda | cpu
    method: str
    weight_bytes: int  # bytes per element of the unquantized weights (model.dtype)
    act_bytes: int  # bytes per element of matmul outputs (compute dtype)
    autocast: bool  # mixed precision via torch.autocast (the Trainer's bf16/fp16)
    quant_bits: int  # 0, 4 or 8
    double_quant: bool
    batch_size: int
    seq_len: int
    gradient_accumulation: int
    gradient_checkpointing: bool
    attention: str  # sdpa | flash_attention_2 | eager
    packing: bool
    optimizer: str
    lora_r: int
    lora_targets: tuple[str, ...] | str
    lora_dropout: float
    use_dora: bool
    freeze_layers: int
    virtual_tokens: int
    encoder_hidden: int
    adapter_layers: int
    n_gpus: int = 1
    strategy: str = "ddp"
    # Share of the batch's tokens that carry a label (prompts are masked). 1.0 when the data is not
    # known (the planner's worst case); `estimate --measure` passes the fraction of the real batches.
    trained_fraction: float = 1.0

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len


def _dtype_bytes(name: str, device: str, bf16: bool) -> int:
    if name == "float32":
        return 4
    if name in ("bfloat16", "float16"):
        return 2
    return 4 if device == "cpu" else 2  # auto: bf16/fp16 on GPU, fp32 on CPU (tuitune.core.models.loading)


def resolve_setup(
    recipe: Recipe,
    *,
    device: str = "cuda",
    bf16: bool = True,
    n_gpus: int = 1,
    batch_size: int | None = None,
    seq_len: int | None = None,
    trained_fraction: float = 1.0,
) -> Setup:
    """Read the recipe the way tuitune.core.models.loading and the trainer interpret it.

    bf16 on "cuda": the GPU supports bfloat16; on "cpu": the CPU multiplies bfloat16 natively
    (tuitune.core.models.loading.cpu_bf16_native), the only case where the engine trains a CPU recipe with
    mixed_precision = "bf16" under CPU autocast (elsewhere it trains in float32).
    """
    method = recipe.method.type
    wb = _dtype_bytes(recipe.model.dtype, device, bf16)
    mp = recipe.train.mixed_precision
    autocast = mp != "no" if device == "cuda" else (mp == "bf16" and bf16)
    act = 2 if autocast else wb
    if method == "qlora":
        cd = _dtype_bytes(recipe.quantization.compute_dtype, device, bf16)
        act = 2 if autocast else cd
    attn = recipe.model.attn_implementation
    if attn == "auto" or (device == "cpu" and attn == "flash_attention_2"):
        attn = "sdpa"  # transformers' default; flash-attn needs a CUDA GPU
    targets = recipe.lora.target_modules
    return Setup(
        device=device,
        method=method,
        weight_bytes=wb,
        act_bytes=act,
        autocast=autocast,
        quant_bits=recipe.quantization.bits if method == "qlora" else 0,
        double_quant=recipe.quantization.double_quant,
        batch_size=batch_size or recipe.train.batch_size,
        seq_len=seq_len or recipe.data.cutoff_len,
        gradient_accumulation=recipe.train.gradient_accumulation,
        gradient_checkpointing=recipe.train.gradient_checkpointing,
        attention=attn,
        packing=recipe.data.packing,
        optimizer=recipe.train.optimizer,
        lora_r=recipe.lora.r,
        lora_targets=targets if isinstance(targets, str) else tuple(targets),
        lora_dropout=recipe.lora.dropout,
        use_dora=recipe.lora.use_dora,
        freeze_layers=recipe.freeze.trainable_layers,
        virtual_tokens=recipe.prompt.num_virtual_tokens,
        encoder_hidden=recipe.prompt.encoder_hidden_size,
        adapter_layers=recipe.prompt.adapter_layers,
        n_gpus=max(1, n_gpus),
        strategy=recipe.distributed.strategy,
        trained_fraction=min(1.0, max(0.0, trained_fraction)),
    )


# --------------------------------------------------------------------------- result


@dataclass
class MemoryEstimate:
    """Bytes at the training peak by component, the peaks, and the verdict."""

    components: dict[str, int]  # at the training peak; they add up to train_peak_bytes
    train_peak_bytes: int  # what the device must hold: allocated peak + context + margin
    allocated_peak_bytes: int  # live tensors at the peak (comparable to max_memory_allocated)
    inference_bytes: int  # generation with a KV cache (batch x seq_len), context and margin included
    inference_components: dict[str, int]
    verdict: str  # fits | tight | does not fit | unknown
    available_bytes: int | None
    peak_phase: str  # which moment of the step is the peak
    phases: dict[str, int]  # allocated bytes at each moment considered
    trainable_params: int
    total_params: int
    setup: Setup
    notes: list[str] = field(default_factory=list)
    # Filled by `estimate --measure` (tuitune.core.memory.probe.MeasuredPeak) beside the estimate.
    measured: Any = None
    # Allocated bytes while an evaluation batch runs (see eval_peak_bytes); not part of the verdict.
    eval_peak_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.train_peak_bytes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total_bytes": self.train_peak_bytes,
            "allocated_peak_bytes": self.allocated_peak_bytes,
            "eval_peak_bytes": self.eval_peak_bytes,
            "components": dict(self.components),
            "verdict": self.verdict,
            "available_bytes": self.available_bytes,
            "peak_phase": self.peak_phase,
            "phases": dict(self.phases),
            "inference_bytes": self.inference_bytes,
            "inference_components": dict(self.inference_components),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "notes": list(self.notes),
        }
        if self.measured is not None:
            out["measured"] = self.measured.to_dict() if hasattr(self.measured, "to_dict") else self.measured
        return out


def verdict_for(need: int, available: int | None) -> str:
    """fits: needs at most 90% of what is available; tight: 90-100%; does not fit: more."""
    if available is None or available <= 0:
        return VERDICT_UNKNOWN
    if need <= available * (1 - TIGHT_FRACTION):
        return VERDICT_FITS
    if need <= available:
        return VERDICT_TIGHT
    return VERDICT_NO


# --------------------------------------------------------------------------- parameters


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


def adapter_params(spec: ModelSpec, s: Setup) -> int:
    """Trainable parameters a PEFT method adds (0 for full and freeze, which train base weights).

    LoRA (Hu et al. 2021): r x (in + out) per target linear; DoRA (Liu et al. 2024) adds a
    magnitude vector of out_features. Prefix tuning (Li & Liang 2021): a key and a value per
    virtual token per layer (peft's default has no reparametrization MLP). Prompt tuning (Lester et
    al. 2021): virtual tokens x hidden. P-tuning (Liu et al. 2021): the virtual token embeddings
    plus peft's MLP encoder hidden->enc->enc->hidden with biases. IA3 (Liu et al. 2022): scaling
    vectors on k, v (out) and down_proj (in), peft's default targets. LLaMA-Adapter (Zhang et al.
    2023): adapter_len x hidden prompts and one gate per adapted layer.
    """
    m, h, L = s.method, spec.hidden_size, spec.num_layers
    if m in ("lora", "qlora"):
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
            if lin.name in ("k_proj", "v_proj"):
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


def _trainable_bytes_per_param(s: Setup) -> int:
    """Full/freeze train the base weights in their own dtype ("pure bf16" when model.dtype is 16-bit);
    peft upcasts adapter weights to fp32 (get_peft_model(autocast_adapter_dtype=True))."""
    return s.weight_bytes if s.method in ("full", "freeze") else 4


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
    pb = _trainable_bytes_per_param(s)
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
    if s.method in ("full", "freeze"):
        layers = L if s.method == "full" else min(s.freeze_layers, L)
        per = sum(m.count * (m.in_features + m.out_features) for m in spec.linears) + spec.norm_params
        emb = (V + h) * (1 if spec.tie_embeddings else 2) if s.method == "full" else 0
        return layers * per + emb
    if s.method in ("lora", "qlora"):
        per = sum(m.count * (2 * s.lora_r + m.in_features + m.out_features) for m in lora_targets(spec, s.lora_targets))
        return L * per
    return adapter_params(spec, s)


# --------------------------------------------------------------------------- activations


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

    lora = s.method in ("lora", "qlora")
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
        total += a * (2 * kvd + i)  # IA3 multiplies k, v outputs and the down_proj input: mul saves them

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


def logits_bytes_per_token(spec: ModelSpec, s: Setup) -> tuple[float, float, float]:
    """(saved after forward, peak while the loss is formed, peak during the loss backward) per token.

    transformers' ForCausalLMLoss upcasts the logits to fp32 and calls cross_entropy, which is
    log_softmax (saves its fp32 output) + nll_loss. Forming it holds the lm_head output, its fp32
    copy (16-bit only) and the log-probabilities. The backward pass holds the saved log-probs, the
    dense gradient nll_loss creates and the gradient log_softmax returns: 3 x 4 bytes x vocab.
    The Trainer drops the model outputs before backward, so the 16-bit logits are gone by then.
    Gemma-2's final soft-capping (tanh) saves one more vocab-sized tensor.
    """
    V, a = spec.vocab_size, s.act_bytes
    extra = a * V if spec.model_type == "gemma2" else 0
    saved = 4 * V + extra
    forming = a * V + (4 * V if a < 4 else 0) + 4 * V + extra
    backward = 12 * V + extra
    return saved, forming, backward


# --------------------------------------------------------------------------- the estimate


def estimate(
    spec: ModelSpec,
    recipe: Recipe,
    available_bytes: int | None = None,
    n_gpus: int = 1,
    *,
    device: str = "cuda",
    bf16: bool = True,
    batch_size: int | None = None,
    seq_len: int | None = None,
    trained_fraction: float = 1.0,
) -> MemoryEstimate:
    """Memory of one training step (and of inference) for `spec` trained with `recipe`.

    device: "cuda" (default: the plan is for a GPU) or "cpu" (fp32, no CUDA context, CPU paths of
    bitsandbytes). bf16: whether the GPU supports bfloat16 (auto dtypes fall back to fp16).
    n_gpus > 1: per-GPU memory under distributed.strategy (ddp replicates, fsdp shards).
    batch_size / seq_len override the recipe's (the planner's searches use them).
    trained_fraction: the share of tokens with a label, when the batches are known (1.0: all).
    """
    s = resolve_setup(
        recipe, device=device, bf16=bf16, n_gpus=n_gpus, batch_size=batch_size, seq_len=seq_len,
        trained_fraction=trained_fraction,
    )
    return estimate_setup(spec, s, available_bytes)


def estimate_setup(spec: ModelSpec, s: Setup, available_bytes: int | None = None) -> MemoryEstimate:
    notes: list[str] = []
    L, h = spec.num_layers, spec.hidden_size
    a = s.act_bytes
    seq = s.seq_len + (s.virtual_tokens if s.method in ("prompt", "p-tuning") else 0)
    seq_kv = seq + (s.virtual_tokens if s.method == "prefix" else 0)
    T = s.batch_size * seq

    # ---- parameters, gradients, optimizer
    n_train = trainable_params(spec, s)
    pb = _trainable_bytes_per_param(s)
    w = weight_bytes(spec, s)
    adapter = adapter_params(spec, s) * 4
    grads = n_train * pb
    opt = optimizer_state_bytes(spec, s, n_train)
    master = 0.0
    if s.autocast and s.weight_bytes == 4 and s.method in ("full", "freeze"):
        # fp32 weights under autocast: the fp32 weights are the master copy; autocast caches a 16-bit
        # copy of every trainable weight it casts, for the whole forward+backward (torch.autocast
        # cache_enabled=True caches casts of leaf tensors that require grad).
        master = n_train * 2
    if s.n_gpus > 1 and s.strategy == "fsdp":
        # FSDP shards weights, gradients and states; one layer is gathered at a time (plus prefetch).
        gathered = 2 * spec.params_per_layer * s.weight_bytes
        w = w / s.n_gpus + gathered
        grads, opt, master = grads / s.n_gpus, opt / s.n_gpus, master / s.n_gpus
        notes.append(f"FSDP over {s.n_gpus} GPUs: weights, gradients and optimizer states are sharded")
    elif s.n_gpus > 1:
        # DDP keeps a bucketed copy of the gradients for all-reduce (gradient_as_bucket_view=False).
        grads *= 2
        notes.append(f"DDP over {s.n_gpus} GPUs: every GPU holds the whole model, plus gradient buckets")
    grads_during_forward = grads if s.gradient_accumulation > 1 else 0.0

    # ---- activations
    if s.method == "freeze":
        top = min(s.freeze_layers, L)
        layer_full = layer_saved_bytes(spec, s, True, seq_kv)
        layer_frozen = layer_saved_bytes(spec, s, False, seq_kv)
        # Without checkpointing nothing below the first trainable layer needs a graph.
        per_token_layers = top * layer_full
        layer_recompute = layer_full
        if s.gradient_checkpointing:
            layer_recompute = max(layer_full, layer_frozen)
    else:
        layer = layer_saved_bytes(spec, s, s.method == "full", seq_kv)
        per_token_layers = L * layer
        layer_recompute = layer
    head_trainable = s.method == "full"
    final_norm = 4 * h + 4 + ((s.weight_bytes * h + a * h) if head_trainable else 0)
    loss_saved, loss_forming, loss_backward = logits_bytes_per_token(spec, s)
    if s.gradient_checkpointing:
        # transformers checkpoints each decoder layer (Chen et al. 2016, arXiv:1604.06174): only
        # the layer's input is kept; the layer is recomputed during backward.
        # The input is the residual stream, in model.dtype (fp32 weights keep an fp32 stream under autocast).
        checkpoints = L * s.weight_bytes * h
        saved_layers = checkpoints
    else:
        saved_layers = per_token_layers
    saved_act = T * (saved_layers + final_norm)
    # Tokens whose logits are formed in training: the engine projects only labelled positions for
    # plain-head models (see PLAIN_HEAD_MODEL_TYPES); otherwise the model's own loss covers all.
    T_loss = T * s.trained_fraction if fast_loss(spec, s) else T
    head_grad = (spec.vocab_size * h * pb) if head_trainable else 0.0

    # DoRA materializes each target's full weight (W + scale*BA) and its norm per forward.
    dora_tmp = 0.0
    if s.use_dora and s.method in ("lora", "qlora"):
        dora_tmp = max((m.in_features * m.out_features for m in lora_targets(spec, s.lora_targets)), default=0) * 4 * 2
    # QLoRA dequantizes one weight at a time to the compute dtype for its matmul (bnb gemm_4bit
    # fallback and backward): the largest linear, transient.
    dequant_tmp = 0.0
    if s.quant_bits:
        dequant_tmp = max(m.in_features * m.out_features for m in spec.linears) * a

    static = w + adapter + opt + master
    phases: dict[str, dict[str, float]] = {}
    phases["forward"] = {
        "activations": saved_act,
        "logits": T_loss * loss_forming,
        "gradients": grads_during_forward,
        "workspace": dequant_tmp + dora_tmp,
    }
    phases["loss backward"] = {
        "activations": saved_act,
        "logits": T_loss * loss_backward,
        "gradients": grads_during_forward,
        "workspace": 0.0,
    }
    if head_trainable:
        # The output head's backward: its weight gradient appears while the logits' gradient (in the
        # compute dtype) is still alive; the three fp32 loss tensors are gone by then.
        phases["head backward"] = {
            "activations": saved_act,
            "logits": T_loss * a * spec.vocab_size,
            "gradients": max(grads_during_forward, head_grad),
            "workspace": 0.0,
        }
    recompute = T * layer_recompute if s.gradient_checkpointing else 0.0
    phases["layer backward"] = {
        "activations": saved_act - T * final_norm + recompute,
        "logits": 0.0,
        "gradients": max(grads_during_forward, head_grad),
        "workspace": T * layer_workspace_bytes(spec, s) + dequant_tmp + dora_tmp,
    }
    # End of backward: every gradient exists. A trainable tied embedding gets two gradients, from
    # the output head and from the embedding lookup; AccumulateGrad adds them out of place, so for a
    # moment three vocab x hidden tensors are alive (measured on CPU with the demo model).
    tied_sum = 2 * spec.vocab_size * h * pb if (spec.tie_embeddings and s.method == "full") else 0.0
    phases["backward end"] = {
        "activations": 0.0,
        "logits": 0.0,
        "gradients": grads,
        "workspace": tied_sum,
    }
    phases["optimizer step"] = {
        "activations": 0.0,
        "logits": 0.0,
        "gradients": grads,
        "workspace": _optimizer_temporaries(spec, s, n_train),
    }
    totals = {k: static + sum(v.values()) for k, v in phases.items()}
    eval_peak = eval_peak_bytes(spec, s, static)
    peak_phase = max(totals, key=lambda k: totals[k])
    at_peak = phases[peak_phase]
    allocated = int(totals[peak_phase])

    context = CUDA_CONTEXT_BYTES if s.device == "cuda" else 0
    margin = int(ALLOCATOR_MARGIN * allocated)
    components = {
        "weights": int(w),
        "adapter": int(adapter),
        "gradients": int(at_peak["gradients"]),
        "optimizer": int(opt),
        "master_weights": int(master),
        "activations": int(at_peak["activations"]),
        "logits": int(at_peak["logits"]),
        "workspace": int(at_peak["workspace"]),
        "cuda_context": context,
        "allocator_margin": margin,
    }
    total = sum(components.values())

    # ---- inference: generation with a KV cache for batch x seq_len tokens
    kv_cache = 2 * L * spec.kv_dim * s.seq_len * s.batch_size * a
    prefill = s.batch_size * s.seq_len * a * (2 * spec.q_dim + 2 * spec.kv_dim + 3 * spec.intermediate_size)
    last_logits = s.batch_size * spec.vocab_size * (a + 4)
    inf_w = weight_bytes(spec, s) + adapter
    inf_alloc = inf_w + kv_cache + prefill + last_logits
    inference_components = {
        "weights": int(inf_w),
        "kv_cache": int(kv_cache),
        "workspace": int(prefill + last_logits),
        "cuda_context": context,
        "allocator_margin": int(ALLOCATOR_MARGIN * inf_alloc),
    }

    if s.optimizer.startswith("paged"):
        notes.append("paged optimizer: its states can spill to CPU RAM under memory pressure (slower)")
    if s.device == "cpu" and s.optimizer in ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"):
        notes.append(f"{s.optimizer} needs a CUDA GPU")
    if s.method in ("lora", "qlora") and not lora_targets(spec, s.lora_targets):
        names = ", ".join(spec.linear_names())
        notes.append(f"none of the LoRA target modules exist in {spec.model_type}; its linears are: {names}")
    if s.method == "qlora" and s.quant_bits == 8 and s.device == "cuda":
        notes.append(
            "8-bit QLoRA: bitsandbytes keeps the input of every 8-bit linear layer until the backward pass, "
            "so at long sequences it can need more memory than LoRA; 4-bit QLoRA does not"
        )
    if s.attention == "eager" and seq > 2048:
        notes.append("eager attention stores seq x seq probabilities per head: use sdpa or flash_attention_2")
    return MemoryEstimate(
        components=components,
        train_peak_bytes=int(total),
        allocated_peak_bytes=allocated,
        eval_peak_bytes=int(eval_peak),
        inference_bytes=int(sum(inference_components.values())),
        inference_components=inference_components,
        verdict=verdict_for(int(total), available_bytes),
        available_bytes=available_bytes,
        peak_phase=peak_phase,
        phases={k: int(v) for k, v in totals.items()},
        trainable_params=n_train,
        total_params=spec.total_params + (adapter_params(spec, s) if s.method not in ("full", "freeze") else 0),
        setup=s,
        notes=notes,
    )


def fast_loss(spec: ModelSpec, s: Setup) -> bool:
    """Whether the engine computes this setup's loss at labelled positions only (one GPU or CPU)."""
    return spec.model_type in PLAIN_HEAD_MODEL_TYPES and s.method not in VIRTUAL_TOKEN_METHODS and s.n_gpus == 1


def eval_peak_bytes(spec: ModelSpec, s: Setup, static: float) -> float:
    """Allocated bytes while one evaluation batch runs (between training steps, under no_grad).

    Evaluation uses the model's own loss over every position: the head's logits (compute dtype),
    their fp32 upcast and log_softmax's fp32 output, V x T each (the upcast is a no-op in fp32).
    Layers save nothing under no_grad; one layer's MLP intermediates are the largest transient.
    Weights, adapters and optimizer states stay alive (the Trainer keeps the optimizer); gradients
    were freed by zero_grad(set_to_none=True).
    """
    T = s.batch_size * s.seq_len
    a, V = s.act_bytes, spec.vocab_size
    logits = T * V * (a + (4 if a < 4 else 0) + 4)
    layer = T * a * (3 * spec.intermediate_size + 2 * spec.hidden_size)
    return static + max(logits, layer)


def _optimizer_temporaries(spec: ModelSpec, s: Setup, n_train: int) -> float:
    """What optimizer.step() allocates on top of gradients and states.

    On CUDA the engine asks the Trainer for "adamw_torch_fused" (engine.arguments.OPTIMIZERS): one
    kernel updates weights and states in place, no temporaries. On CPU the engine's plain
    "adamw_torch" runs torch's single-tensor loop, which makes two temporaries of the largest
    parameter (sqrt, then the division). bitsandbytes' 8-bit and paged optimizers update in place.
    Gradient clipping's norms are per tensor (negligible).
    """
    pb = _trainable_bytes_per_param(s)
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


def plan(spec: ModelSpec, recipe: Recipe, available_bytes: int | None, **kwargs: Any) -> Any:
    """The fit planner (tuitune.core.memory.fit_plan.plan): methods table, limits, suggestions -> FitPlan."""
    from tuitune.core.memory.fit_plan import plan as fit_plan

    return fit_plan(spec, recipe, available_bytes, **kwargs)


def with_overrides(s: Setup, **changes: Any) -> Setup:
    """A copy of the setup with some inputs changed (used by the planner)."""
    return replace(s, **changes)
