"""Start a trainer process for a run: detached (survives the terminal) or followed from here.

The trainer always runs as its own process in its own session, with stdin from /dev/null and
stdout/stderr appended to train.log; closing the terminal or the TUI never stops it. The lock is
taken here first and handed to the child through an inherited file descriptor (flock locks belong
to the open file, not the process), so no second trainer can slip in while the child starts.

Several processes (`nproc > 1`) go through accelerate's launcher (torchrun underneath), which
starts one worker per GPU; distributed.strategy = "fsdp" shards the model (see arguments.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tuitune.core.engine.prepare import check_resumable, prepare_run, run_state
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.core.runs import RunDirectory, RunLock

WORKER = "tuitune.core.engine.worker"


@dataclass
class Started:
    run: RunDirectory
    process: subprocess.Popen
    events_offset: int = 0  # where this trainer's events begin (a resumed run keeps its history)

    @property
    def pid(self) -> int:
        return self.process.pid


def trainer_command(run: RunDirectory, *, resume: bool, nproc: int, use_cpu: bool | None = None) -> list[str]:
    """The command that trains `run`: the worker module, under accelerate's launcher for nproc > 1."""
    worker_args = [str(run.path)] + (["--resume"] if resume else [])
    if nproc <= 1:
        return [sys.executable, "-m", WORKER, *worker_args]
    # --multi_gpu makes accelerate start torchrun with nproc workers; without CUDA the workers use
    # the gloo backend on CPU (which is how the tests run it).
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", str(nproc), "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        "-m", WORKER, *worker_args,
    ]  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_training(
    recipe: Recipe | None = None,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    nproc: int = 1,
    env: dict[str, str] | None = None,
) -> Started:
    """Prepare (or reopen, with resume) the run folder and start its trainer in a new session.

    - recipe given: a new run in run_dir (default runs_dir/NAME); refuses a folder that holds a run.
    - recipe None: run_dir must hold a recipe.toml (written by the TUI, or the run to resume).
    Returns at once; follow the run with RunDirectory.follow() or `tuitune runs watch`.
    """
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: must be at least 1")
    if recipe is not None and not resume:
        run = prepare_run(recipe, run_dir)
    else:
        if run_dir is None:
            raise UserError("no recipe and no run folder given", "tuitune train RECIPE, or --resume NAME")
        run = RunDirectory(run_dir)
        run.load_recipe()  # fails early, with the file name, if the folder is not a run
        if resume:
            check_resumable(run)
        elif run_state(run) not in ("fresh", "prepared"):
            raise UserError(
                f"run {run.path} already exists ({run.summary().status})",
                f"continue it with `tuitune train --resume {run.name}`, or start a new run with --set name=NEW_NAME",
            )
    lock = run.acquire_lock()
    offset = run.events_path.stat().st_size if run.events_path.exists() else 0
    process = spawn_trainer(
        trainer_command(run, resume=resume, nproc=nproc),
        [lock],
        run.log_path,
        f"tuitune train {'--resume ' if resume else ''}{run.path} (nproc {nproc})",
        {"TUITUNE_LOCK_FD": str(lock.fd)},
        env,
    )
    return Started(run, process, offset)


def spawn_trainer(
    command: list[str],
    locks: list[RunLock],
    log_path: Path,
    header: str,
    env_extra: dict[str, str],
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start a trainer in its own session (output appended to log_path) and hand it the runs' locks."""
    try:
        child_env = dict(os.environ if env is None else env)
        child_env.update(env_extra)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
            log.write(f"\n==== {header}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=devnull,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: no SIGHUP when the terminal closes
                pass_fds=tuple(lock.fd for lock in locks),
                env=child_env,
                cwd=os.getcwd(),
            )
        for lock in locks:
            lock.set_holder(process.pid)
            lock.run.update_status(pid=process.pid)
    finally:
        # Our copies of the descriptors close; the locks live on in the child's copies.
        for lock in locks:
            os.close(lock.fd)
            lock.fd = -1
    return process
