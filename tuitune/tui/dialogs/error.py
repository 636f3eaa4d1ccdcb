"""An error: what went wrong, a hint when there is one, and the technical details folded away."""

from __future__ import annotations

import traceback

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Collapsible, Static

from tuitune.tui.dialogs.base import Dialog


class ErrorDialog(Dialog[None]):
    DEFAULT_CSS = """
    ErrorDialog > #box { border: round $error; }
    ErrorDialog .dialog-title { color: $text-error; }
    ErrorDialog #details-text { color: $text-muted; }
    """

    def __init__(self, title: str, message: str, hint: str = "", details: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.hint = hint
        self.details = details

    @classmethod
    def from_exception(cls, error: BaseException, lang: str = "en") -> ErrorDialog:
        """A UserError shows its message and hint; anything else also carries its traceback."""
        from tuitune.core.errors import UserError
        from tuitune.tui.i18n import t

        if isinstance(error, UserError):
            return cls(t("dialog.error", lang), error.message, error.hint)
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return cls(t("dialog.error", lang), f"{type(error).__name__}: {error}", details=details)

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.message, id="message", markup=False)
                if self.hint:
                    yield Static(self.t("dialog.hint", hint=self.hint), id="hint", markup=False)
                if self.details:
                    with Collapsible(title=self.t("dialog.details")):
                        yield Static(self.details, id="details-text", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.t("dialog.ok"), id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#ok", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
