"""`tuitune stop NAME`: ask a run's trainer to finish its step, save a checkpoint and stop."""

from __future__ import annotations

import argparse
import time

HELP = "stop a training run after its current step (it saves a checkpoint; resume later)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--runs-dir", dest="dir", default=None, metavar="RUNS_DIR", help="runs folder (default ./runs)")
    parser.add_argument("--wait", action="store_true", help="wait until the trainer has stopped")


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run

    run_ = find_run(args.name, args.dir or getattr(args, "runs_dir", None) or "runs")
    if not run_.request_stop():
        raise UserError(f"run {run_.name} is not training (status: {run_.summary().status})")
    print(f"asked run {run_.name} to stop after its current step; it saves a checkpoint first")
    if args.wait:
        while run_.is_locked():
            time.sleep(0.3)
        print(f"run {run_.name}: {run_.summary().status}")
    return 0
