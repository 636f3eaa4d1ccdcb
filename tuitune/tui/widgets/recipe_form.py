"""The recipe form: one row per schema field, grouped by section, showing only what applies.

The form owns a working copy of the recipe. A valid edit is written into it at once; an invalid one
is kept as a problem on its field (the recipe keeps the last good value) until it is fixed.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.events import DescendantFocus
from textual.message import Message
from textual.widgets import Static

from tuitune.core.recipe import FIELDS, FieldSpec, Problem, Recipe, section_labels, validate
from tuitune.tui.widgets.field_row import FieldRow
from tuitune.tui.widgets.recipe_rows import RecipeRows

# Editing one of these can show or hide other fields (Recipe.applies depends on them).


class RecipeForm(RecipeRows):
    DEFAULT_CSS = """
    RecipeForm {
        height: 1fr;
        & .section-title {
            color: $text-primary;
            text-style: bold;
            padding: 0 1;
            margin-top: 1;
        }
        & .section-title.-first { margin-top: 0; }
    }
    """

    class Changed(Message):
        """The working recipe changed (or was replaced). `problems` covers typed-in and cross-field ones."""

        def __init__(self, form: RecipeForm, recipe: Recipe, problems: list[Problem]) -> None:
            super().__init__()
            self.form = form
            self.recipe = recipe
            self.problems = problems

    class FieldFocused(Message):
        def __init__(self, spec: FieldSpec) -> None:
            super().__init__()
            self.spec = spec

    def compose(self) -> ComposeResult:
        labels = section_labels(self.lang)
        section = None
        for spec in FIELDS.values():
            if spec.section != section:
                section = spec.section
                classes = "section-title" + (" -first" if section == "" else "")
                yield Static(labels.get(section, section), classes=classes, id=f"section-{section or 'run'}")
            yield FieldRow(spec, self.recipe.get(spec.key), self.lang)

    def on_mount(self) -> None:
        self._show_applicable()

    # ------------------------------------------------------------------ public

    def rows(self) -> list[FieldRow]:
        return list(self.query(FieldRow).results(FieldRow))

    def row(self, key: str) -> FieldRow:
        return self.query_one("#field-" + key.replace(".", "-"), FieldRow)

    def load(self, recipe: Recipe) -> None:
        """Show another recipe; the form edits it in place from now on."""
        self.recipe = recipe
        self.typed_problems.clear()
        for row in self.rows():
            row.set_value(recipe.get(row.spec.key))
        self._show_applicable()
        self._changed()

    def set_field(self, key: str, value: object) -> None:
        """Change one field from the program (not the keyboard), showing it like a user's edit."""
        self.typed_problems.pop(key, None)
        self.recipe.set(key, value)
        self.row(key).set_value(value)
        self._changed()

    def problems(self) -> list[Problem]:
        """Values that could not be read, then everything validate() finds in the working recipe."""
        checked = [p for p in validate(self.recipe) if p.key not in self.typed_problems]
        return self.unreadable() + checked

    def focus_field(self, key: str) -> None:
        row = self.row(key)
        if row.display:
            row.editor.focus()
            self.call_after_refresh(self.scroll_to_widget, row, animate=False)

    # ------------------------------------------------------------------ events

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        # Focus events bubble through different numbers of containers, so after quick tabbing they
        # can arrive out of order: describe what has the focus now, not what the event names.
        focused = self.screen.focused
        if focused is None:
            return
        for node in focused.ancestors_with_self:
            if isinstance(node, FieldRow):
                self.post_message(self.FieldFocused(node.spec))
                return

    # ------------------------------------------------------------------ internals

    def _changed(self) -> None:
        self.post_message(self.Changed(self, self.recipe, self.problems()))

    def _show_applicable(self) -> None:
        """Hide fields (and whole sections) that the current method does not use."""
        visible_sections: set[str] = set()
        for row in self.rows():
            applies = self.recipe.applies(row.spec.key)
            row.display = applies
            if applies:
                visible_sections.add(row.spec.section)
        for title in self.query(".section-title"):
            section = (title.id or "").removeprefix("section-")
            title.display = ("" if section == "run" else section) in visible_sections
