"""The estimator's inputs: a recipe read the way loading and the trainer read it, on a device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuitune.core.models.precision import DTYPE_BYTES, autocast_mode, dtype_name

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe


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
    # The engine's chunked head + loss (engine.head_loss); False: the model's own loss over full
    # logits (what other tools do: the published reference figures were measured that way).
    chunked_head: bool = True
    # train.offload_activations: the checkpointed layers' inputs wait in pinned host memory (CUDA
    # with checkpointing on: estimator.offloads says when it applies).
    offload_activations: bool = False

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def input_len(self) -> int:
        """Positions the model runs per row: prompt and p-tuning prepend their virtual tokens to the
        input (prefix adds them to every layer's keys and values only)."""
        return self.seq_len + (self.virtual_tokens if self.method in ("prompt", "p-tuning") else 0)


def resolve_setup(
    recipe: Recipe,
    *,
    device: str = "cuda",
    bf16: bool = True,
    n_gpus: int = 1,
    batch_size: int | None = None,
    seq_len: int | None = None,
    trained_fraction: float = 1.0,
    chunked_head: bool = True,
) -> Setup:
    """Read the recipe the way loading and the trainer interpret it (models/precision.py's policy).

    bf16 on "cuda": the GPU supports bfloat16; on "cpu": the CPU multiplies bfloat16 natively
    (precision.cpu_bf16_native), the only case where the engine trains a CPU recipe with
    mixed_precision = "bf16" under CPU autocast (elsewhere it trains in float32).
    """
    method = recipe.method.type
    wb = DTYPE_BYTES[dtype_name(recipe.model.dtype, device, bf16)]
    autocast = autocast_mode(recipe.train.mixed_precision, device, bf16) != "no"
    act = 2 if autocast else wb  # matmul outputs under autocast are 16-bit
    if method == "qlora" and not autocast:
        act = DTYPE_BYTES[dtype_name(recipe.quantization.compute_dtype, device, bf16)]
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
        chunked_head=chunked_head,
        offload_activations=recipe.train.offload_activations,
    )
