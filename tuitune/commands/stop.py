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
    from tuitune.core.engine.together.plan import group_members, group_of
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run

    run_ = find_run(args.name, runs_dir(args))
    if not run_.request_stop():
        raise UserError(f"run {run_.name} is not training (status: {run_.summary().status})")
    print(f"asked run {run_.name} to stop after its current step; it saves a checkpoint first")
    members = group_members(run_)
    if len(members) > 1:  # trained together: one trainer, one stop for all
        print(f"it trains in group {group_of(run_)['name']}: every run of the group stops, each with a checkpoint ("
              + ", ".join(m.name for m in members) + ")")
    if args.wait:
        while any(m.is_locked() for m in members):
            time.sleep(0.3)
        for m in members:
            print(f"run {m.name}: {m.summary().status}")
    return 0
