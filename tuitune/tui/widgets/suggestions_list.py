"""The planner's suggestions: concrete changes that would make the run fit, each with the estimate it
would give. Enter on one applies it to the what-if settings."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tuitune.core.units import format_bytes
from tuitune.tui.i18n import t

VERDICT_STYLE = {"fits": "$text-success", "tight": "$text-warning", "does not fit": "$text-error"}


class SuggestionsList(OptionList):
    DEFAULT_CSS = """
    SuggestionsList { height: auto; max-height: 12; border: none; padding: 0; background: transparent; }
    """

    class Chosen(Message):
        def __init__(self, changes: dict[str, Any]) -> None:
            super().__init__()
            self.changes = changes

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.suggestions: list[Any] = []

    def show(self, suggestions: list[Any], verdict: str) -> None:
        self.suggestions = list(suggestions)
        self.clear_options()
        if not suggestions:
            key = "hw.nothing_to_change" if verdict in ("fits",) else "hw.no_suggestions"
            self.add_option(Option(Content.styled(t(key, self.lang), "$text-muted"), disabled=True))
            return
        for i, s in enumerate(suggestions):
            prompt = Content.assemble(
                "• ",
                s.text,
                " → ",
                (f"{format_bytes(s.total_bytes)}, {t('verdict.' + s.verdict, self.lang)}", VERDICT_STYLE.get(s.verdict, "")),
            )
            self.add_option(Option(prompt, id=str(i), disabled=not s.changes))
        self.highlighted = 0 if suggestions[0].changes else None  # enter applies the first at once

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        s = self.suggestions[int(event.option.id or 0)]
        if s.changes:
            self.post_message(self.Chosen(dict(s.changes)))
