"""The runs folder: every run in it, and the one lookup of a run by name or path."""

from __future__ import annotations

from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.runs.directory import RunDirectory
from tuitune.core.runs.summary import RunSummary, unreadable


def list_runs(runs_dir: str | Path = "runs") -> list[RunSummary]:
    """Every run under runs_dir, newest first. A run whose files cannot be read is listed as
    `unreadable` (the reason in `error`) rather than hiding the others."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    out = []
    for run in map(RunDirectory, sorted(root.iterdir())):
        try:
            if run.is_run():
                out.append(run.summary())
        except OSError as e:  # a folder we may not even look into
            if run.path.is_dir():
                out.append(unreadable(run, e))
    out.sort(key=lambda s: (s.started or 0.0, s.name), reverse=True)
    return out


def run_choices(runs_dir: str | Path = "runs", preferred: str | None = None) -> tuple[list[str], str | None]:
    """Every run's name, newest first, and the one to offer first: `preferred`, else the newest done."""
    runs = list_runs(runs_dir)
    finished = [r.name for r in runs if r.status == "done"]
    return [r.name for r in runs], preferred or (finished[0] if finished else None)


def locate_run(target: str, runs_dir: str | Path = "runs") -> RunDirectory | None:
    """The run `target` names: a run folder's path, or a run name inside runs_dir; None when neither."""
    if not target:
        return None
    run = RunDirectory(Path(target).expanduser())
    if run.is_run():
        return run
    if "/" not in target and "\\" not in target:  # a bare name: look in the runs folder
        run = RunDirectory(Path(runs_dir) / target)
        if run.is_run():
            return run
    return None


def find_run(target: str, runs_dir: str | Path = "runs") -> RunDirectory:
    """locate_run, or a UserError naming the runs there are."""
    run = locate_run(target, runs_dir)
    if run is None:
        raise UserError(f"'{target}' is not a run", f"{known_runs(runs_dir)}; give a run name or a run folder")
    return run


def known_runs(runs_dir: str | Path) -> str:
    """'runs in DIR/: a, b' (the first ten by name), or 'no runs in DIR/'."""
    root = Path(runs_dir)
    names = sorted(p.name for p in root.iterdir() if RunDirectory(p).is_run()) if root.is_dir() else []
    if not names:
        return f"no runs in {runs_dir}/"
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"runs in {runs_dir}/: " + ", ".join(names[:10]) + more
