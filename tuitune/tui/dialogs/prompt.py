"""Ask for one line of text (a file name, a path). Answers the text, or None when cancelled."""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from tuitune.tui.dialogs.base import Dialog


class PromptDialog(Dialog[str | None]):
    DEFAULT_CSS = """
    PromptDialog #error { color: $text-error; height: auto; }
    """

    def __init__(
        self, title: str, prompt: str, value: str = "", check: Callable[[str], str | None] | None = None
    ) -> None:
        """`check(text)` returns an error message to show, or None when the text is acceptable."""
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.value = value
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.prompt, markup=False)
            yield Input(self.value, id="answer")  # all selected: typing replaces the suggestion
            yield Static("", id="error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.t("dialog.ok"), id="ok", variant="primary")
                yield Button(self.t("dialog.cancel"), id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _accept(self) -> None:
        text = self.query_one("#answer", Input).value.strip()
        problem = self.check(text) if self.check else None
        if problem:
            self.query_one("#error", Static).update(problem)
            return
        self.dismiss(text)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
