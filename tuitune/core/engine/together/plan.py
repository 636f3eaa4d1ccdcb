"""What may train together, how, and the group's run folders. Standard library only.

Recipes share one loaded base and one forward pass, so everything that decides how the base is
loaded and run must agree (SHARED_KEYS); what each adapter learns and how it is optimized may
differ: data, LoRA rank/alpha/dropout/targets/DoRA/rsLoRA, learning rate, scheduler, epochs,
batch size, gradient accumulation, seed, logging/saving/eval steps.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError
from tuitune.core.recipe.methods import LORA_METHODS

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe
    from tuitune.core.runs import RunDirectory

# Keys every recipe of a group must agree on, and why.
SHARED_KEYS = {
    "model.name_or_path": "the base model is loaded once",
    "model.dtype": "the base model is loaded once",
    "model.trust_remote_code": "the base model is loaded once",
    "model.attn_implementation": "every job runs through the same attention",
    "method.type": "lora and qlora load the base differently",
    "train.mixed_precision": "the fused forward runs under one precision",
    "train.gradient_checkpointing": "the base model's layers are checkpointed for every job or none",
}
QUANTIZATION_KEYS = ("quantization.bits", "quantization.quant_type", "quantization.double_quant",
                     "quantization.compute_dtype")
SCHEDULES = ("fused", "round-robin")
MAX_JOBS = 32


@dataclass
class GroupPlan:
    """The recipes of a group, checked, and how they will be scheduled."""

    recipes: list[Recipe]
    schedule: str  # fused | round-robin
    name: str
    notes: list[str] = field(default_factory=list)

    def to_status(self, runs: list[RunDirectory]) -> dict[str, Any]:
        """The `group` entry of every member's status.json."""
        return {"name": self.name, "runs": [str(r.path.resolve()) for r in runs], "schedule": self.schedule}


def recipe_label(recipe: Recipe) -> str:
    """How messages name a recipe: its file, else its run name."""
    return str(recipe.source.name) if recipe.source is not None else f"recipe '{recipe.name}'"


def _value(recipe: Recipe, key: str) -> Any:
    section, name = key.split(".")
    value = getattr(getattr(recipe, section), name)
    if key == "model.name_or_path":
        return recipe.model_path  # relative paths resolved next to each recipe
    return value


def check_together(
    recipes: list[Recipe], schedule: str = "fused", name: str | None = None, *, distinct_runs: bool = True
) -> GroupPlan:
    """The group plan, or a UserError naming the recipe and the key that cannot train together.
    distinct_runs=False lets a recipe repeat (a memory estimate writes no run folders)."""
    if len(recipes) < 2:
        raise UserError("--together needs at least two recipes", "tuitune train a.toml b.toml --together")
    if len(recipes) > MAX_JOBS:
        raise UserError(f"{len(recipes)} recipes: at most {MAX_JOBS} train together", "split them into groups")
    if schedule not in SCHEDULES:
        raise UserError(f"schedule '{schedule}' is not known", "one of: " + ", ".join(SCHEDULES))
    for r in recipes:
        if r.method.type not in LORA_METHODS:
            raise UserError(
                f'{recipe_label(r)}: method.type = "{r.method.type}" cannot train together',
                "training together shares one base model between LoRA adapters: use method lora or qlora "
                "(DoRA and rsLoRA are lora options), or train this recipe alone",
            )
        if r.train.offload_activations:
            raise UserError(
                f"{recipe_label(r)}: train.offload_activations is not available for recipes trained together "
                "(the fused step runs its own forward)",
                "set train.offload_activations = false in it, or train it alone",
            )
    first = recipes[0]
    keys = list(SHARED_KEYS) + (list(QUANTIZATION_KEYS) if first.method.type == "qlora" else [])
    for r in recipes[1:]:
        for key in keys:
            a, b = _value(first, key), _value(r, key)
            if a != b:
                why = SHARED_KEYS.get(key, "the base model is quantized once")
                raise UserError(
                    f"{recipe_label(r)}: {key} = {b!r} but {recipe_label(first)} has {a!r}: recipes trained "
                    f"together must agree on it ({why})",
                    f"set {key} = {a!r} in {recipe_label(r)}, or train it alone",
                )
    folders: dict[Path, Recipe] = {}
    for r in recipes if distinct_runs else []:
        folder = (Path(r.output.runs_dir).expanduser() / r.name).resolve()
        if folder in folders:
            raise UserError(
                f"{recipe_label(r)} and {recipe_label(folders[folder])} would both write run {folder}",
                "give one of them another name (name = ... or --set name=...)",
            )
        folders[folder] = r
    return GroupPlan(list(recipes), schedule, name or default_group_name(recipes))


def default_group_name(recipes: list[Recipe]) -> str:
    """`a+b+c`, shortened to `a+N more` when long."""
    joined = "+".join(r.name for r in recipes)
    return joined if len(joined) <= 40 else f"{recipes[0].name}+{len(recipes) - 1} more"


def prepare_group(plan: GroupPlan) -> list[RunDirectory]:
    """Every member's run folder (the recipe frozen as for a run alone), each status naming the group.

    All or nothing: when one folder is refused (it holds a run), the folders prepared here are removed.
    """
    from tuitune.core.engine.prepare import prepare_run

    runs: list[RunDirectory] = []
    try:
        for recipe in plan.recipes:
            runs.append(prepare_run(recipe))
    except BaseException:
        for run in runs:
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    group = plan.to_status(runs)
    for run in runs:
        run.update_status(group=group)
    return runs


def group_of(run: RunDirectory) -> dict[str, Any] | None:
    """The `group` entry of a run's status.json, or None for a run trained alone."""
    group = run.read_status().get("group")
    return group if isinstance(group, dict) and isinstance(group.get("runs"), list) else None


def group_members(run: RunDirectory) -> list[RunDirectory]:
    """The runs of `run`'s group in their order (just `run` when it trained alone)."""
    from tuitune.core.runs import RunDirectory

    group = group_of(run)
    if group is None:
        return [run]
    return [RunDirectory(p) for p in group["runs"]]
