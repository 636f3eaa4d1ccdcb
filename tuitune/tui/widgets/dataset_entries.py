"""The entries of a LLaMA-Factory dataset_info.json to pick from: usable ones with their format and
file, refused ones with the reason (choosing one shows that reason as the screen's error)."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Label, Select

from tuitune.core.recipe import FIELDS
from tuitune.tui.i18n import t


def entry_label(entry: Any, lang: str) -> str:
    if entry.usable:
        return f"{entry.name}  ({entry.formatting}, {entry.file_name})"
    return f"{entry.name}  " + t("data.entry_refused", lang, reason=entry.reason)


class DatasetEntries(Widget):
    DEFAULT_CSS = """
    DatasetEntries {
        layout: grid; grid-size: 2; grid-columns: 16 1fr; height: auto; padding: 0 1; display: none;
        & Label { color: $text-muted; }
        &:focus-within { background: $boost; }
        &:focus-within Label { color: $text-accent; text-style: bold; }
    }
    DatasetEntries.-shown { display: block; }
    """

    class Chosen(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.entries: list[Any] = []  # core EntrySummary

    def compose(self) -> ComposeResult:
        yield Label(FIELDS["data.dataset"].title(self.lang), markup=False)
        yield Select([], prompt=t("data.entry_prompt", self.lang), allow_blank=True, compact=True)

    def show(self, entries: list[Any] | None, chosen: str) -> None:
        """The entries of the open dataset_info.json (None: the source is not one; hidden)."""
        self.set_class(entries is not None, "-shown")
        if entries is None or [e.name for e in entries] == [e.name for e in self.entries]:
            self.entries = entries or []
            self._select_quietly(chosen)
            return
        self.entries = entries
        select = self.query_one(Select)
        with self.prevent(Select.Changed):
            select.set_options([(entry_label(e, self.lang), e.name) for e in entries])
        self._select_quietly(chosen)

    def _select_quietly(self, chosen: str) -> None:
        select = self.query_one(Select)
        with self.prevent(Select.Changed):
            select.value = chosen if chosen in [e.name for e in self.entries] else Select.NULL

    @on(Select.Changed)
    def _chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL:
            self.post_message(self.Chosen(str(event.value)))
