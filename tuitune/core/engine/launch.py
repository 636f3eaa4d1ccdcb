"""Start a trainer process for a run: detached (survives the terminal) or followed from here.

The trainer always runs as its own process in its own session, with stdin from /dev/null and
stdout/stderr appended to train.log; closing the terminal or the TUI never stops it. The lock is
taken here first and handed to the child through an inherited file descriptor (flock locks belong
to the open file, not the process), so no second trainer can slip in while the child starts.

Several processes (`nproc > 1`) go through accelerate's launcher (torchrun underneath), which
starts one worker per GPU; distributed.strategy = "fsdp" shards the model (see arguments.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tuitune.core.engine.prepare import (
    check_prepared,
    check_resumable,
    check_unstarted,
    claim_new_run,
    prepare_run,
    run_state,
)
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.core.runs import RunDirectory, check_remote_code
from tuitune.core.runs.disk import writing

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

    - recipe given: a new run in run_dir (default runs_dir/NAME); refuses a folder that holds a run,
      or files tuitune did not write. The lock is taken before the recipe is written.
    - recipe None: run_dir must hold a recipe.toml (a folder the TUI prepared, or the run to resume);
      a recipe there with trust_remote_code needs runs.allow_remote_code first.
    Returns at once; follow the run with RunDirectory.follow() or `tuitune runs watch`.
    """
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: must be at least 1")
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
    try:
        child_env = dict(os.environ if env is None else env)
        child_env["TUITUNE_LOCK_FD"] = str(lock.fd)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        with writing(run.log_path, "the trainer's log"):
            log = open(run.log_path, "ab")  # noqa: SIM115 - closed below, once the child has its copy
            log.write(f"\n==== tuitune train {'--resume ' if resume else ''}{run.path} (nproc {nproc})\n".encode())
            log.flush()
        with log, open(os.devnull, "rb") as devnull:
            process = subprocess.Popen(
                trainer_command(run, resume=resume, nproc=nproc),
                stdin=devnull,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: no SIGHUP when the terminal closes
                pass_fds=(lock.fd,),
                env=child_env,
                cwd=os.getcwd(),
            )
        lock.set_holder(process.pid)
        with contextlib.suppress(OSError):  # the trainer records its pid itself (and retries)
            run.update_status(pid=process.pid)
    finally:
        # Our copy of the descriptor closes; the lock lives on in the child's copy.
        os.close(lock.fd)
        lock.fd = -1
    return Started(run, process, offset)
