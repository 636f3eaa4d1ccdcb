"""Before a trainer starts: freeze the recipe into the run folder and check the folder is free.

The folder must be new, empty or one tuitune made (runs.ownership), and the run's lock is taken before
recipe.toml is written: of two `train` commands starting the same name at once, the one that writes
the recipe is the one that trains it; the other is told the run is in use.
Standard library only (the TUI calls this on the event loop's side of a worker).
"""

from __future__ import annotations

from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe, save_recipe
from tuitune.core.runs import ACTIVE_STATUSES, RunDirectory, RunLock, check_new_run_folder, mark_run_folder
from tuitune.core.runs.disk import writing
from tuitune.core.runs.ownership import is_owned_name

# Entries that do not make a folder hold a run: the marker, and the lock a starting trainer takes.
_BOOKKEEPING = (".tuitune-run", "lock", "stop")


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


def run_state(run: RunDirectory, held: bool = False) -> str:
    """fresh (nothing there yet), prepared (recipe only), live, or the status a past trainer left.

    held: this process holds the run's lock (so "live" means someone else, and cannot be the answer).
    """
    if not held and run.is_locked():
        return "live"
    if not run.path.is_dir() or all(p.name in _BOOKKEEPING for p in run.path.iterdir()):
        return "fresh"
    if not run.has_history() and not run.checkpoints():
        return "prepared"
    state = run.summary().status
    if held and state in ACTIVE_STATUSES:  # we hold the lock: the trainer that wrote this is gone
        return "interrupted" if state == "stopping" else "crashed"
    return state


def claim_new_run(run: RunDirectory) -> RunLock:
    """Make run.path a run folder of ours (refusing someone else's files) and take its lock."""
    check_new_run_folder(run)
    mark_run_folder(run)
    return run.acquire_lock()


def prepare_run(recipe: Recipe, run_dir: str | Path | None = None, lock: RunLock | None = None) -> RunDirectory:
    """Create runs/NAME with the frozen recipe. Refuses a folder that already holds a run or files that
    are not tuitune's. `lock`: the caller already holds the run's lock (else it is taken meanwhile)."""
    run = RunDirectory(run_dir if run_dir is not None else Path(recipe.output.runs_dir) / recipe.name)
    held = lock if lock is not None else claim_new_run(run)
    try:
        _freeze_into(run, recipe)
    finally:
        if lock is None:
            held.release()
    return run


def _freeze_into(run: RunDirectory, recipe: Recipe) -> None:
    state = run_state(run, held=True)
    if state == "failed" and _nothing_trained(run):
        # It failed before training anything (wrong model name, bad data): the corrected recipe
        # starts over under the same name instead of asking for a new one.
        with writing(run.path, "clearing the failed start"):
            for path in (run.events_path, run.status_path, run.log_path, run.recipe_path):
                path.unlink(missing_ok=True)
        state = "fresh"
    check_unstarted(run, state)
    with writing(run.path, "writing the run's recipe"):
        save_recipe(freeze_recipe(recipe), run.recipe_path)
        run.update_status(status="starting", name=recipe.name, method=recipe.method.type,
                          model=recipe.model.name_or_path, step=0, pid=None)


def check_prepared(run: RunDirectory) -> None:
    """A folder handed to `tuitune train --run-dir DIR` (no recipe) must be one tuitune prepared.
    Checked before the lock is taken, so a refused folder gets nothing written into it."""
    foreign = [p.name for p in run.path.iterdir() if not is_owned_name(p.name)]
    if not run.is_marked() or foreign:
        also = f" (it also holds {', '.join(sorted(foreign)[:5])})" if foreign else " (no .tuitune-run marker)"
        raise UserError(
            f"{run.path} was not prepared by tuitune{also}",
            "train a recipe into a new run instead: tuitune train RECIPE [--run-dir NEW_FOLDER]",
        )


def check_unstarted(run: RunDirectory, state: str) -> None:
    """Refuse a run that already trained (`state` from run_state, under the lock)."""
    if state not in ("fresh", "prepared"):
        raise UserError(
            f"run {run.path} already exists ({state})",
            f"continue it with `tuitune train --resume {run.reference()}`, or start a new run with --set name=NEW_NAME",
        )


def _nothing_trained(run: RunDirectory) -> bool:
    """No checkpoint, no result and no finished step: nothing worth keeping."""
    if run.checkpoints() or run.adapter_dir.exists() or run.model_dir.exists():
        return False
    return not run.read_status().get("step")


def check_resumable(run: RunDirectory, state: str | None = None) -> None:
    """A run can resume unless a trainer holds it or it already finished (`state`: run_state, if known)."""
    state = state or run_state(run)
    if state == "live":
        raise UserError(f"run {run.name} is still training", f"watch it with `tuitune runs watch {run.reference()}`")
    if state == "done":
        raise UserError(
            f"run {run.name} already finished",
            "train more with a new run that starts from it: --set name=NEW model.adapter=" + str(run.path),
        )
    if state in ACTIVE_STATUSES:  # cannot happen without the lock, kept for clarity
        raise UserError(f"run {run.name} is {state}")
