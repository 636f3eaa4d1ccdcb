"""`tuitune stop NAME`: ask a run's trainer to finish its step, save a checkpoint and stop."""

from __future__ import annotations

import argparse
import time

HELP = "stop a training run after its current step (it saves a checkpoint; resume later)"


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir

    parser.add_argument("name", metavar="NAME")
    add_runs_dir(parser)
    parser.add_argument("--wait", action="store_true", help="wait until the trainer has stopped")


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import runs_dir
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run

    run_ = find_run(args.name, runs_dir(args))
    if not run_.request_stop():
        raise UserError(f"run {run_.name} is not training (status: {run_.summary().status})")
    print(f"asked run {run_.name} to stop after its current step; it saves a checkpoint first")
    if args.wait:
        while run_.is_locked():
            time.sleep(0.3)
        print(f"run {run_.name}: {run_.summary().status}")
    return 0
