"""`tuitune slurm RECIPE --nodes N --gpus-per-node G`: print an sbatch script that trains over N machines."""

from __future__ import annotations

import argparse
import sys

HELP = "print an sbatch script that trains a recipe on several machines of a Slurm cluster"


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir, positive_int

    parser.add_argument("recipe", metavar="RECIPE", help="a .toml recipe")
    parser.add_argument("--nodes", type=positive_int, required=True, metavar="N", help="machines")
    parser.add_argument("--gpus-per-node", type=positive_int, required=True, metavar="G", help="GPUs on each machine (one process each)")
    parser.add_argument("--partition", default=None, metavar="P", help="Slurm partition")
    parser.add_argument("--time", default=None, metavar="HH:MM:SS", help="time limit of the job")
    parser.add_argument("--cpus-per-task", type=positive_int, default=None, metavar="C", help="CPU cores per machine")
    parser.add_argument("--main-port", type=positive_int, default=29500, metavar="PORT",
                        help="port on the first machine where the others meet it (default 29500)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe key on every machine (repeatable)")
    add_runs_dir(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tuitune.commands._args import runs_dir
    from tuitune.core import recipe as r
    from tuitune.core.engine.slurm import SlurmJob, sbatch_script
    from tuitune.core.errors import UserError

    recipe, problems = r.load_recipe(args.recipe)
    if not problems:
        problems = r.apply_overrides(recipe, args.overrides)
    if problems:
        raise UserError("; ".join(p.format(args.recipe) for p in problems), "fix the recipe (tuitune recipe validate)")
    given = getattr(args, "command_runs_dir", None) or getattr(args, "runs_dir", None)
    folder = runs_dir(args) if given and given != "runs" else recipe.output.runs_dir
    job = SlurmJob(
        recipe=Path(args.recipe).expanduser().absolute(),
        name=recipe.name,
        runs_dir=Path(folder).expanduser().absolute(),
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        partition=args.partition,
        time=args.time,
        port=args.main_port,
        cpus_per_task=args.cpus_per_task,
        overrides=tuple(args.overrides),
    )
    sys.stdout.write(sbatch_script(job))
    return 0
