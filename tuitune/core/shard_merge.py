"""Merging a LoRA adapter into its base one safetensors shard at a time.

peft's merge_and_unload needs the whole base model in memory (a 70B base: ~140 GB in 16-bit), while
a LoRA delta only touches the weights it targets: W' = W + scale * B @ A, weight by weight. So each
shard is loaded, its targeted weights get their delta, it is written and freed: the peak is about
one shard plus the adapter. This is the arithmetic peft's LoRA `get_delta_weight` does for Linear
layers (scale = alpha / r, or alpha / sqrt(r) with rsLoRA; per-module rank/alpha patterns);
anything else (DoRA, embeddings, saved full modules, fan-in-fan-out layers, a base without
safetensors) is left to peft's merge of the whole model: `shard_merge_obstacle` says why.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.progress import ProgressFn, report

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")


def base_shards(base_dir: Path) -> list[str]:
    """The base's safetensors files in order ([] when it has none)."""
    index = base_dir / INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return sorted(set(weight_map.values()))
    return [SINGLE] if (base_dir / SINGLE).is_file() else []


def shard_merge_obstacle(adapter_dir: Path, base_dir: Path) -> str:
    """Why this adapter cannot be merged shard by shard ("" when it can). Reads configs only."""
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable adapter_config.json"
    if config.get("peft_type") != "LORA":
        return f"{config.get('peft_type')} adapter"
    for key, why in (("use_dora", "DoRA"), ("fan_in_fan_out", "fan-in-fan-out layers"), ("modules_to_save", "saved full modules"),
                     ("trainable_token_indices", "trained token embeddings"), ("lora_bias", "LoRA biases")):
        if config.get(key):
            return why
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        return "the adapter is not saved as safetensors"
    if not base_shards(base_dir):
        return "the base model has no safetensors weights"
    return ""


def merge_by_shard(
    adapter_dir: Path, base_dir: Path, out: Path, *, dtype_name: str, progress: ProgressFn | None = None
) -> list[str]:
    """Write the merged weights (same shard layout as the base) and config to `out`; returns the shards.

    The tokenizer is not written here (the caller saves the run's tokenizer and chat template).
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    deltas = _lora_pairs(load_file(str(adapter_dir / "adapter_model.safetensors")))
    dtype = getattr(torch, dtype_name)
    shards = base_shards(base_dir)
    out.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    for n, shard in enumerate(shards, 1):
        report(progress, "load", f"loading shard {n}/{len(shards)} ({shard})", n - 1, len(shards))
        with safe_open(str(base_dir / shard), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(base_dir / shard))
        report(progress, "merge", f"adding the adapter's deltas to shard {n}/{len(shards)}", n - 1, len(shards))
        for name in list(tensors):
            module = name.removesuffix(".weight")
            weight = tensors[name]
            if module in deltas and name.endswith(".weight"):
                a, b = deltas[module]
                scale = _scale(config, module, a.shape[0])
                merged = weight.to(torch.float32) + scale * (b.to(torch.float32) @ a.to(torch.float32))
                if not torch.isfinite(merged).all():
                    raise UserError(f"{adapter_dir}: merging {module} gives NaN/inf weights", "the run may have diverged; check its loss")
                tensors[name] = merged.to(dtype)
                done.add(module)
            elif weight.is_floating_point():
                tensors[name] = weight.to(dtype)
        report(progress, "save", f"saving merged shard {n}/{len(shards)}", n, len(shards))
        save_file(tensors, str(out / shard), metadata={**metadata, "format": "pt"})
        del tensors
    missing = sorted(set(deltas) - done)
    if missing:
        raise UserError(f"{adapter_dir}: the base {base_dir} has no weight for {missing[0]}", "the base model must be the one the run was trained on")
    _copy_configs(base_dir, out, dtype_name)
    return shards


def _lora_pairs(state: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """module name in the base -> (lora_A weight, lora_B weight)."""
    halves: dict[str, dict[str, Any]] = {}
    for key, tensor in state.items():
        m = _KEY.match(key)
        if m is None:
            raise UserError(f"adapter weight {key} is not a LoRA A/B matrix", "merge with peft instead")
        halves.setdefault(m["module"], {})[m["ab"]] = tensor
    pairs = {}
    for module, ab in halves.items():
        if set(ab) != {"A", "B"} or ab["A"].dim() != 2:
            raise UserError(f"adapter module {module} is not a Linear LoRA pair", "merge with peft instead")
        pairs[module] = (ab["A"], ab["B"])
    return pairs


def _scale(config: dict[str, Any], module: str, rank: int) -> float:
    """peft's LoRA scaling for this module: alpha / r (rsLoRA: alpha / sqrt(r)), patterns first."""
    from peft.utils.other import get_pattern_key

    alpha_pattern = config.get("alpha_pattern") or {}
    key = get_pattern_key(list(alpha_pattern), module)
    alpha = alpha_pattern.get(key, config.get("lora_alpha", 8))
    return alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _copy_configs(base_dir: Path, out: Path, dtype_name: str) -> None:
    config = json.loads((base_dir / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = dtype_name
    config.pop("torch_dtype", None)
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in ("generation_config.json", INDEX):
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, out / name)
