"""Start (or resume) a trainer from the app the way the CLI does: `tuitune train --run-dir DIR --detach`.

The app prepares the run folder itself (core's `prepare_run`: the recipe on screen, unsaved edits
included, frozen once into DIR/recipe.toml), then the CLI takes the lock and starts the trainer in a
new session; the app waits for it to answer. Run from a thread worker: the CLI takes a second or
two to start. Its own session (start_new_session) keeps the trainer, and the CLI
that launches it, out of the terminal's process group, so quitting the app or losing the SSH link
does not signal them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tuitune.core.engine.prepare import prepare_run, run_state
from tuitune.core.errors import UserError
from tuitune.core.recipe import FIELDS, Recipe, validate
from tuitune.core.runs import RunDirectory
from tuitune.tui.child_process import child_env
from tuitune.tui.remote_code import remote_code_args

DEFAULT_RUNS_DIR = FIELDS["output.runs_dir"].default


def free_run_dir(runs_dir: Path, name: str, taken: set[Path] | None = None) -> Path:
    """runs_dir/NAME, or NAME-2, NAME-3... when a run by that name exists (a new run never reuses one)
    or is `taken` (by another run of a group being started)."""
    candidate, n = runs_dir / name, 1
    while (candidate.exists() and any(candidate.iterdir())) or candidate in (taken or set()):
        n += 1
        candidate = runs_dir / f"{name}-{n}"
    return candidate


def run_for(recipe: Recipe, app_runs_dir: Path, taken: set[Path] | None = None) -> tuple[Recipe, Path]:
    """The recipe to train (a copy named after its run folder) and that folder.

    A recipe that keeps the default runs folder trains into the app's (`--runs-dir`), so the app finds
    it again; a recipe naming its own folder keeps it.
    """
    default = recipe.output.runs_dir == DEFAULT_RUNS_DIR
    runs_dir = (Path(app_runs_dir) if default else Path(recipe.output.runs_dir).expanduser()).resolve()
    run_dir = free_run_dir(runs_dir, recipe.name, taken)
    chosen = recipe.copy()
    chosen.name = run_dir.name
    chosen.output.runs_dir = str(runs_dir)
    return chosen, run_dir


def _spawn(args: list[str]) -> str:
    """Run `tuitune ARGS` in a new session and wait for it (the trainer it starts stays behind)."""
    result = subprocess.run(
        [sys.executable, "-m", "tuitune", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        env=child_env(),
        timeout=300,
    )
    if result.returncode != 0:
        raw = [ln.strip() for ln in result.stderr.strip().splitlines() if ln.strip()]
        # The CLI may say where it trains before it fails: the message is its "error:" line.
        first = next((i for i, ln in enumerate(raw) if ln.startswith("error:")), 0)
        lines = [ln.removeprefix("error: ").removeprefix("hint: ") for ln in raw[first:]]
        raise UserError(lines[0] if lines else f"tuitune {args[0]} exited with {result.returncode}",
                        "; ".join(lines[1:3]))
    return result.stdout


def check_recipe(recipe: Recipe) -> UserError | None:
    """The recipe's problems as one UserError (None when it validates)."""
    problems = validate(recipe)
    if not problems:
        return None
    return UserError("the recipe has problems: " + "; ".join(p.format() for p in problems[:3]),
                     "fix them on the Recipe screen (F3)")


def start_run(recipe: Recipe, app_runs_dir: Path) -> RunDirectory:
    """Train `recipe` (the app's current one, saved or not) in a new run; returns its folder."""
    problem = check_recipe(recipe)
    if problem is not None:
        raise problem
    chosen, run_dir = run_for(recipe, app_runs_dir)
    run = prepare_run(chosen, run_dir)
    # trust_remote_code on screen is the user's own setting: the prepared folder may use it.
    trust = ["--trust-remote-code"] if chosen.model.trust_remote_code else []
    try:
        _spawn(["train", "--run-dir", str(run.path), "--detach", *trust])
    except UserError:
        if run_state(run) == "prepared":  # nothing started: leave no half-made run behind
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    return run


def resume_run(run: RunDirectory) -> RunDirectory:
    """Continue a stopped or crashed run from its last checkpoint (`tuitune train --resume`).
    A recipe with trust_remote_code resumes only once the user allowed it (tui.remote_code)."""
    _spawn(["train", "--resume", str(run.path), "--detach", *remote_code_args(run.path)])
    return run


def start_group_run(paths: list[Path], app_runs_dir: Path) -> list[RunDirectory]:
    """Train the recipes at `paths` together (core's start_group, as `tuitune train A B --together`
    does; it starts the trainer in a new session). Each keeps its runs folder or takes the app's, and a
    run name already used becomes NAME-2. Returns the group's runs, in order."""
    from tuitune.core.engine.together.launch import start_group
    from tuitune.core.engine.together.plan import check_together
    from tuitune.core.recipe import load_recipe

    chosen, taken = [], set()
    for path in paths:
        recipe, problems = load_recipe(path)
        if problems:
            raise UserError(f"{path}: " + "; ".join(p.format() for p in problems[:3]), "fix it on the Recipe screen (F3)")
        named, run_dir = run_for(recipe, app_runs_dir, taken)
        named.source = recipe.source
        taken.add(run_dir)
        chosen.append(named)
    return start_group(check_together(chosen), env=child_env()).runs
