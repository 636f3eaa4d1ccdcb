"""`tuitune`: with no subcommand it opens the TUI; subcommands do the same work headless.

Kept light: subcommand modules are imported to build `--help`, but none of them imports torch,
transformers or textual at module level (a test checks it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> module; each module has HELP, register(parser) and run(args) -> int.
COMMANDS: dict[str, str] = {
    "recipe": "tuitune.commands.recipe",
    "data": "tuitune.commands.data",
    "chat": "tuitune.commands.chat",
    "eval": "tuitune.commands.evaluate",
    "export": "tuitune.commands.export",
    "hw": "tuitune.commands.hw",
    "estimate": "tuitune.commands.estimate",
    "pull": "tuitune.commands.pull",
    "train": "tuitune.commands.train",
    "runs": "tuitune.commands.runs",
    "stop": "tuitune.commands.stop",
    "slurm": "tuitune.commands.slurm",
}


def default_lang() -> str:
    for var in ("TUITUNE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuitune",
        description="Fine-tune large language models from a terminal. Without a subcommand, opens the app.",
    )
    parser.add_argument("--lang", choices=("en", "zh"), default=None, help="interface language (default: from the locale)")
    parser.add_argument("--no-mouse", action="store_true", help="do not capture the mouse in the app")
    parser.add_argument("--run", metavar="NAME", help="open the app on this run (reattach to its training)")
    parser.add_argument("--runs-dir", default="runs", help="where runs live (default: ./runs)")
    parser.add_argument("--version", action="version", version="tuitune " + _version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.register(p)
        p.set_defaults(_module=module_name)
    return parser


def _version() -> str:
    from tuitune import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    from tuitune.core.errors import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.lang is None:
        args.lang = default_lang()
    try:
        if args.command is None:
            from tuitune.tui.app import run_app

            return run_app(lang=args.lang, mouse=not args.no_mouse, run=args.run, runs_dir=args.runs_dir)
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if isinstance(e, BrokenPipeError):
            return 0
        # A file tuitune reads or writes outside the paths that say so themselves (a run folder
        # someone else owns, a disk that filled up): one line naming it, not a traceback.
        from tuitune.core.runs.disk import disk_hint, os_error_text

        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{os_error_text(e)}\n  hint: {disk_hint(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
