"""Yes/no question. Answers True or False (escape = no)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from tuitune.tui.dialogs.base import Dialog


class ConfirmDialog(Dialog[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n", "answer(False)", "No")]

    def __init__(self, title: str, message: str, yes_first: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.yes_first = yes_first  # which button has the focus; "No" unless the action is harmless

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.message, id="message", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.t("dialog.yes") + " (y)", id="yes", variant="warning")
                yield Button(self.t("dialog.no") + " (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.yes_first else "#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def action_cancel(self) -> None:
        self.dismiss(False)
