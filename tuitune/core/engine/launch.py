"""Start a trainer process for a run: detached (survives the terminal) or followed from here.

The trainer always runs as its own process in its own session, with stdin from /dev/null and
stdout/stderr appended to train.log; closing the terminal or the TUI never stops it. The lock is
taken here first and handed to the child through an inherited file descriptor (flock locks belong
to the open file, not the process), so no second trainer can slip in while the child starts.

What runs and with which GPUs is a `LaunchPlan` (launch_plan.py): several processes go through
accelerate's launcher (torchrun underneath), one worker per GPU; distributed.strategy = "fsdp"
shards the model (see arguments.py). In a job over several machines only the machine of node rank
0 prepares the run folder and holds its lock; the others (on a filesystem they share) wait for its
frozen recipe and write only their own log, train.node-R.log.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tuitune.core.engine.launch_plan import LaunchPlan, trainer_command
from tuitune.core.engine.prepare import (
    check_prepared,
    check_resumable,
    check_unstarted,
    claim_new_run,
    freeze_recipe,
    prepare_run,
    run_state,
)
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.core.runs import RunDirectory, RunLock, check_remote_code
from tuitune.core.runs.disk import writing


@dataclass
class Started:
    run: RunDirectory
    process: subprocess.Popen
    events_offset: int = 0  # where this trainer's events begin (a resumed run keeps its history)
    plan: LaunchPlan | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


def start_training(
    recipe: Recipe | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    nproc: int = 1,
    env: dict[str, str] | None = None,
    plan: LaunchPlan | None = None,
) -> Started:
    """Prepare (or reopen, with resume) the run folder and start its trainer in a new session.

    - recipe given: a new run in run_dir (default runs_dir/NAME); refuses a folder that holds a run,
      or files tuitune did not write. The lock is taken before the recipe is written.
    - recipe None: run_dir must hold a recipe.toml (a folder the TUI prepared, or the run to resume);
      a recipe there with trust_remote_code needs runs.allow_remote_code first.
    - plan: the launch decided by `launch_plan.plan_launch` (GPUs, processes, environment, command);
      without one, `nproc` processes with this environment as it is.
    Returns at once; follow the run with RunDirectory.follow() or `tuitune runs watch`.
    """
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: must be at least 1")
    if plan is not None and plan.nodes.node_rank > 0:
        return _join_as_node(recipe, run_dir, plan, env)
    if recipe is not None and not resume:
        run = RunDirectory(run_dir if run_dir is not None else Path(recipe.output.runs_dir) / recipe.name)
        lock = claim_new_run(run)
        try:
            prepare_run(recipe, run.path, lock=lock)
        except BaseException:
            lock.release()
            raise
    else:
        if run_dir is None:
            raise UserError("no recipe and no run folder given", "tuitune train RECIPE, or --resume NAME")
        run = RunDirectory(run_dir)
        run.load_recipe()  # fails early, with the file name, if the folder is not a run
        check_remote_code(run)
        if not resume:
            check_prepared(run)
        lock = run.acquire_lock()
        try:
            state = run_state(run, held=True)
            if resume:
                check_resumable(run, state)
            else:
                check_unstarted(run, state)
        except BaseException:
            lock.release()
            raise
    offset = run.events_path.stat().st_size if run.events_path.exists() else 0
    if plan is not None and plan.warnings:
        _note_warnings(run, plan.warnings)
    try:
        child_env = dict(os.environ if env is None else env)
        child_env["TUITUNE_LOCK_FD"] = str(lock.fd)
        process = _spawn(run, plan, resume, nproc, child_env, pass_fds=(lock.fd,))
        lock.set_holder(process.pid)
        with contextlib.suppress(OSError):  # the trainer records its pid itself (and retries)
            run.update_status(pid=process.pid)
    finally:
        # Our copy of the descriptor closes; the lock lives on in the child's copy.
        os.close(lock.fd)
        lock.fd = -1
    return Started(run, process, offset, plan)


def _note_warnings(run: RunDirectory, warnings: list[str]) -> None:
    """The launch's warnings (a busy GPU, a forced start) as the run's first events, so every view of
    the run (the Train screen, `runs watch`) shows them, not only this terminal."""
    from tuitune.core.events import WarningEvent

    with run.event_writer() as writer:
        for message in warnings:
            writer.emit(WarningEvent(message=message))


def _spawn(run: RunDirectory, plan: LaunchPlan | None, resume: bool, nproc: int, child_env: dict[str, str],
           pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """The trainer in its own session (no SIGHUP when the terminal closes), output to its log."""
    if plan is not None:
        command, log_path, nproc = plan.command, plan.log_path, plan.nproc
        child_env.update(plan.env)  # CUDA_VISIBLE_DEVICES & co. before anything in the child touches CUDA
    else:
        command, log_path = trainer_command(run.path, resume=resume, nproc=nproc), run.log_path
    gpus = f", GPUs {','.join(map(str, plan.gpus))}" if plan is not None and plan.gpus else ""
    header = f"tuitune train {'--resume ' if resume else ''}{run.path} (nproc {nproc}{gpus})"
    return _popen(command, log_path, header, child_env, pass_fds)


def _popen(command: list[str], log_path: Path, header: str, child_env: dict[str, str],
           pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """`command` in its own session (no SIGHUP when the terminal closes), output appended to log_path."""
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with writing(log_path, "the trainer's log"):
        log = open(log_path, "ab")  # noqa: SIM115 - closed below, once the child has its copy
        log.write(f"\n==== {header}\n".encode())
        log.flush()
    with log, open(os.devnull, "rb") as devnull:
        return subprocess.Popen(
            command,
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=pass_fds,
            env=child_env,
            cwd=os.getcwd(),
        )


def spawn_trainer(
    command: list[str],
    locks: list[RunLock],
    log_path: Path,
    header: str,
    env_extra: dict[str, str],
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start a trainer that holds several runs (a group's: engine.together.launch) and hand it their locks."""
    try:
        child_env = dict(os.environ if env is None else env)
        child_env.update(env_extra)
        process = _popen(command, log_path, header, child_env, tuple(lock.fd for lock in locks))
        for lock in locks:
            lock.set_holder(process.pid)
            with contextlib.suppress(OSError):  # the trainer records its pid itself (and retries)
                lock.run.update_status(pid=process.pid)
    finally:
        # Our copies of the descriptors close; the locks live on in the child's copies.
        for lock in locks:
            os.close(lock.fd)
            lock.fd = -1
    return process


NODE_WAIT_S = 600.0  # how long another machine waits for node 0 to write the run's recipe


def _join_as_node(recipe: Recipe | None, run_dir: str | Path | None, plan: LaunchPlan,
                  env: dict[str, str] | None) -> Started:
    """Node rank > 0 of a job over several machines: no folder of its own, no lock, its own log.

    The run folder is node 0's, on a filesystem both see. This machine waits for the frozen
    recipe to appear there, checks it is this job's, and starts its share of the processes.
    """
    run = RunDirectory(run_dir if run_dir is not None else plan.run_path)
    deadline = time.monotonic() + float(os.environ.get("TUITUNE_NODE_WAIT_S", NODE_WAIT_S))
    while not run.recipe_path.is_file():
        if time.monotonic() > deadline:
            raise UserError(
                f"{run.recipe_path} did not appear: node 0 writes it when it starts",
                "start node 0 too, and put the runs folder on a filesystem every machine shares",
            )
        time.sleep(0.5)
    if recipe is not None:
        from tuitune.core.recipe import diff

        changed = [key for key, _, _ in diff(run.load_recipe(), freeze_recipe(recipe))]
        if changed:
            raise UserError(
                f"run {run.path} holds another recipe ({', '.join(changed[:3])} differ): not this job's",
                "give every machine the same recipe, or start a new run with --set name=NEW_NAME",
            )
    plan.run_path.mkdir(parents=True, exist_ok=True)
    offset = run.events_path.stat().st_size if run.events_path.exists() else 0
    process = _spawn(run, plan, False, plan.nproc, dict(os.environ if env is None else env))
    return Started(run, process, offset, plan)
