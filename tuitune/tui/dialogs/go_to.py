"""ctrl+g: the modes as a short list; a digit or enter picks one. For terminals that keep the F-keys."""

from __future__ import annotations

from rich.cells import set_cell_size
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuitune.tui.dialogs.base import Dialog
from tuitune.tui.screens import MODES


class GoToDialog(Dialog[str | None]):
    DEFAULT_CSS = """
    GoToDialog > #box { width: 44; }
    GoToDialog OptionList, GoToDialog OptionList:focus { height: auto; border: none; padding: 0; }
    """
    BINDINGS = [Binding(m.digit, f"pick('{m.name}')", show=False) for m in MODES]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.t("goto.title"), classes="dialog-title", markup=False)
            yield OptionList(
                *[
                    Option(
                        f"{m.digit}  {set_cell_size(self.t(f'mode.{m.name}.title'), 20)} {m.key.upper()}",
                        id=m.name,
                    )
                    for m in MODES
                ]
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = next(i for i, m in enumerate(MODES) if m.name == self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_pick(self, mode: str) -> None:
        self.dismiss(mode)
