"""One recipe field in the form: its label, the right editor for its kind, and its inline error.

The editor is chosen from the schema's `FieldSpec.kind`; values typed by the user are parsed and
checked by `recipe.parse_text`, so the form accepts exactly what a TOML file or `--set` would.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, Switch

from tuitune.core.recipe import FieldSpec, Problem, check_value, parse_text
from tuitune.tui.i18n import allowed_text, t


def format_value(spec: FieldSpec, value: Any) -> str:
    """The text an Input shows for a value; parse_text(spec, format_value(spec, v)) gives v back."""
    if spec.kind in ("list", "indices"):
        return value if isinstance(value, str) else ", ".join(map(str, value))
    if spec.kind == "table":
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if spec.kind == "float":
        return repr(float(value))  # shortest text that reads back as the same float
    return str(value)


def inline_error(problem: Problem, spec: FieldSpec, lang: str) -> str:
    """The schema's message with what is allowed, in the interface language where we can."""
    return t("field.invalid", lang, message=f"{problem.message} ({allowed_text(spec, lang)})")


class FieldRow(Widget):
    """A labelled editor for one recipe key. Posts `FieldRow.Edited` whenever the user changes it."""

    DEFAULT_CSS = """
    FieldRow {
        layout: grid;
        grid-size: 2;
        grid-columns: 24 1fr;
        grid-rows: auto;
        height: auto;
        max-width: 110;  /* on a wide terminal a select 150 columns wide is harder to read, not easier */
        padding: 0 1;
        & .field-label { color: $text-muted; }
        & .field-editor { width: 1fr; }
        & .field-pair { height: 1; }
        & Switch.field-editor { border: none; padding: 0; height: 1; width: 8; }
        & Switch.field-editor:focus { background: $accent 30%; }
        & Checkbox { width: auto; height: 1; margin-left: 1; }
        & .switch-state { margin-left: 1; color: $text-muted; }
        & .field-error { column-span: 2; color: $text-error; padding-left: 24; }
        &.-invalid .field-label { color: $text-error; }
        &:focus-within { background: $boost; }
        &:focus-within .field-label { color: $text-accent; text-style: bold; }
    }
    """

    class Edited(Message):
        """The user changed a field. `problem` is None when `value` is valid."""

        def __init__(self, row: FieldRow, value: Any, problem: Problem | None) -> None:
            super().__init__()
            self.row = row
            self.key = row.spec.key
            self.value = value
            self.problem = problem

    def __init__(self, spec: FieldSpec, value: Any, lang: str) -> None:
        super().__init__(id="field-" + spec.key.replace(".", "-"))
        self.spec = spec
        self.lang = lang
        self._initial = value
        self._value = value  # the last good value shown; editors echo it back when mounted
        self._error: Static | None = None

    # ------------------------------------------------------------------ building

    # A form has ~60 rows: keep each to a few widgets (a grid, no wrapper where one editor will do)
    # and mount the error line only when there is an error, so the screen opens quickly.

    def compose(self) -> ComposeResult:
        spec, value = self.spec, self._initial
        yield Label(spec.title(self.lang), classes="field-label", markup=False)
        if spec.kind == "bool":
            with Horizontal(classes="field-pair"):
                yield Switch(bool(value), classes="field-editor")
                yield Label(self._on_off(bool(value)), classes="switch-state")
        elif spec.kind in ("list", "indices") and spec.list_or:
            is_word = isinstance(value, str)
            with Horizontal(classes="field-pair"):
                yield Input(
                    self._list_text(value),
                    compact=True,
                    disabled=is_word,
                    classes="field-editor",
                    placeholder=t("field.indices_placeholder" if spec.kind == "indices" else "field.list_placeholder", self.lang),
                )
                for word in spec.list_or:
                    yield Checkbox(word, value=is_word and value == word, compact=True, classes="field-or")
        else:
            yield from self._editor(spec, value)

    def _editor(self, spec: FieldSpec, value: Any) -> ComposeResult:
        if spec.kind == "choice":
            options = [(str(c), c) for c in spec.choices or ()]
            yield Select(options, value=value, allow_blank=False, compact=True, classes="field-editor")
        else:
            placeholder = t("field.table_placeholder", self.lang) if spec.kind == "table" else ""
            yield Input(
                format_value(spec, value), compact=True, classes="field-editor", placeholder=placeholder
            )

    def _list_text(self, value: Any) -> str:
        """A list field's text; while its word ("all-linear", "auto") is ticked, the default list, if any."""
        if not isinstance(value, str):
            return format_value(self.spec, value)
        return "" if isinstance(self.spec.default, str) else format_value(self.spec, self.spec.default)

    def _on_off(self, value: bool) -> str:
        return t("field.on" if value else "field.off", self.lang)

    # ------------------------------------------------------------------ reading and writing

    @property
    def editor(self) -> Widget:
        return self.query_one(".field-editor")

    def set_value(self, value: Any) -> None:
        """Show a value (from a loaded recipe) without posting Edited, and clear any error."""
        spec = self.spec
        editor = self.editor
        self._value = value
        with self.prevent(Input.Changed, Select.Changed, Switch.Changed, Checkbox.Changed):
            if isinstance(editor, Switch):
                editor.value = bool(value)
                self.query_one(".switch-state", Label).update(self._on_off(bool(value)))
            elif isinstance(editor, Select):
                editor.value = value
            elif isinstance(editor, Input):
                is_word = spec.kind in ("list", "indices") and isinstance(value, str)
                editor.value = self._list_text(value) if spec.kind in ("list", "indices") else format_value(spec, value)
                editor.disabled = is_word
                for box in self.query(".field-or").results(Checkbox):
                    box.value = is_word and value == str(box.label)
        self.show_problem(None)

    def show_problem(self, problem: Problem | None) -> None:
        self.set_class(problem is not None, "-invalid")
        # Track the error line by reference: mounting is asynchronous, so a query right after a
        # mount (fast typing: "" then "1") would not find it yet and the stale error would stay.
        if problem is None:
            if self._error is not None:
                self._error.remove()
                self._error = None
            return
        text = inline_error(problem, self.spec, self.lang)
        if self._error is None:
            self._error = Static(text, classes="field-error", markup=False)
            self.mount(self._error)
        else:
            self._error.update(text)

    @property
    def error_text(self) -> str:
        """The inline error shown under the field ("" when the value is fine)."""
        return str(self._error.render()) if self._error is not None else ""

    def _report(self, value: Any, problem: Problem | None) -> None:
        if problem is None and value == self._value and not self.has_class("-invalid"):
            return  # no change: e.g. the Changed every Input and Select posts when it is mounted
        if problem is None:
            self._value = value
        self.show_problem(problem)
        self.post_message(self.Edited(self, value, problem))

    # ------------------------------------------------------------------ user edits

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if event.input.disabled:
            # An "all-linear"-style word is ticked: the list beside it is not the value (its Changed
            # on mount would otherwise replace the word with the default list).
            return
        self._report(*parse_text(self.spec, event.value))

    @on(Select.Changed)
    def _chosen(self, event: Select.Changed) -> None:
        event.stop()
        self._report(*check_value(self.spec, event.value))

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        event.stop()
        self.query_one(".switch-state", Label).update(self._on_off(event.value))
        self._report(event.value, None)

    @on(Checkbox.Changed)
    def _ticked(self, event: Checkbox.Changed) -> None:
        """A list field's "all-linear"-style word: ticking it replaces the list, unticking restores it."""
        event.stop()
        editor = self.query_one(Input)
        editor.disabled = event.value
        if event.value:
            for box in self.query(".field-or").results(Checkbox):
                if box is not event.checkbox and box.value:
                    with self.prevent(Checkbox.Changed):
                        box.value = False
            self._report(*check_value(self.spec, str(event.checkbox.label)))
        else:
            self._report(*parse_text(self.spec, editor.value))
