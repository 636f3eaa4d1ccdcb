"""What differs between the recipe as loaded (or the defaults) and the form now."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from tuitune.core.recipe import FIELDS, Recipe, diff
from tuitune.tui.i18n import t
from tuitune.tui.widgets.field_row import format_value


def _show(key: str, value: Any) -> str:
    spec = FIELDS[key]
    if spec.kind == "bool":
        return "true" if value else "false"
    return format_value(spec, value) if spec.kind in ("list", "indices", "table", "float") else str(value)


class RecipeDiff(Static):
    DEFAULT_CSS = """
    RecipeDiff { height: auto; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(t("diff.none", lang), id=id, markup=False)
        self.lang = lang
        self.changed_keys: list[str] = []
        self._last: list = []

    def compare(self, before: Recipe, now: Recipe) -> None:
        changes = diff(before, now)
        if self.changed_keys and changes == self._last:
            return
        self._last = changes
        self.changed_keys = [key for key, _, _ in changes]
        if not changes:
            self.update(t("diff.none", self.lang))
            return
        lines = [
            Content.assemble(
                (key, "bold"),
                ": ",
                (_show(key, old), "$text-error"),
                " → ",
                (_show(key, new), "$text-success"),
            )
            for key, old, new in changes
        ]
        self.update(Content("\n").join(lines))
