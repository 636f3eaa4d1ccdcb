"""The recipe's problems, one per line; choosing one moves the focus to its field."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuitune.core.recipe import FIELDS, Problem
from tuitune.tui.i18n import t


class ProblemsList(OptionList):
    DEFAULT_CSS = """
    ProblemsList {
        height: auto;
        max-height: 8;
        border: none;
        padding: 0;
        background: transparent;
        color: $text-error;
        &.-empty { color: $text-success; }
    }
    """

    class JumpTo(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self._shown: list[str] | None = None

    def show_problems(self, problems: list[Problem]) -> None:
        shown = [p.format() for p in problems]
        if shown == self._shown:  # rebuilding costs a layout pass on every keystroke
            return
        self._shown = shown
        self.clear_options()
        self.set_class(not problems, "-empty")
        if not problems:
            self.add_option(Option(t("problems.none", self.lang), disabled=True))
            return
        for i, p in enumerate(problems):
            # Only keys that are form fields can be jumped to; cross-field problems name one of them.
            target = p.key if p.key in FIELDS else ""
            self.add_option(Option(p.format(), id=f"{i}:{target}"))
        self.highlighted = 0  # so enter jumps to the first problem straight away

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        key = (event.option.id or "").split(":", 1)[-1]
        if key:
            self.post_message(self.JumpTo(key))
