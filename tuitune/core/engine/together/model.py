"""The group's model: the base loaded once, one named adapter per job, and what each job keeps to itself.

A job's turn (turns.py) starts with its adapter active (the only one peft lets the optimizer and
`requires_grad` see), its own RNG state (dropout, data order) and its own accumulated gradients in
`.grad`; when the turn ends they are put aside. So the Trainer of each job clips, steps and zeroes
exactly its adapter's gradients, as it would alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.engine.build import (
    BuiltModel,
    continue_adapter,
    count_parameters,
    peft_config,
    prepare_quantized_base,
    uses_packing,
)
from tuitune.core.models.loading import load_base_model, mixed_precision, weight_dtype
from tuitune.core.recipe import Recipe


def adapter_name(index: int) -> str:
    """The peft adapter of the group's index-th job (checkpoints and results are saved without it)."""
    return f"job{index}"


@dataclass
class JobState:
    """What a job keeps while another job has the turn."""

    rng: dict[str, Any] | None = None
    grads: dict[Any, Any] = field(default_factory=dict)  # parameter -> its accumulated gradient
    gradient_state: dict[str, Any] | None = None  # accelerate's (see capture_gradient_state)


@dataclass
class GroupModel:
    model: Any  # a PeftModel holding every job's adapter
    tokenizer: Any
    source: Any
    names: list[str]
    built: list[BuiltModel]  # per job: the shared model, with the job's own parameter counts and notes
    params: dict[str, list[Any]]  # adapter name -> its parameters

    def activate(self, name: str) -> None:
        """Make `name` the active adapter: the only one that requires grad (and that peft's forward uses)."""
        self.model.set_adapter(name)

    def train_all(self, names: list[str]) -> None:
        """Every adapter in `names` requires grad (a fused step trains them at once)."""
        for name in names:
            for p in self.params[name]:
                p.requires_grad_(True)


def build_group(recipes: list[Recipe], device: str, device_map: Any = None) -> GroupModel:
    """Load the base of `recipes[0]` once and add one adapter per recipe, each initialised from its
    own seed exactly as `build_model` initialises it alone."""
    import peft
    from transformers import set_seed

    first = recipes[0]
    model, tokenizer, source = load_base_model(first, device=device, device_map=device_map)
    model.config.use_cache = False
    if first.method.type == "qlora":
        head_dtype = weight_dtype(first, device) if mixed_precision(first, device) != "no" else None
        model = prepare_quantized_base(model, first.train.gradient_checkpointing, head_dtype)
    names = [adapter_name(i) for i in range(len(recipes))]
    notes: list[list[str]] = []
    for i, (recipe, name) in enumerate(zip(recipes, names, strict=True)):
        job_notes: list[str] = []
        set_seed(recipe.train.seed)  # as build_model: the adapter's initialisation follows the seed
        if recipe.model.adapter:
            model = continue_adapter(recipe, model, name)
        elif i == 0:
            model = peft.get_peft_model(model, peft_config(recipe, model, source.path, job_notes), adapter_name=name)
        else:
            model.add_adapter(name, peft_config(recipe, model, source.path, job_notes))
        if recipe.data.packing and not uses_packing(recipe):
            job_notes.append(f"data.packing is off for {recipe.method.type}")
        notes.append(job_notes)
    params = {name: [p for n, p in model.named_parameters() if f".{name}." in n] for name in names}
    _, all_params = count_parameters(model)
    adapters_total = sum(p.numel() for ps in params.values() for p in ps)
    built = []
    for name, job_notes in zip(names, notes, strict=True):
        trainable = sum(p.numel() for p in params[name])
        built.append(BuiltModel(model, tokenizer, source, trainable, all_params - adapters_total + trainable, job_notes))
    group = GroupModel(model, tokenizer, source, names, built, params)
    group.activate(names[0])
    return group


# ---- a job's own state between its turns


def capture_rng() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def capture_gradient_state() -> dict[str, Any]:
    """accelerate's GradientState, a process-wide singleton: the Trainer sets its `sync_gradients` before
    each micro-batch and the optimizer only steps when it is set, so each job needs its own copy
    (without it, a job on its last micro-batch would find the flag of another job's first)."""
    from accelerate.state import GradientState

    return {k: list(v) if isinstance(v, list) else v for k, v in GradientState._shared_state.items()}


def restore_gradient_state(state: dict[str, Any]) -> None:
    from accelerate.state import GradientState

    GradientState._shared_state.clear()
    GradientState._shared_state.update(state)


def put_aside(params: list[Any], state: JobState) -> None:
    """Move the parameters' gradients into `state` (another job's optimizer step must not see them)."""
    for p in params:
        if p.grad is not None:
            state.grads[p] = p.grad
            p.grad = None


def put_back(params: list[Any], state: JobState) -> None:
    for p in params:
        grad = state.grads.pop(p, None)
        if grad is not None:
            p.grad = grad if p.grad is None else p.grad + grad
