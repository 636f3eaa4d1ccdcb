"""What the Recipe form and the planner's what-if controls share: FieldRows that edit a recipe in place.

A value that cannot be read (a half-typed number) is not written into the recipe; its problem is
kept in `typed_problems` until the row holds a good value again.
"""

from __future__ import annotations

from textual.containers import VerticalScroll

from tuitune.core.recipe import Problem, Recipe
from tuitune.tui.widgets.field_row import FieldRow

# Fields whose value changes which other fields apply (the rows shown).
SHAPE_KEYS = ("method.type", "quantization.bits")


class RecipeRows(VerticalScroll, can_focus=False):
    def __init__(self, recipe: Recipe, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.recipe = recipe
        self.lang = lang
        self.typed_problems: dict[str, Problem] = {}

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        event.stop()
        if event.problem is None:
            self.typed_problems.pop(event.key, None)
            self.recipe.set(event.key, event.value)
        else:
            self.typed_problems[event.key] = event.problem
        if event.key in SHAPE_KEYS:
            self._show_applicable()
        self._changed()

    def unreadable(self) -> list[Problem]:
        """The typed values that could not be read, for the fields the method uses."""
        return [p for key, p in self.typed_problems.items() if self.recipe.applies(key)]

    def _show_applicable(self) -> None:
        """Show only the rows that apply to the recipe's method."""
        raise NotImplementedError

    def _changed(self) -> None:
        """Tell the screen that the recipe (or its problems) changed."""
        raise NotImplementedError
