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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuitune.core.memory.activations import layer_saved_bytes, layer_workspace_bytes
from tuitune.core.memory.head import head_memory
from tuitune.core.memory.parameters import (
    adapter_params,
    lora_targets,
    optimizer_state_bytes,
    optimizer_temporaries,
    trainable_bytes_per_param,
    trainable_params,
    weight_bytes,
)
from tuitune.core.memory.setup import Setup, resolve_setup
from tuitune.core.recipe.methods import LORA_METHODS, trains_base_weights

if TYPE_CHECKING:
    from tuitune.core.models.spec import ModelSpec
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

# train.offload_activations: checkpointed layer inputs on the GPU at once (one in use, one in transit).
OFFLOAD_IN_FLIGHT = 2

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
    chunked_head: bool = True,
) -> MemoryEstimate:
    """Memory of one training step (and of inference) for `spec` trained with `recipe`.

    device: "cuda" (default: the plan is for a GPU) or "cpu" (fp32, no CUDA context, CPU paths of
    bitsandbytes). bf16: whether the GPU supports bfloat16 (auto dtypes fall back to fp16).
    n_gpus > 1: per-GPU memory under distributed.strategy (ddp replicates, fsdp shards).
    batch_size / seq_len override the recipe's (the planner's searches use them).
    trained_fraction: the share of tokens with a label, when the batches are known (1.0: all).
    chunked_head: False estimates the model's own loss over full logits instead of the engine's
    chunked head (for figures measured with other tools, and "before/after" comparisons).
    """
    s = resolve_setup(
        recipe, device=device, bf16=bf16, n_gpus=n_gpus, batch_size=batch_size, seq_len=seq_len,
        trained_fraction=trained_fraction, chunked_head=chunked_head,
    )
    return estimate_setup(spec, s, available_bytes)


def estimate_setup(spec: ModelSpec, s: Setup, available_bytes: int | None = None) -> MemoryEstimate:
    """The estimate for an already resolved setup (the planner varies setups and calls this)."""
    state = state_memory(spec, s)
    act = activation_memory(spec, s)
    phases = step_phases(spec, s, state, act)
    totals = {k: state.static + sum(v.values()) for k, v in phases.items()}
    peak_phase = max(totals, key=lambda k: totals[k])
    at_peak = phases[peak_phase]
    allocated = int(totals[peak_phase])
    context = CUDA_CONTEXT_BYTES if s.device == "cuda" else 0
    components = {
        "weights": int(state.weights),
        "adapter": int(state.adapter),
        "gradients": int(at_peak["gradients"]),
        "optimizer": int(state.optimizer),
        "master_weights": int(state.master),
        "activations": int(at_peak["activations"]),
        "logits": int(at_peak["logits"]),
        "workspace": int(at_peak["workspace"]),
        "cuda_context": context,
        "allocator_margin": int(ALLOCATOR_MARGIN * allocated),
    }
    total = sum(components.values())
    inference_components = inference_memory(spec, s, state.adapter, context)
    return MemoryEstimate(
        components=components,
        train_peak_bytes=int(total),
        allocated_peak_bytes=allocated,
        eval_peak_bytes=int(eval_peak_bytes(spec, s, state.static)),
        inference_bytes=int(sum(inference_components.values())),
        inference_components=inference_components,
        verdict=verdict_for(int(total), available_bytes),
        available_bytes=available_bytes,
        peak_phase=peak_phase,
        phases={k: int(v) for k, v in totals.items()},
        trainable_params=state.trainable,
        total_params=spec.total_params + (adapter_params(spec, s) if not trains_base_weights(s.method) else 0),
        setup=s,
        notes=state.notes + setup_notes(spec, s),
    )


# --------------------------------------------------------------------------- the phases of a step


@dataclass
class StateMemory:
    """What the whole step keeps: weights, adapter, gradients, optimizer states, autocast copies (bytes)."""

    weights: float
    adapter: float
    gradients: float
    optimizer: float
    master: float
    trainable: int  # trainable parameters
    grads_during_forward: float  # gradients accumulated over micro-batches, alive through the forward
    notes: list[str] = field(default_factory=list)

    @property
    def static(self) -> float:
        """Alive in every phase of the step."""
        return self.weights + self.adapter + self.optimizer + self.master


def state_memory(spec: ModelSpec, s: Setup) -> StateMemory:
    """Parameters, gradients and optimizer states, per GPU under DDP or FSDP."""
    notes: list[str] = []
    n_train = trainable_params(spec, s)
    w = weight_bytes(spec, s)
    grads = n_train * trainable_bytes_per_param(s)
    opt = optimizer_state_bytes(spec, s, n_train)
    master = 0.0
    if s.autocast and s.weight_bytes == 4 and trains_base_weights(s.method):
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
    during_forward = grads if s.gradient_accumulation > 1 else 0.0
    return StateMemory(w, adapter_params(spec, s) * 4, grads, opt, master, n_train, during_forward, notes)


@dataclass
class ActivationMemory:
    """What the tokens of one micro-batch cost (bytes), by the moment they are alive."""

    saved: float  # saved by the forward for the backward (layers or their checkpoints, final norm)
    final_norm: float  # the final norm's share of `saved`, freed once the head's backward is done
    recompute: float  # one layer recomputed during the backward (checkpointing)
    loss_forming: float  # logits and loss tensors while the loss is formed
    loss_backward: float  # the loss's gradient tensors
    head_logits_grad: float  # what a trainable head's weight gradient needs formed, beyond itself
    layer_workspace: float  # gradients alive while one layer runs its backward
    transient: float  # one weight dequantized (QLoRA) or materialized (DoRA) at a time
    head_grad: float  # the output head's weight gradient (full fine-tuning)


def activation_memory(spec: ModelSpec, s: Setup) -> ActivationMemory:
    L, h = spec.num_layers, spec.hidden_size
    a = s.act_bytes
    seq = s.input_len
    seq_kv = seq + (s.virtual_tokens if s.method == "prefix" else 0)  # prefix: keys and values only
    T = s.batch_size * seq
    if s.method == "freeze":
        top = min(s.freeze_layers, L)
        layer_full = layer_saved_bytes(spec, s, True, seq_kv)
        layer_frozen = layer_saved_bytes(spec, s, False, seq_kv)
        # Without checkpointing nothing below the first trainable layer needs a graph.
        per_token_layers = top * layer_full
        layer_recompute = max(layer_full, layer_frozen) if s.gradient_checkpointing else layer_full
    else:
        layer = layer_saved_bytes(spec, s, s.method == "full", seq_kv)
        per_token_layers = L * layer
        layer_recompute = layer
    head_trainable = s.method == "full"
    final_norm = 4 * h + 4 + ((s.weight_bytes * h + a * h) if head_trainable else 0)
    if s.gradient_checkpointing:
        # transformers checkpoints each decoder layer (Chen et al. 2016, arXiv:1604.06174): only
        # the layer's input is kept; the layer is recomputed during backward.
        # The input is the residual stream, in model.dtype (fp32 weights keep an fp32 stream under autocast).
        # Offloaded (CUDA), the inputs wait in host memory: on the GPU, the one being copied back
        # while the layer above recomputes, and the one in use.
        saved_layers = (min(L, OFFLOAD_IN_FLIGHT) if offloads(s) else L) * s.weight_bytes * h
    else:
        saved_layers = per_token_layers
    # The head and its loss: the engine's chunked head projects only labelled positions (memory.head).
    head = head_memory(spec, s, T, s.batch_size * s.seq_len * s.trained_fraction)
    # DoRA materializes each target's full weight (W + scale*BA) and its norm per forward.
    dora_tmp = 0.0
    if s.use_dora and s.method in LORA_METHODS:
        dora_tmp = max((m.in_features * m.out_features for m in lora_targets(spec, s.lora_targets)), default=0) * 4 * 2
    # QLoRA dequantizes one weight at a time to the compute dtype for its matmul (bnb gemm_4bit
    # fallback and backward): the largest linear, transient.
    dequant_tmp = max(m.in_features * m.out_features for m in spec.linears) * a if s.quant_bits else 0.0
    return ActivationMemory(
        saved=T * (saved_layers + final_norm),
        final_norm=T * final_norm,
        recompute=T * layer_recompute if s.gradient_checkpointing else 0.0,
        loss_forming=head.forming,
        loss_backward=head.backward,
        head_logits_grad=head.head_backward,
        layer_workspace=T * layer_workspace_bytes(spec, s),
        transient=dequant_tmp + dora_tmp,
        head_grad=(spec.vocab_size * h * trainable_bytes_per_param(s)) if head_trainable else 0.0,
    )


def step_phases(spec: ModelSpec, s: Setup, state: StateMemory, act: ActivationMemory) -> dict[str, dict[str, float]]:
    """Bytes beyond `state.static` at each moment of a step (the module docstring lists them)."""
    during = state.grads_during_forward
    phases: dict[str, dict[str, float]] = {
        "forward": {"activations": act.saved, "logits": act.loss_forming, "gradients": during, "workspace": act.transient},
        "loss backward": {"activations": act.saved, "logits": act.loss_backward, "gradients": during, "workspace": 0.0},
    }
    if s.method == "full":
        # The output head's backward: its weight gradient appears while the logits' gradient (in the
        # compute dtype) is still alive; the three fp32 loss tensors are gone by then.
        phases["head backward"] = {
            "activations": act.saved, "logits": act.head_logits_grad, "gradients": max(during, act.head_grad), "workspace": 0.0,
        }
    phases["layer backward"] = {
        "activations": act.saved - act.final_norm + act.recompute,
        "logits": 0.0,
        "gradients": max(during, act.head_grad),
        "workspace": act.layer_workspace + act.transient,
    }
    # End of backward: every gradient exists. A trainable tied embedding gets two gradients, from
    # the output head and from the embedding lookup; AccumulateGrad adds them out of place, so for a
    # moment three vocab x hidden tensors are alive (measured on CPU with the demo model).
    tied = spec.tie_embeddings and s.method == "full"
    tied_sum = 2 * spec.vocab_size * spec.hidden_size * trainable_bytes_per_param(s) if tied else 0.0
    phases["backward end"] = {"activations": 0.0, "logits": 0.0, "gradients": state.gradients, "workspace": tied_sum}
    phases["optimizer step"] = {
        "activations": 0.0, "logits": 0.0, "gradients": state.gradients,
        "workspace": optimizer_temporaries(spec, s, state.trainable),
    }
    return phases


def inference_memory(spec: ModelSpec, s: Setup, adapter: float, context: int) -> dict[str, int]:
    """Generation with a KV cache for batch x seq_len tokens: weights, cache, prefill workspace."""
    a = s.act_bytes
    kv_cache = 2 * spec.num_layers * spec.kv_dim * s.seq_len * s.batch_size * a
    prefill = s.batch_size * s.seq_len * a * (2 * spec.q_dim + 2 * spec.kv_dim + 3 * spec.intermediate_size)
    last_logits = s.batch_size * spec.vocab_size * (a + 4)
    weights = weight_bytes(spec, s) + adapter
    allocated = weights + kv_cache + prefill + last_logits
    return {
        "weights": int(weights),
        "kv_cache": int(kv_cache),
        "workspace": int(prefill + last_logits),
        "cuda_context": context,
        "allocator_margin": int(ALLOCATOR_MARGIN * allocated),
    }


def offloads(s: Setup) -> bool:
    """Whether the checkpointed layers' inputs leave the device (engine.offload: CUDA only)."""
    return s.offload_activations and s.gradient_checkpointing and s.device == "cuda"


def offloaded_host_bytes(spec: ModelSpec, s: Setup) -> float:
    """Pinned host memory the offloaded layer inputs take during one micro-batch."""
    if not offloads(s):
        return 0.0
    return spec.num_layers * s.batch_size * s.input_len * s.weight_bytes * spec.hidden_size


def setup_notes(spec: ModelSpec, s: Setup) -> list[str]:
    """What the user should know about this setup, beyond the figures."""
    notes = []
    if offloads(s):
        notes.append(
            f"activation offload: {offloaded_host_bytes(spec, s) / GiB:.2f} GiB of checkpointed layer inputs "
            "per micro-batch wait in pinned host RAM (copied over PCIe twice a step)"
        )
    elif s.offload_activations and s.gradient_checkpointing and s.device == "cpu":
        notes.append("offload_activations changes nothing on a CPU: activations already live in RAM")
    if s.optimizer.startswith("paged"):
        notes.append("paged optimizer: its states can spill to CPU RAM under memory pressure (slower)")
    if s.device == "cpu" and s.optimizer in ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"):
        notes.append(f"{s.optimizer} needs a CUDA GPU")
    if s.method in LORA_METHODS and not lora_targets(spec, s.lora_targets):
        names = ", ".join(spec.linear_names())
        notes.append(f"none of the LoRA target modules exist in {spec.model_type}; its linears are: {names}")
    if s.method == "qlora" and s.quant_bits == 8 and s.device == "cuda":
        notes.append(
            "8-bit QLoRA: bitsandbytes keeps the input of every 8-bit linear layer until the backward pass, "
            "so at long sequences it can need more memory than LoRA; 4-bit QLoRA does not"
        )
    if s.attention == "eager" and s.input_len > 2048:
        notes.append("eager attention stores seq x seq probabilities per head: use sdpa or flash_attention_2")
    return notes


def eval_peak_bytes(spec: ModelSpec, s: Setup, static: float) -> float:
    """Allocated bytes while one evaluation batch runs (between training steps, under no_grad).

    Evaluation forms the same loss as training, without gradients (memory.head: the chunked head
    over the labelled positions, or the plain head's logits over all of them). Layers save nothing
    under no_grad; one layer's MLP intermediates are the largest transient. Weights, adapters and
    optimizer states stay alive (the Trainer keeps the optimizer); gradients were freed by
    zero_grad(set_to_none=True).
    """
    T = s.batch_size * s.seq_len
    logits = head_memory(spec, s, T, T * s.trained_fraction).evaluation
    layer = T * s.act_bytes * (3 * spec.intermediate_size + 2 * spec.hidden_size)
    return static + max(logits, layer)

