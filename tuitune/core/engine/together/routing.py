"""Each row of a fused batch through its own job's adapter, with the base layer run once for all rows.

peft can mix adapters in one batch (`adapter_names=`), but only for inference: it refuses in
training mode and with DoRA, and its hooks are gone when gradient checkpointing recomputes a layer
in the backward pass. So this wraps the forward of every LoRA layer: while `Routing.spans` is set
(from the fused forward until its backward is done) the layer runs its frozen base on the whole
batch, then adds each job's low-rank update to that job's rows (contiguous, so slices, not
gathers). Outside a fused step the layer's own forward runs, unchanged.
"""

from __future__ import annotations

import functools
from typing import Any


class Routing:
    """Which rows belong to which adapter while a fused step runs: [(adapter, first row, end row)]."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, int, int]] | None = None


def install_routing(model: Any) -> Routing | None:
    """Wrap every LoRA layer of `model`; None when some layer cannot be routed (embedding or conv
    adapters), in which case the group trains round-robin."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if not layers or any(len(getattr(m, "lora_embedding_A", {})) for m in layers):
        return None
    if any(type(m.get_base_layer()).__name__.startswith("Conv") for m in layers):
        return None
    routing = Routing()
    for layer in layers:
        layer.forward = functools.partial(_routed_forward, layer, layer.forward, routing)
    return routing


def _routed_forward(layer: Any, own_forward: Any, routing: Routing, x: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    spans = routing.spans
    if spans is None or layer.merged or layer.disable_adapters:
        return own_forward(x, *args, **kwargs)
    result = layer.base_layer(x, *args, **kwargs)
    parts = []
    for name, start, end in spans:
        part = result[start:end]
        if name in layer.lora_A:
            lora_A = layer.lora_A[name]
            sub = layer._cast_input_dtype(x[start:end], lora_A.weight.dtype)
            if name in layer.lora_variant:  # DoRA: peft's own per-adapter computation on these rows
                part = layer.lora_variant[name].forward(layer, active_adapter=name, x=sub, result=part)
            else:  # as peft's Linear.forward for one active adapter
                part = part + layer.lora_B[name](lora_A(layer.lora_dropout[name](sub))) * layer.scaling[name]
        parts.append(part.to(result.dtype))
    return torch.cat(parts, dim=0)
