"""Will it fit? Memory of a fine-tuning run, from the architecture alone, and what would make it fit.

- estimator.py    `estimate(spec, recipe, ...) -> MemoryEstimate`: the step's phases, the peak, the verdict
- setup.py        `resolve_setup`: a recipe read as loading and the trainer read it (the estimator's inputs)
- parameters.py   weights, adapters, gradients, optimizer states
- activations.py  saved activations per token
- head.py         the output head and its loss (the engine's chunked head, or the plain one)
- fit_plan.py     `plan(...) -> FitPlan`: methods side by side, largest batch / longest sequence, suggestions
- targets.py      what to plan for: each GPU here, all of them, or a card size
- probe.py        measured peaks of real training steps (live tensor bytes on CPU)
- reference.py    published and measured peaks the estimator is checked against

Pure arithmetic at import (torch only inside probe.py's functions). The names below are the public API.
"""

from tuitune.core.memory.activations import layer_saved_bytes
from tuitune.core.memory.estimator import (
    ALLOCATOR_MARGIN,
    COMPONENT_LABELS,
    CUDA_CONTEXT_BYTES,
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_TIGHT,
    VERDICT_UNKNOWN,
    MemoryEstimate,
    estimate,
    estimate_setup,
    verdict_for,
)
from tuitune.core.memory.head import head_memory
from tuitune.core.memory.parameters import (
    adapter_params,
    lora_targets,
    optimizer_state_bytes,
    optimizer_temporaries,
    quantized_linear_bytes,
    trainable_params,
    weight_bytes,
)
from tuitune.core.memory.setup import Setup, resolve_setup

__all__ = [
    "ALLOCATOR_MARGIN", "COMPONENT_LABELS", "CUDA_CONTEXT_BYTES", "VERDICT_FITS", "VERDICT_NO",
    "VERDICT_TIGHT", "VERDICT_UNKNOWN", "MemoryEstimate", "Setup", "adapter_params", "estimate", "estimate_setup",
    "head_memory", "layer_saved_bytes", "lora_targets", "optimizer_state_bytes", "optimizer_temporaries",
    "quantized_linear_bytes", "resolve_setup", "trainable_params", "verdict_for", "weight_bytes",
]
