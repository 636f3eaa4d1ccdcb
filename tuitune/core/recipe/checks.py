"""Checking a recipe: one value against its field, typed text, and the rules across fields."""

from __future__ import annotations

import difflib
import math
import sys
from dataclasses import dataclass
from typing import Any

from tuitune.core.recipe.fields import FieldSpec
from tuitune.core.recipe.methods import (
    OPTIONAL_SECTIONS,
    PEFT_METHODS,
    SECTIONS_FOR_METHOD,
    trains_base_weights,
)
from tuitune.core.recipe.schema import FIELDS, Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, phrased for `FILE: key: message (allowed)`."""

    key: str
    message: str
    allowed: str = ""

    def format(self, file: str | None = None) -> str:
        text = f"{self.key}: {self.message}"
        if self.allowed:
            text += f" ({self.allowed})"
        return f"{file}: {text}" if file else text


def check_value(spec: FieldSpec, value: Any) -> tuple[Any, Problem | None]:
    """Check one value against its field; returns the (possibly widened) value and a problem or None."""
    kind = spec.kind
    bad = Problem(spec.key, f"{_show(value)} is not valid", spec.allowed())
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else (value, _typed(spec, value, "true or false"))
    if kind == "int" or (kind == "choice" and spec.choices and isinstance(spec.choices[0], int)):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return value, _typed(spec, value, "an integer")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, _typed(spec, value, "a number")
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return value, bad
    elif kind in ("str", "choice"):
        if not isinstance(value, str):
            return value, _typed(spec, value, "a string")
    elif kind == "list":
        if isinstance(value, str):
            if value in spec.list_or:
                return value, None
            return value, bad
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return value, bad
        return list(value), None
    elif kind == "indices":
        return _check_indices(spec, value)
    elif kind == "table":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return value, bad
        return dict(value), None

    if spec.choices is not None and value not in spec.choices:
        hint = did_you_mean(str(value), [str(c) for c in spec.choices])
        return value, Problem(spec.key, f"{_show(value)} is not a choice{hint}", spec.allowed())
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        return value, Problem(spec.key, f"{_show(value)} is out of range", spec.allowed())
    if spec.pattern is not None and not spec.pattern.match(value):
        return value, Problem(spec.key, f"{_show(value)} is not allowed", spec.allowed())
    return value, None


def _check_indices(spec: FieldSpec, value: Any) -> tuple[Any, Problem | None]:
    """A list of distinct non-negative integers (GPU indices), or one of the field's words ("auto")."""
    if isinstance(value, str):
        return value, None if value in spec.list_or else Problem(spec.key, f"{_show(value)} is not valid", spec.allowed())
    if not isinstance(value, list) or not value:
        return value, Problem(spec.key, f"{_show(value)} is not valid", spec.allowed())
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            return value, Problem(spec.key, f"{_show(item)} is not a GPU index", spec.allowed())
    repeated = sorted({i for i in value if value.count(i) > 1})
    if repeated:
        return value, Problem(spec.key, f"GPU {repeated[0]} is listed twice", spec.allowed())
    return list(value), None


def _typed(spec: FieldSpec, value: Any, want: str) -> Problem:
    return Problem(spec.key, f"{_show(value)} is a {type_word(value)}, not {want}", spec.allowed())


def type_word(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, (list, dict)) else str(value)


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_text(spec: FieldSpec, text: str) -> tuple[Any, Problem | None]:
    """Turn what a user typed (a form input, a `--set` value) into a checked value."""
    text = text.strip()
    kind = spec.kind
    value: Any = text
    try:
        if kind == "bool":
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                value = True
            elif low in ("false", "no", "off", "0"):
                value = False
        elif kind == "int" or (kind == "choice" and spec.choices and isinstance(spec.choices[0], int)):
            value = int(text.replace("_", ""))
        elif kind == "float":
            value = float(text)
        elif kind == "list":
            if text in spec.list_or:
                value = text
            else:
                value = [p.strip().strip("\"'") for p in text.strip("[]").split(",") if p.strip()]
        elif kind == "indices":
            if text not in spec.list_or:
                value = [int(p.strip()) for p in text.strip("[]").split(",") if p.strip()]
        elif kind == "table":
            value = tomllib.loads(f"t = {text}")["t"] if text.startswith("{") else {}
            if text and not text.startswith("{"):
                value = dict(p.split("=", 1) for p in text.split(","))
                value = {k.strip(): v.strip().strip("\"'") for k, v in value.items()}
    except (ValueError, tomllib.TOMLDecodeError):
        return text, Problem(spec.key, f'"{text}" is not valid', spec.allowed())
    return check_value(spec, value)


def validate(recipe: Recipe) -> list[Problem]:
    """Every field's value checked, then the cross-field rules."""
    problems: list[Problem] = []
    for spec in FIELDS.values():
        _, p = check_value(spec, recipe.get(spec.key))
        if p:
            problems.append(p)
    return problems + cross_field_problems(recipe, present=None)


def cross_field_problems(recipe: Recipe, present: set[str] | None) -> list[Problem]:
    """Rules that involve more than one field. `present`: sections written in the file (None = unknown)."""
    out: list[Problem] = []
    method = recipe.method.type
    if present is not None:
        for section in OPTIONAL_SECTIONS:
            if section in present and section not in recipe.sections_in_use:
                users = [m for m, secs in SECTIONS_FOR_METHOD.items() if section in secs]
                out.append(
                    Problem(
                        section,
                        f"[{section}] does not apply to method.type = \"{method}\"",
                        "remove the section, or use method " + " / ".join(users),
                    )
                )
    if recipe.train.eval_steps > 0 and recipe.data.val_size == 0:
        out.append(
            Problem("train.eval_steps", "evaluation is scheduled but data.val_size = 0", "set data.val_size > 0 or eval_steps = 0")
        )
    if method == "qlora" and recipe.quantization.bits == 8 and recipe.quantization.quant_type != "nf4":
        out.append(Problem("quantization.quant_type", "only applies to 4-bit quantization", "remove it, or set bits = 4"))
    if recipe.model.adapter and trains_base_weights(method):
        out.append(
            Problem("model.adapter", f"continuing from an adapter needs a PEFT method, not \"{method}\"", "one of " + ", ".join(PEFT_METHODS))
        )
    if recipe.train.offload_activations and not recipe.train.gradient_checkpointing:
        out.append(
            Problem("train.offload_activations", "offloads the inputs of checkpointed layers, but checkpointing is off",
                    "set train.gradient_checkpointing = true, or offload_activations = false")
        )
    if recipe.train.mixed_precision == "fp16" and recipe.model.dtype == "bfloat16":
        out.append(
            Problem("train.mixed_precision", 'fp16 mixed precision with bfloat16 weights', 'use "bf16", or model.dtype = "float16"')
        )
    return out
