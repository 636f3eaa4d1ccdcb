"""Loading a recipe's base model the way training needs it: device, dtype, quantization, attention.

Shared by the trainer, chat, evaluation and export, so a tuned adapter is always put back on a
base loaded exactly as it was during training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError
from tuitune.core.models.load_errors import loading
from tuitune.core.models.precision import autocast_mode, cpu_bf16_native, dtype_name
from tuitune.core.models.resolution import ModelSource, load_tokenizer, resolve_model

if TYPE_CHECKING:
    import torch

    from tuitune.core.recipe import Recipe



def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_supported(device: str) -> bool:
    import torch

    return device == "cuda" and torch.cuda.is_bf16_supported()


def _named_dtype(choice: str, device: str) -> torch.dtype:
    import torch

    return getattr(torch, dtype_name(choice, device, bf16_supported(device)))


def weight_dtype(recipe: Recipe, device: str) -> torch.dtype:
    """dtype of the base weights: `model.dtype`, where auto = bf16/fp16 on GPU, fp32 on CPU."""
    return _named_dtype(recipe.model.dtype, device)


def compute_dtype(recipe: Recipe, device: str) -> torch.dtype:
    return _named_dtype(recipe.quantization.compute_dtype, device)


def mixed_precision(recipe: Recipe, device: str) -> str:
    """"bf16", "fp16" or "no" for the Trainer (precision.autocast_mode).

    On CPU, auto means fp32; an explicit "bf16" runs under CPU autocast where the CPU has native
    bf16 (cpu_bf16_native), else fp32 (the engine warns).
    """
    choice = recipe.train.mixed_precision
    if device == "cpu":
        return autocast_mode(choice, device, choice == "bf16" and cpu_bf16_native())
    if choice == "bf16" and not bf16_supported(device):
        raise UserError(
            "train.mixed_precision = \"bf16\" but this GPU does not support bfloat16",
            'use "fp16" or "auto" (Ampere or newer GPUs support bf16)',
        )
    return autocast_mode(choice, device, bf16_supported(device))


def quantization_config(recipe: Recipe, device: str) -> Any | None:
    """A BitsAndBytesConfig for QLoRA recipes, None otherwise."""
    if recipe.method.type != "qlora":
        return None
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as e:  # pragma: no cover - bitsandbytes is a dependency
        raise UserError("QLoRA needs bitsandbytes", "pip install bitsandbytes") from e
    q = recipe.quantization
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=compute_dtype(recipe, device),
        bnb_4bit_quant_storage=weight_dtype(recipe, device),
    )


def load_base_model(
    recipe: Recipe,
    *,
    device: str | None = None,
    source: ModelSource | None = None,
    device_map: Any = None,
) -> tuple[Any, Any, ModelSource]:
    """(model, tokenizer, source) for the recipe's base model, quantized for QLoRA recipes."""
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    source = source or resolve_model(recipe.model_path)
    tokenizer = load_tokenizer(source, trust_remote_code=recipe.model.trust_remote_code)
    kwargs: dict[str, Any] = {
        "dtype": weight_dtype(recipe, device),
        "trust_remote_code": recipe.model.trust_remote_code,
    }
    if recipe.model.attn_implementation != "auto":
        kwargs["attn_implementation"] = recipe.model.attn_implementation
    qconfig = quantization_config(recipe, device)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = device_map or ({"": 0} if device == "cuda" else "cpu")
    elif device_map is not None:
        kwargs["device_map"] = device_map
    with loading(f"the model {recipe.model.name_or_path}", source.path):
        model = AutoModelForCausalLM.from_pretrained(str(source.path), **kwargs)
    if qconfig is None and device_map is None:
        model.to(device)
    return model, tokenizer, source
