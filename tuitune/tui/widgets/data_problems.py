"""Everything wrong with a dataset, one problem per line; enter jumps to that line's row."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuitune.tui.i18n import t


class DataProblemsList(OptionList):
    DEFAULT_CSS = """
    DataProblemsList { height: 1fr; border: none; padding: 0; }
    """

    class JumpTo(Message):
        def __init__(self, line: int, file: str | None) -> None:
            super().__init__()
            self.line = line
            self.file = file

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.problems: list[Any] = []

    def show(self, problems: list[Any], note: str = "") -> None:
        """`problems`: core DataProblems; `note`: a last line such as "still checking…"."""
        highlighted = self.highlighted
        self.problems = list(problems)
        self.clear_options()
        if not problems:
            self.add_option(Option(Content.styled(note or t("problems.none", self.lang), "$text-success"), disabled=True))
            return
        for i, p in enumerate(problems):
            self.add_option(Option(str(p), id=str(i), disabled=p.line is None))
        if note:
            self.add_option(Option(Content.styled(note, "$text-muted"), disabled=True))
        self.highlighted = highlighted if highlighted is not None and highlighted < len(problems) else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        p = self.problems[int(event.option.id or 0)]
        if p.line is not None:
            self.post_message(self.JumpTo(p.line, p.file))
