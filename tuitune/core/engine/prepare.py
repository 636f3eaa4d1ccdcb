"""Before a trainer starts: freeze the recipe into the run folder and check the folder is free.

Standard library only (the TUI calls this on the event loop's side of a worker).
"""

from __future__ import annotations

from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe, save_recipe
from tuitune.core.runs import ACTIVE_STATUSES, RunDirectory


def freeze_recipe(recipe: Recipe) -> Recipe:
    """A copy whose relative paths are absolute, so the run no longer depends on the current folder."""
    frozen = recipe.copy()
    frozen.source = None
    frozen.data.path = _absolute(recipe, recipe.data.path)
    frozen.model.name_or_path = _absolute(recipe, recipe.model.name_or_path)
    if recipe.model.adapter:
        adapter = recipe.resolve_path(recipe.model.adapter)
        if not Path(adapter).is_absolute():
            by_name = Path(recipe.output.runs_dir) / recipe.model.adapter
            if by_name.is_dir():  # a run name, e.g. model.adapter = "quickstart"
                adapter = str(by_name.resolve())
        frozen.model.adapter = adapter
    frozen.output.runs_dir = str(Path(recipe.output.runs_dir).expanduser().resolve())
    return frozen


def _absolute(recipe: Recipe, value: str) -> str:
    """A path that exists (next to the recipe or here) becomes absolute; hub names stay as they are."""
    return recipe.resolve_path(value)


def run_state(run: RunDirectory) -> str:
    """fresh (nothing there yet), prepared (recipe only), live, or the status a past trainer left."""
    if run.is_locked():
        return "live"
    if not run.path.exists() or not any(run.path.iterdir()):
        return "fresh"
    if not run.has_history() and not run.checkpoints():
        return "prepared"
    return run.summary().status


def prepare_run(recipe: Recipe, run_dir: str | Path | None = None) -> RunDirectory:
    """Create runs/NAME with the frozen recipe. Refuses a folder that already holds a run."""
    run = RunDirectory(run_dir if run_dir is not None else Path(recipe.output.runs_dir) / recipe.name)
    state = run_state(run)
    if state == "live":
        holder = run.holder_pid()
        raise UserError(
            f"run {run.path} is in use by a trainer (pid {holder})" if holder else f"run {run.path} is in use",
            f"watch it with `tuitune runs watch {run.name}` or stop it with `tuitune stop {run.name}`",
        )
    if state == "failed" and _nothing_trained(run):
        # It failed before training anything (wrong model name, bad data): the corrected recipe
        # starts over under the same name instead of asking for a new one.
        for path in (run.events_path, run.status_path, run.log_path, run.recipe_path):
            path.unlink(missing_ok=True)
        state = "fresh"
    if state not in ("fresh", "prepared"):
        raise UserError(
            f"run {run.path} already exists ({state})",
            f"continue it with `tuitune train --resume {run.name}`, or start a new run with --set name=NEW_NAME",
        )
    run.create()
    save_recipe(freeze_recipe(recipe), run.recipe_path)
    run.update_status(status="starting", name=recipe.name, method=recipe.method.type,
                      model=recipe.model.name_or_path, step=0, pid=None)
    return run


def _nothing_trained(run: RunDirectory) -> bool:
    """No checkpoint, no result and no finished step: nothing worth keeping."""
    if run.checkpoints() or run.adapter_dir.exists() or run.model_dir.exists():
        return False
    return not run.read_status().get("step")


def check_resumable(run: RunDirectory) -> None:
    """A run can resume unless a trainer holds it or it already finished."""
    state = run_state(run)
    if state == "live":
        raise UserError(f"run {run.name} is still training", f"watch it with `tuitune runs watch {run.name}`")
    if state == "done":
        raise UserError(
            f"run {run.name} already finished",
            "train more with a new run that starts from it: --set name=NEW model.adapter=" + str(run.path),
        )
    if state in ACTIVE_STATUSES:  # cannot happen without the lock, kept for clarity
        raise UserError(f"run {run.name} is {state}")
