"""Changing a recipe from the command line (`--set key=value`) and comparing two recipes."""

from __future__ import annotations

from typing import Any

from tuitune.core.recipe.checks import Problem, cross_field_problems, did_you_mean, parse_text
from tuitune.core.recipe.defaults import derive_defaults
from tuitune.core.recipe.schema import FIELDS, Recipe


def apply_overrides(recipe: Recipe, assignments: list[str]) -> list[Problem]:
    """Apply `key=value` strings (from `--set`). Problems name the key and what is allowed."""
    problems: list[Problem] = []
    given = {item.split("=", 1)[0].strip() for item in assignments}
    assigned: set[str] = set()
    for item in assignments:
        if "=" not in item:
            problems.append(Problem(item, "expected key=value", "e.g. --set train.learning_rate=1e-4"))
            continue
        key, text = (s.strip() for s in item.split("=", 1))
        spec = FIELDS.get(key)
        if spec is None:
            problems.append(Problem(key, "unknown key" + did_you_mean(key, list(FIELDS)), "a dotted recipe key"))
            continue
        value, p = parse_text(spec, text)
        if p:
            problems.append(p)
            continue
        recipe.set(key, value)
        assigned.add(key)
    derive_defaults(recipe, given=given, changed=assigned)
    return problems + cross_field_problems(recipe, present=None)


def diff(a: Recipe, b: Recipe) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two recipes: (key, value in a, value in b)."""
    return [(k, a.get(k), b.get(k)) for k in FIELDS if a.get(k) != b.get(k)]
