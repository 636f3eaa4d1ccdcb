"""`tuitune pull MODEL`: download what training and chat need into the hub cache, with progress.

The list of files and the total size come first (from the hub's metadata), then the disk check,
then one progress bar per file and one for the whole (bytes, speed, ETA). Ctrl-C or a lost SSH
session keeps what arrived: running the command again resumes each file where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HELP = "download a hub model (the files training and chat need) into the hub cache, resumably"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="a hub id, e.g. Qwen/Qwen2.5-0.5B-Instruct")
    parser.add_argument("--revision", default=None, metavar="R", help="branch, tag or commit (default main)")
    parser.add_argument("--force", action="store_true", help="download even when the disk seems too small")
    parser.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    parser.add_argument("--json", action="store_true", help="print the plan (and the result) as JSON, no bars")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tuitune.core.errors import UserError
    from tuitune.core.models.hub_cache import HUB_ID_RE, check_space, plan_download
    from tuitune.core.models.hub_download import download

    if not HUB_ID_RE.match(args.model):
        raise UserError(f"'{args.model}' is not a hub id (org/name)", "e.g. tuitune pull Qwen/Qwen2.5-0.5B-Instruct")
    console = Console(stderr=True, highlight=False)
    plan = plan_download(args.model, args.revision)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=1))
    else:
        show_plan(console, plan)
    if args.dry_run:
        return 0
    if not plan.complete:
        check_space(plan, force=args.force)
    try:
        with download_bars(console) as show:
            path = download(plan, progress=None if args.json else show)
    except KeyboardInterrupt:
        print(f"interrupted: what arrived is kept; `tuitune pull {args.model}` resumes it", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({"path": str(path)}))
    else:
        console.print(f"[green]ready:[/] {args.model} in {path}")
        console.print(f"  train it: set model.name_or_path = \"{args.model}\" in a recipe (or the Recipe screen)")
    return 0


def show_plan(console, plan) -> None:  # noqa: ANN001 - rich Console, DownloadPlan
    from rich.table import Table

    from tuitune.core.units import format_bytes

    short = plan.commit[:10]
    console.print(f"[bold]{plan.repo_id}[/] @ {plan.revision} (commit {short}): "
                  f"{len(plan.files)} files, {format_bytes(plan.total_bytes)}")
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 2))
    table.add_column("file")
    table.add_column("size", justify="right")
    table.add_column("state")
    for f in plan.files:
        state = ("[green]cached[/]" if f.cached
                 else f"[yellow]{format_bytes(f.partial)} kept: resumes[/]" if f.partial else "")
        table.add_row(f.path, format_bytes(f.size), state)
    console.print(table)
    free = format_bytes(plan.free_bytes) if plan.free_bytes is not None else "?"
    if plan.complete:
        console.print(f"already in the hub cache ({plan.cache_dir})")
    else:
        console.print(f"to download: {format_bytes(plan.missing_bytes)} into {plan.cache_dir} ({free} free)")


@contextmanager
def download_bars(console: Any) -> Iterator[Callable[[Any], None]]:
    """A progress callback for `hub_download` (pull, and chat loading a model not cached): rich bars
    (the whole, and one per file, with bytes, speed and ETA) on a terminal, a line per finished file
    when the output is a file or a pipe. Nothing is drawn until a download reports."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from tuitune.core.units import format_bytes

    columns = (TextColumn("{task.description}"), BarColumn(bar_width=30), DownloadColumn(binary_units=True),
               TransferSpeedColumn(), TimeRemainingColumn())
    bars = Progress(*columns, console=console, transient=False)
    tasks: dict[str, Any] = {}
    last = {"file": ""}

    def lines(p: Any) -> None:
        if last["file"] and (p.file != last["file"] or p.finished):
            console.print(f"  {last['file']} done ({format_bytes(p.done)} of {format_bytes(p.total)})")
        last["file"] = p.file

    def draw(p: Any) -> None:
        if not tasks:
            bars.start()
            tasks[""] = bars.add_task("[bold]total[/]", total=p.total, completed=p.done)
        if p.file and p.file not in tasks:
            tasks[p.file] = bars.add_task(p.file, total=p.file_total, completed=p.file_done)
        if p.file:
            bars.update(tasks[p.file], completed=p.file_done)
        bars.update(tasks[""], completed=p.done)

    try:
        yield draw if console.is_terminal else lines
    finally:
        if tasks:
            bars.stop()
