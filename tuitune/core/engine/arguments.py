"""The recipe's [train] section as transformers TrainingArguments, plus checks that need no model."""

from __future__ import annotations

import dataclasses
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.models.loading import mixed_precision
from tuitune.core.recipe import Recipe
from tuitune.core.runs import RunDirectory

# Recipe optimizer -> transformers OptimizerNames value (on CPU / on CUDA).
OPTIMIZERS = {
    "adamw_torch": ("adamw_torch", "adamw_torch_fused"),
    "adamw_8bit": ("adamw_bnb_8bit", "adamw_bnb_8bit"),
    "paged_adamw_8bit": ("paged_adamw_8bit", "paged_adamw_8bit"),
    "paged_adamw_32bit": ("paged_adamw_32bit", "paged_adamw_32bit"),
    "sgd": ("sgd", "sgd"),
    "adafactor": ("adafactor", "adafactor"),
}
CUDA_ONLY_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit")


def check_before_loading(recipe: Recipe, device: str, world_size: int = 1) -> list[str]:
    """Problems visible before the model loads (raised as UserError) and warnings (returned)."""
    warnings: list[str] = []
    opt = recipe.train.optimizer
    if opt in CUDA_ONLY_OPTIMIZERS and device != "cuda":
        raise UserError(
            f'train.optimizer = "{opt}" needs a CUDA GPU (bitsandbytes runs its 8-bit and paged optimizers on the GPU)',
            'use "adamw_torch" on this machine, or "adafactor" / "sgd" for less optimizer memory',
        )
    if device == "cpu" and recipe.train.mixed_precision in ("bf16", "fp16") and mixed_precision(recipe, device) == "no":
        why = "this CPU has no native bfloat16 (AMX / AVX512-BF16)" if recipe.train.mixed_precision == "bf16" else "fp16 needs a GPU"
        warnings.append(f'train.mixed_precision = "{recipe.train.mixed_precision}" is ignored: {why}; training in float32')
    if recipe.method.type == "prefix" and recipe.train.gradient_checkpointing:
        raise UserError(
            "prefix tuning does not work with gradient checkpointing (peft feeds its prefixes as a KV cache)",
            "set train.gradient_checkpointing = false, or use method prompt / p-tuning / lora",
        )
    mixed_precision(recipe, device)  # raises for bf16 on a GPU without it
    if world_size > 1 and recipe.distributed.strategy == "fsdp" and recipe.method.type == "qlora" and device != "cuda":
        raise UserError("FSDP with QLoRA needs CUDA GPUs", 'use distributed.strategy = "ddp" or method lora')
    return warnings


def position_limit_warning(recipe: Recipe, model: Any) -> str | None:
    """A warning when data.cutoff_len is longer than the model's positions (max_position_embeddings):
    rows past that length go where the model has no trained position, or fail outright."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    cutoff = recipe.data.cutoff_len
    if isinstance(limit, int) and 0 < limit < cutoff:
        return (
            f"data.cutoff_len = {cutoff} is longer than {recipe.model.name_or_path} can place "
            f"(max_position_embeddings = {limit}): tokens past {limit} have no trained position; "
            f"set data.cutoff_len to {limit} or less"
        )
    return None


def _field_names() -> set[str]:
    from transformers import TrainingArguments

    return {f.name for f in dataclasses.fields(TrainingArguments)}


def training_arguments(
    recipe: Recipe,
    run: RunDirectory,
    device: str,
    *,
    has_eval: bool,
    packed: bool,
    world_size: int = 1,
    layer_classes: list[str] | None = None,
) -> Any:
    """TrainingArguments for this recipe. Logging goes to our callbacks only (report_to none, no tqdm)."""
    from transformers import TrainingArguments

    t = recipe.train
    names = _field_names()
    precision = mixed_precision(recipe, device)
    kw: dict[str, Any] = {
        "output_dir": str(run.checkpoints_dir),
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps if t.max_steps > 0 else -1,
        "learning_rate": t.learning_rate,
        "lr_scheduler_type": t.lr_scheduler,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": OPTIMIZERS[t.optimizer][1 if device == "cuda" else 0],
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_strategy": "steps",
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        # Report NaN/inf as they are: the default filter would hide a diverging run.
        "logging_nan_inf_filter": False,
        "save_strategy": "steps" if t.save_steps > 0 else "no",
        "save_steps": t.save_steps if t.save_steps > 0 else 500,
        "save_total_limit": t.save_total_limit or None,
        "eval_strategy": ("steps" if t.eval_steps > 0 else "epoch") if has_eval else "no",
        "prediction_loss_only": True,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,  # our collators already return exactly the model inputs
        "dataloader_pin_memory": device == "cuda",
        "use_cpu": device == "cpu",
        # Unpacked data: batch rows of similar length together, so padding stays small.
        "train_sampling_strategy": "random" if packed else "group_by_length",
        "ddp_find_unused_parameters": False,
    }
    if has_eval and t.eval_steps > 0:
        kw["eval_steps"] = t.eval_steps
    # warm-up as a ratio: newer transformers take a float < 1 in warmup_steps, older ones warmup_ratio.
    if "warmup_ratio" in names:
        kw["warmup_ratio"] = t.warmup_ratio
    else:
        kw["warmup_steps"] = float(t.warmup_ratio)
    if t.gradient_checkpointing:
        key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
        kw[key] = True
        # Non-reentrant checkpointing works with frozen embeddings (PEFT) without extra hooks.
        kw[key + "_kwargs"] = {"use_reentrant": False}
    if world_size > 1 and recipe.distributed.strategy == "fsdp":
        kw["fsdp"] = "full_shard auto_wrap"
        config: dict[str, Any] = {"use_orig_params": True, "activation_checkpointing": False}
        if layer_classes:
            config["transformer_layer_cls_to_wrap"] = layer_classes
        kw["fsdp_config"] = config
    return TrainingArguments(**kw)
