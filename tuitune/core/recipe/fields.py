"""How a recipe field is declared (`fld`) and described (`FieldSpec`): default, kind, range, guidance."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    """Everything the program knows about one recipe key."""

    key: str  # dotted, e.g. "lora.r"
    kind: str  # int | float | bool | str | choice | list | indices | table
    default: Any
    label: dict[str, str]
    help: dict[str, str]
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    # "all-linear" style: a list (or indices) field that also accepts one of these strings.
    list_or: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return self.key.split(".")[0] if "." in self.key else ""

    @property
    def name(self) -> str:
        return self.key.split(".")[-1]

    def allowed(self) -> str:
        """What values are allowed, in words, for messages and the form."""
        if self.kind == "choice":
            return "one of " + ", ".join(_fmt(c) for c in self.choices or ())
        if self.kind in ("int", "float"):
            word = "an integer" if self.kind == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{word} {_fmt(self.min)}..{_fmt(self.max)}"
            if self.min is not None:
                return f"{word} >= {_fmt(self.min)}"
            return word
        if self.kind == "bool":
            return "true or false"
        if self.kind == "list":
            extra = " or " + " / ".join(f'"{s}"' for s in self.list_or) if self.list_or else ""
            return "a list of strings" + extra
        if self.kind == "indices":
            extra = " or " + " / ".join(f'"{s}"' for s in self.list_or) if self.list_or else ""
            return "a list of GPU indices such as [0, 2]" + extra
        if self.kind == "table":
            return "a table of string = string"
        if self.pattern_text:
            return self.pattern_text
        return "a string"

    def text(self, lang: str = "en") -> str:
        return self.help.get(lang) or self.help["en"]

    def title(self, lang: str = "en") -> str:
        return self.label.get(lang) or self.label["en"]


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:g}"
        return f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def fld(default: Any, kind: str, label: tuple[str, str], help_en: str, help_zh: str, **kw: Any) -> Any:
    """Declare a recipe field. Metadata is read back by `fields()`."""
    meta = {"kind": kind, "label": {"en": label[0], "zh": label[1]}, "help": {"en": help_en, "zh": help_zh}, **kw}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


