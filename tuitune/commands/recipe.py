"""`tuitune recipe validate|new|fields`: check recipes, print a complete one, explain every key."""

from __future__ import annotations

import argparse
import sys

HELP = "check recipe files, print a new recipe, or explain every key"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="check recipe files; exit 2 listing every problem")
    v.add_argument("files", nargs="+", metavar="FILE")
    n = sub.add_parser("new", help="print a complete recipe with defaults and guidance comments")
    from tuitune.core.recipe import METHODS

    n.add_argument("--method", default="lora", choices=METHODS)
    n.add_argument("--model", default=None, help="model.name_or_path")
    n.add_argument("--name", default=None, help="run name")
    n.add_argument("--plain", action="store_true", help="no guidance comments")
    f = sub.add_parser("fields", help="list every key with its default, allowed values and guidance")
    f.add_argument("--section", default=None)


def run(args: argparse.Namespace) -> int:
    from tuitune.core import recipe as r

    if args.recipe_command == "validate":
        bad = 0
        for file in args.files:
            _, problems = r.load_recipe(file)
            for p in problems:
                print(p.format(file))
            if problems:
                bad += 1
            else:
                print(f"{file}: ok")
        return 2 if bad else 0
    if args.recipe_command == "new":
        recipe = r.new_recipe(args.method, args.model)
        if args.name:
            recipe.name = args.name
        problems = r.validate(recipe)
        if problems:  # e.g. a bad --name
            for p in problems:
                print(p.format("--"), file=sys.stderr)
            return 2
        sys.stdout.write(r.to_toml(recipe, comments=not args.plain, lang=args.lang))
        return 0
    if args.recipe_command == "fields":
        for spec in r.fields():
            if args.section and spec.section != args.section:
                continue
            print(f"{spec.key} = {r._fmt(spec.default) if not isinstance(spec.default, (list, dict)) else spec.default}")
            print(f"    {spec.title(args.lang)}. Allowed: {spec.allowed()}.")
            print(f"    {spec.text(args.lang)}")
        return 0
    return 2
