"""`tuitune runs`: list runs; `tuitune runs watch NAME`: follow a run's events until it ends."""

from __future__ import annotations

import argparse
import json

HELP = "list training runs, or follow one live (runs watch NAME)"


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir

    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    add_runs_dir(parser)
    sub = parser.add_subparsers(dest="runs_command", metavar="ACTION")
    w = sub.add_parser("watch", help="print a run's events (its whole history, then live) until it ends")
    w.add_argument("name", metavar="NAME")
    add_runs_dir(w, nested=True)


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import runs_dir

    if args.runs_command == "watch":
        return watch(args.name, runs_dir(args))
    return list_(runs_dir(args), as_json=args.json)


def list_(runs_dir: str, as_json: bool = False) -> int:
    from tuitune.core.runs import list_runs

    runs = list_runs(runs_dir)
    if as_json:
        print(json.dumps([r.to_dict() for r in runs], indent=1))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from tuitune.core.events import format_duration

    console = Console()
    if not runs:
        console.print(f"no runs in {runs_dir}")
        return 0
    colors = {"done": "green", "training": "cyan", "failed": "red", "crashed": "red", "stopped": "yellow",
              "unreadable": "red"}
    table = Table(box=None, header_style="bold")
    grouped = any(r.group for r in runs)  # the group column only when some run trained together
    for col in ("name", "status", "method", "model", "steps", "best eval", "duration") + (("group",) if grouped else ()):
        table.add_column(col, justify="right" if col in ("steps", "best eval", "duration") else "left")
    for r in runs:
        color = colors.get(r.status, "blue")
        best = f"{r.best_eval_loss:.4f}" if isinstance(r.best_eval_loss, (int, float)) else "-"
        steps = f"{r.step}/{r.max_steps}" if r.max_steps else str(r.step)
        model = r.model if len(r.model) <= 40 else "…" + r.model[-39:]
        row = [escape(r.name), f"[{color}]{escape(r.status)}[/]", escape(r.method), escape(model), steps, best,
               format_duration(r.duration_s)]
        table.add_row(*row, *([escape(r.group or "-")] if grouped else []))
    console.print(table)
    for r in runs:
        if r.status == "unreadable":
            console.print(f"[red]{escape(r.name)}: cannot be read ({escape(str(r.error))})[/]", highlight=False)
    return 0


def watch(name: str, runs_dir: str) -> int:
    from rich.console import Console

    from tuitune.core.events import print_events
    from tuitune.core.runs import find_run

    run_ = find_run(name, runs_dir)
    console = Console()
    try:
        print_events(console, run_.follow())
    except KeyboardInterrupt:
        return 130  # stops watching; the trainer keeps going
    summary = run_.summary()
    if summary.status in ("crashed", "interrupted"):
        console.print(f"[red]the trainer is gone and the run is {summary.status}[/]: "
                      f"resume with `tuitune train --resume {run_.reference()}` (see {run_.log_path})", highlight=False)
        return 1
    return 0 if summary.status in ("done", "stopped") else 1
