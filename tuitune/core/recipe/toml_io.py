"""Recipes as TOML files: parse (every problem reported, none raised), write (optionally with guidance)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

from tuitune.core.recipe.checks import Problem, check_value, cross_field_problems, did_you_mean, type_word
from tuitune.core.recipe.defaults import derive_defaults
from tuitune.core.recipe.fields import FieldSpec
from tuitune.core.recipe.methods import OPTIONAL_SECTIONS
from tuitune.core.recipe.schema import FIELDS, SECTION_TYPES, Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib


def from_dict(raw: dict[str, Any], source: Path | None = None, check: bool = True) -> tuple[Recipe, list[Problem]]:
    """Build a recipe from parsed TOML. Unknown keys and bad values become problems, never exceptions.

    A bad value is reported and the default kept, so the rest of the recipe is still checked.
    """
    recipe = Recipe(source=source)
    problems: list[Problem] = []
    known_sections = set(SECTION_TYPES)
    all_keys = list(FIELDS)
    present: set[str] = set()
    given: set[str] = set()  # keys the file sets, valid or not

    def put(key: str, value: Any) -> None:
        spec = FIELDS[key]
        value, p = check_value(spec, value)
        if p:
            problems.append(p)
        else:
            recipe.set(key, value)

    for top, value in raw.items():
        if top in known_sections:
            if not isinstance(value, dict):
                problems.append(Problem(top, f"must be a table [{top}], got a {type_word(value)}", "a [section] table"))
                continue
            present.add(top)
            for sub, v in value.items():
                key = f"{top}.{sub}"
                if key not in FIELDS:
                    problems.append(Problem(key, "unknown key" + did_you_mean(key, all_keys), _section_keys(top)))
                    continue
                given.add(key)
                put(key, v)
        elif top in FIELDS:
            given.add(top)
            put(top, value)
        else:
            problems.append(
                Problem(top, "unknown key" + did_you_mean(top, all_keys + list(known_sections)), "name or a section: " + ", ".join(sorted(known_sections)))
            )
    derive_defaults(recipe, given=given)
    if check:
        problems += cross_field_problems(recipe, present)
    return recipe, problems


def _section_keys(section: str) -> str:
    return "keys: " + ", ".join(k.split(".", 1)[1] for k in FIELDS if k.startswith(section + "."))


def load_recipe(path: str | Path) -> tuple[Recipe, list[Problem]]:
    """Read a recipe file. Unreadable files and TOML syntax errors are problems too (key = "toml")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return Recipe(source=path), [Problem("file", "not found", "a path to a .toml recipe")]
    except (OSError, UnicodeDecodeError) as e:
        return Recipe(source=path), [Problem("file", f"cannot be read: {e}", "a UTF-8 .toml file")]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return Recipe(source=path), [Problem("toml", f"syntax error: {e}", "valid TOML, see https://toml.io")]
    return from_dict(raw, source=path)


def to_dict(recipe: Recipe, all_sections: bool = False) -> dict[str, Any]:
    """The recipe as plain data; optional sections the method does not use are left out."""
    out: dict[str, Any] = {"name": recipe.name}
    for section in SECTION_TYPES:
        if not all_sections and section in OPTIONAL_SECTIONS and section not in recipe.sections_in_use:
            continue
        out[section] = dataclasses.asdict(getattr(recipe, section))
    return out


def to_toml(recipe: Recipe, comments: bool = False, lang: str = "en") -> str:
    """Serialize with tomli-w; with `comments`, each key is preceded by its guidance (for `recipe new`)."""
    import tomli_w

    data = to_dict(recipe)
    if not comments:
        return tomli_w.dumps(data)
    lines: list[str] = ["# tuitune recipe. Every key is explained above it; `tuitune recipe validate` checks it.", ""]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            for sub, v in value.items():
                lines.extend(_comment_lines(FIELDS[f"{key}.{sub}"], lang))
                lines.append(_toml_line(sub, v))
            lines.append("")
        else:
            lines.extend(_comment_lines(FIELDS[key], lang))
            lines.append(tomli_w.dumps({key: value}).strip())
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _toml_line(key: str, value: Any) -> str:
    import tomli_w

    if isinstance(value, dict):  # inline table, so it stays under its section's comments
        inner = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
        return f"{key} = {{{inner}}}" if inner else f"{key} = {{}}"
    return tomli_w.dumps({key: value}).strip()


def _comment_lines(spec: FieldSpec, lang: str) -> list[str]:
    import textwrap

    text = f"{spec.text(lang)} Allowed: {spec.allowed()}."
    return ["# " + line for line in textwrap.wrap(text, 100)]


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write the recipe as TOML (atomic: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        tmp.write_text(to_toml(recipe), encoding="utf-8")
        tmp.replace(path)
    except BaseException:  # a full disk: leave no temp file behind
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return path
