"""`tuitune train RECIPE`: train in a process of its own, followed here or detached (--detach)."""

from __future__ import annotations

import argparse
import sys

HELP = ("train a recipe (in the background with --detach; continue a run with --resume NAME; "
        "several LoRA recipes on one base with --together)")


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir

    parser.add_argument("recipes", nargs="*", metavar="RECIPE",
                        help="a .toml recipe (several with --together)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="write the run here instead of runs_dir/NAME; without RECIPE, train the recipe.toml in DIR")
    parser.add_argument("--detach", action="store_true",
                        help="return at once; training continues after the terminal closes")
    parser.add_argument("--resume", default=None, metavar="NAME", help="continue a stopped or crashed run from its last checkpoint")
    add_runs_dir(parser)
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="processes (GPUs) to train with, through accelerate's launcher (default 1)")
    g = parser.add_argument_group("training together (one base model, one LoRA adapter per recipe)")
    g.add_argument("--together", action="store_true",
                   help="train the RECIPEs in one process that loads their base model once")
    g.add_argument("--schedule", choices=("fused", "round-robin"), default="fused",
                   help="fused: every job's batch in one forward (default); round-robin: one job per step")
    g.add_argument("--group", default=None, metavar="NAME", help="the group's name (default: the runs' names)")


def _load(path: str, overrides: list[str]):
    from tuitune.core import recipe as r
    from tuitune.core.errors import UserError

    recipe, problems = r.load_recipe(path)
    if not problems:
        problems = r.apply_overrides(recipe, overrides)
        where = "--set" if problems else path
    else:
        where = path
    if problems:
        for p in problems:
            print(p.format(where), file=sys.stderr)
        raise SystemExit(2)
    if not overrides:
        return recipe
    problems = r.validate(recipe)
    if problems:
        raise UserError("; ".join(p.format("--set") for p in problems))
    return recipe


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import runs_dir
    from tuitune.core.engine.launch import start_training
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run

    if args.together or (args.resume and not args.recipes):
        from tuitune.commands._train_together import run_together

        code = run_together(args, _load)
        if code is not None:
            return code
    if len(args.recipes) > 1:
        raise UserError(f"{len(args.recipes)} recipes given", "add --together to train them in one process on one "
                        "base model, or train them one at a time")
    recipe_path = args.recipes[0] if args.recipes else None
    if args.resume:
        if recipe_path or args.overrides:
            raise UserError("--resume continues a run with its own frozen recipe", "drop RECIPE and --set")
        run_dir = find_run(args.resume, runs_dir(args)).path
        started = start_training(None, run_dir, resume=True, nproc=args.nproc)
    elif recipe_path:
        started = start_training(_load(recipe_path, args.overrides), args.run_dir, nproc=args.nproc)
    elif args.run_dir:
        if args.overrides:
            raise UserError("--set needs a RECIPE", "tuitune train RECIPE --set key=value")
        started = start_training(None, args.run_dir, nproc=args.nproc)
    else:
        raise UserError("nothing to train", "tuitune train RECIPE, or tuitune train --resume NAME")

    run_ = started.run
    if args.detach:
        print(f"training in the background (pid {started.pid}): {run_.path}")
        print(f"  watch:  tuitune runs watch {run_.name}")
        print(f"  stop:   tuitune stop {run_.name}")
        print(f"  log:    {run_.log_path}")
        return 0
    return follow(started)


def follow(started) -> int:
    """Print the run's events until the trainer exits. Ctrl-C asks it to stop (checkpoint first);
    a second Ctrl-C leaves it running in the background."""
    from rich.console import Console

    from tuitune.commands._ctrl_c import first_ctrl_c_stops
    from tuitune.core.events import print_events

    console = Console(stderr=False)
    run_ = started.run
    try:
        with first_ctrl_c_stops(console, run_.request_stop, "stopping after the current step and saving a checkpoint"):
            print_events(console, run_.follow(started.events_offset))
            code = started.process.wait()
    except KeyboardInterrupt:
        console.print(f"left running in the background: tuitune runs watch {run_.name}")
        return 130
    summary = run_.summary()
    if summary.status not in ("done", "stopped", "failed"):
        console.print(f"[red]the trainer exited ({code}) with the run {summary.status}; see {run_.log_path}[/]")
        return code or 1
    return code
