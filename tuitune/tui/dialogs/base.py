"""Shared look of the dialogs: a bordered box in the middle of the screen, escape closes it."""

from __future__ import annotations

from typing import TypeVar

from textual.binding import Binding
from textual.screen import ModalScreen

from tuitune.tui.i18n import Translated

Answer = TypeVar("Answer")


class Dialog(Translated, ModalScreen[Answer]):
    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
        & > #box {
            width: 72;
            max-width: 95%;
            height: auto;
            max-height: 90%;
            border: round $accent;
            background: $surface;
            padding: 0 1;
        }
        & .dialog-title { text-style: bold; color: $text-accent; width: 1fr; }
        & .dialog-buttons { height: auto; align-horizontal: right; margin-top: 1; }
        & .dialog-buttons Button { margin-left: 1; min-width: 10; }
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)
