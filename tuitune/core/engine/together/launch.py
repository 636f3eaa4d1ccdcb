"""Start a group's trainer process, or resume a group, the way engine.launch starts a run alone.

The locks of every run are taken here and handed to the trainer (flock follows the descriptor), so
no other trainer can slip into one of the runs while the group starts. The trainer's output goes to
the first run's train.log; the other runs' logs say where it is. Standard library only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuitune.core.engine.launch import spawn_trainer
from tuitune.core.engine.prepare import run_state
from tuitune.core.engine.together.plan import GroupPlan, group_members, group_of, prepare_group
from tuitune.core.engine.together.session import LOCK_FDS_ENV
from tuitune.core.errors import UserError
from tuitune.core.runs import RunDirectory, RunLock, check_remote_code

if TYPE_CHECKING:
    import subprocess

WORKER = "tuitune.core.engine.together.worker"


@dataclass
class GroupStarted:
    runs: list[RunDirectory]
    process: subprocess.Popen
    events_offsets: list[int] = field(default_factory=list)  # where this trainer's events begin, per run

    @property
    def pid(self) -> int:
        return self.process.pid


def start_group(plan: GroupPlan, env: dict[str, str] | None = None) -> GroupStarted:
    """Prepare every run's folder (all or none) and start the group's trainer in a new session."""
    return _spawn(prepare_group(plan), resume=False, env=env)


def resume_group(run: RunDirectory, env: dict[str, str] | None = None) -> GroupStarted:
    """Continue every unfinished run of `run`'s group together, each from its last checkpoint."""
    group = group_of(run)
    if group is None:
        raise UserError(f"run {run.name} was not trained in a group", f"tuitune train --resume {run.name}")
    members = group_members(run)
    live = [m.name for m in members if run_state(m) == "live"]
    if live:
        raise UserError(f"group {group['name']} is still training ({', '.join(live)})",
                        f"watch it with `tuitune runs watch {live[0]}`")
    todo = [m for m in members if m.path.is_dir() and run_state(m) != "done"]
    if not todo:
        raise UserError(
            f"every run of group {group['name']} already finished",
            "train more with new runs that start from them: --set name=NEW model.adapter=RUN_FOLDER",
        )
    for m in todo:
        m.load_recipe()  # fails early, naming the file, if a folder is not a run
        check_remote_code(m)  # as a run alone: trust_remote_code needs runs.allow_remote_code first
    return _spawn(todo, resume=True, env=env)


def _spawn(runs: list[RunDirectory], *, resume: bool, env: dict[str, str] | None) -> GroupStarted:
    locks: list[RunLock] = []
    try:
        for run in runs:
            locks.append(run.acquire_lock())
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    offsets = [r.events_path.stat().st_size if r.events_path.exists() else 0 for r in runs]
    log = runs[0].log_path
    for run in runs[1:]:
        with open(run.log_path, "a", encoding="utf-8") as f:
            f.write(f"\n==== trained together with {runs[0].name}: the trainer's output is in {log}\n")
    command = [sys.executable, "-m", WORKER, *(["--resume"] if resume else []), *(str(r.path) for r in runs)]
    header = f"tuitune train --together {'--resume ' if resume else ''}" + " ".join(str(r.path) for r in runs)
    fds = ",".join(str(lock.fd) for lock in locks)
    process = spawn_trainer(command, locks, log, header, {LOCK_FDS_ENV: fds}, env)
    return GroupStarted(runs, process, offsets)
