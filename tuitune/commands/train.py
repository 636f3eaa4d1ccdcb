"""`tuitune train RECIPE`: train in a process of its own, followed here or detached (--detach)."""

from __future__ import annotations

import argparse
import sys

HELP = ("train a recipe (in the background with --detach; continue a run with --resume NAME; "
        "several LoRA recipes on one base with --together)")


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir, add_trust_remote_code, non_negative_int, positive_int

    parser.add_argument("recipes", nargs="*", metavar="RECIPE",
                        help="a .toml recipe (several with --together)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key, e.g. --set train.epochs=2 (repeatable)")
    parser.add_argument("--run-dir", default=None, metavar="DIR",
                        help="write the run here instead of runs_dir/NAME; without RECIPE, train the recipe.toml in DIR")
    parser.add_argument("--detach", action="store_true",
                        help="return at once; training continues after the terminal closes")
    parser.add_argument("--resume", default=None, metavar="NAME", help="continue a stopped or crashed run from its last checkpoint")
    add_trust_remote_code(parser)
    add_runs_dir(parser)
    parser.add_argument("--gpus", default=None, metavar="0,2|auto",
                        help="GPUs to train on, as `tuitune hw` numbers them, or auto (default: the recipe's train.gpus)")
    parser.add_argument("--nproc", type=positive_int, default=None, metavar="N",
                        help="processes on this machine, one per GPU (default: the number of GPUs chosen; 1 on a CPU)")
    parser.add_argument("--force", action="store_true",
                        help="start even when the memory estimate does not fit a chosen GPU's free memory")
    parser.add_argument("--dry-run", action="store_true", help="print the launch plan and start nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    group = parser.add_argument_group("several machines (each runs the same command with its own --node-rank)")
    group.add_argument("--nnodes", type=positive_int, default=1, metavar="N", help="machines in the job (default 1)")
    group.add_argument("--node-rank", type=non_negative_int, default=0, metavar="R", help="this machine's rank, 0..N-1")
    group.add_argument("--main-address", default=None, metavar="HOST", help="address of the machine with --node-rank 0")
    group.add_argument("--main-port", type=positive_int, default=None, metavar="PORT", help="a free port on that machine")
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
    from tuitune.commands._args import apply_trust_remote_code, runs_dir
    from tuitune.core.engine.launch import start_training
    from tuitune.core.errors import UserError
    from tuitune.core.runs import RunDirectory, find_run

    apply_trust_remote_code(args)
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
        recipe, resume = RunDirectory(run_dir).load_recipe(), True
    elif recipe_path:
        recipe, resume = _load(recipe_path, args.overrides), False
        run_dir = args.run_dir or recipe.run_dir
    elif args.run_dir:
        if args.overrides:
            raise UserError("--set needs a RECIPE", "tuitune train RECIPE --set key=value")
        run_dir, resume = args.run_dir, False
        recipe = RunDirectory(run_dir).load_recipe()
    else:
        raise UserError("nothing to train", "tuitune train RECIPE, or tuitune train --resume NAME")
    plan = launch_plan(args, recipe, run_dir, resume)
    if args.dry_run:
        return print_plan(plan, args.json)
    if args.json:
        raise UserError("--json goes with --dry-run", "tuitune train RECIPE --dry-run --json")
    # The warnings also become the run's first events: followed here, they are printed from there.
    for line in plan_lines(plan, warnings=args.detach or plan.nodes.node_rank > 0):
        print(line, file=sys.stderr)
    fresh = recipe_path is not None and not resume
    started = start_training(recipe if fresh else None, run_dir if not fresh else args.run_dir, resume=resume, plan=plan)

    run_ = started.run
    if args.detach:
        print(f"training in the background (pid {started.pid}): {run_.path}")
        print(f"  watch:  tuitune runs watch {run_.name}")
        print(f"  stop:   tuitune stop {run_.name}")
        print(f"  log:    {plan.log_path}")
        return 0
    return follow(started)


def launch_plan(args: argparse.Namespace, recipe, run_dir, resume: bool):  # noqa: ANN001
    """The launch (GPUs, processes, environment, command) for these arguments."""
    from tuitune.core.engine.launch_plan import Nodes, plan_launch
    from tuitune.core.gpu_choice import parse_gpus

    gpus = parse_gpus(args.gpus) if args.gpus is not None else None
    nodes = Nodes(args.nnodes, args.node_rank, args.main_address, args.main_port)
    return plan_launch(recipe, run_dir, gpus=gpus, nproc=args.nproc, force=args.force, nodes=nodes, resume=resume)


def plan_lines(plan, warnings: bool = True) -> list[str]:  # noqa: ANN001 - LaunchPlan
    """What the user should know before it starts: the GPUs (and why), then the warnings."""
    from tuitune.core.events import format_size

    where = f"GPU {', '.join(map(str, plan.gpus))}" if plan.gpus else "the CPU"
    node = f" (machine {plan.nodes.node_rank} of {plan.nodes.nnodes})" if plan.nodes.multi else ""
    lines = [f"training on {where} with {plan.nproc} process{'' if plan.nproc == 1 else 'es'}{node}; estimate {format_size(plan.estimate_bytes)} per process"]
    if plan.reason:
        lines.append(plan.reason)
    if warnings:
        lines += [f"warning: {w}" for w in plan.warnings]
    return lines


def print_plan(plan, as_json: bool) -> int:  # noqa: ANN001 - LaunchPlan
    import json
    import shlex

    if as_json:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    for line in plan_lines(plan):
        print(line)
    for key, value in plan.env.items():
        print(f"  {key}={value}")
    print("  " + shlex.join(plan.command))
    print(f"  log: {plan.log_path}")
    return 0


def follow(started) -> int:
    """Print the run's events until the trainer exits. Ctrl-C asks it to stop (checkpoint first);
    a second Ctrl-C leaves it running in the background."""
    from rich.console import Console

    from tuitune.commands._ctrl_c import first_ctrl_c_stops
    from tuitune.core.events import print_events

    console = Console(stderr=False)
    run_ = started.run
    plan = started.plan
    try:
        with first_ctrl_c_stops(console, run_.request_stop, "stopping after the current step and saving a checkpoint"):
            if plan is not None and plan.nodes.node_rank > 0:
                # Machine 0 prints the run's events; this one's processes write to their own log.
                console.print(f"machine {plan.nodes.node_rank} of {plan.nodes.nnodes} training; log {plan.log_path}")
                return started.process.wait()
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
