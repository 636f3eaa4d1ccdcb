"""`tuitune train A B C --together` and `--resume` of a run that trained in a group (part of `train`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def run_together(args: argparse.Namespace, load: Callable[[str, list[str]], Any]) -> int | None:
    """Start (or resume) a group; None when `--resume NAME` names a run trained alone."""
    from tuitune.commands._args import runs_dir
    from tuitune.core.engine.together.launch import resume_group, start_group
    from tuitune.core.engine.together.plan import check_together, group_of
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run

    if args.nproc not in (None, 1) or args.nnodes != 1:
        raise UserError("--together trains in one process on one device",
                        "drop --nproc/--nnodes, or train the recipes one by one")
    if args.gpus is not None or args.dry_run or args.force:
        used = [o for o, on in (("--gpus", args.gpus is not None), ("--dry-run", args.dry_run), ("--force", args.force)) if on]
        raise UserError(f"{', '.join(used)} cannot go with --together yet",
                        "choose the GPU with CUDA_VISIBLE_DEVICES, or train the recipes one by one")
    if args.run_dir:
        raise UserError("--run-dir names one run's folder; a group writes each recipe's own runs_dir/NAME",
                        "drop --run-dir (set output.runs_dir or name in the recipes)")
    if args.resume:
        if args.recipes or args.overrides:
            raise UserError("--resume continues runs with their own frozen recipes", "drop RECIPE and --set")
        run = find_run(args.resume, runs_dir(args))
        if group_of(run) is None:
            if args.together:
                raise UserError(f"run {run.name} was not trained in a group", f"tuitune train --resume {run.name}")
            return None
        started = resume_group(run)
        print(f"resuming group {group_of(run)['name']}: " + ", ".join(r.name for r in started.runs))
    else:
        plan = check_together([load(path, args.overrides) for path in args.recipes], args.schedule, args.group)
        started = start_group(plan)
    if args.detach:
        names = [r.name for r in started.runs]
        print(f"training {len(names)} runs together in the background (pid {started.pid}): " + ", ".join(names))
        print(f"  watch:  tuitune runs watch {names[0]}   (each run: tuitune runs watch NAME)")
        print(f"  stop:   tuitune stop {names[0]}   (stops the whole group, each run with a checkpoint)")
        print(f"  log:    {started.runs[0].log_path}")
        return 0
    return follow_group(started)


def follow_group(started: Any) -> int:
    """Print every run's events, each line prefixed by its run, until the trainer exits. Ctrl-C asks the
    group to stop (each run checkpoints first); a second Ctrl-C leaves it running in the background."""
    from rich.console import Console
    from rich.markup import escape

    from tuitune.commands._ctrl_c import first_ctrl_c_stops
    from tuitune.core.events import event_markup
    from tuitune.core.runs.follow_many import follow_runs

    console = Console()
    runs = started.runs
    width = max(len(r.name) for r in runs)
    saying = "stopping the group after the current step, each run with a checkpoint"
    try:
        with first_ctrl_c_stops(console, runs[0].request_stop, saying):
            for run, event in follow_runs(runs, started.events_offsets):
                line = event_markup(event)
                if line is not None:
                    console.print(f"[bold]{escape(run.name.ljust(width))}[/] {line}", highlight=False, soft_wrap=True)
            code = started.process.wait()
    except KeyboardInterrupt:
        console.print(f"left running in the background: tuitune runs watch {runs[0].name}")
        return 130
    unfinished = [(r.name, r.summary().status) for r in runs]
    broken = [f"{n} ({st})" for n, st in unfinished if st not in ("done", "stopped", "failed")]
    if broken:
        console.print(f"[red]the trainer exited ({code}) with runs left {', '.join(broken)}; see {runs[0].log_path}[/]")
        return code or 1
    return code
