"""The conversation: your messages and the model's replies, which grow as tokens arrive. In
side-by-side mode a prompt gets two replies in columns, base and tuned."""

from __future__ import annotations

from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from tuitune.tui.i18n import t


class Reply(Static):
    """One answer being written: `text` holds what has arrived so far."""

    DEFAULT_CSS = """
    Reply { height: auto; padding: 0 1; }
    """

    def __init__(self, who: str, classes: str = "") -> None:
        super().__init__("", markup=False, classes=classes)
        self.who = who
        self.text = ""
        self.finished = False

    def show(self, text: str, finished: bool = False, suffix: str = "") -> None:
        self.text = text
        self.finished = finished
        self.update(text + ("" if finished else " ▌") + suffix)


class ChatLog(VerticalScroll):
    DEFAULT_CSS = """
    ChatLog { height: 1fr; padding: 0 1; }
    ChatLog .who { height: 1; text-style: bold; margin-top: 1; }
    ChatLog .who-you { color: $text-accent; }
    ChatLog .who-model { color: $text-success; }
    ChatLog .message { height: auto; padding: 0 1; }
    ChatLog .pair { height: auto; }
    ChatLog .pair > Vertical { width: 1fr; height: auto; }
    ChatLog .pair > Vertical:first-of-type { border-right: solid $primary-darken-2; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.can_focus = False

    def add_user(self, text: str) -> None:
        self.mount(Static(t("chat.you", self.lang), classes="who who-you", markup=False))
        self.mount(Static(text, classes="message", markup=False))
        self.scroll_end(animate=False)

    def add_reply(self, label: str) -> Reply:
        reply = Reply("tuned")
        self.mount(Static(label, classes="who who-model", markup=False))
        self.mount(reply)
        self.scroll_end(animate=False)
        return reply

    def add_pair(self) -> tuple[Reply, Reply]:
        """Two replies side by side: (base, tuned)."""
        base, tuned = Reply("base"), Reply("tuned")
        columns = []
        for who, reply in (("base", base), ("tuned", tuned)):
            columns.append(Vertical(Static(t(f"chat.{who}", self.lang), classes="who who-model", markup=False), reply))
        self.mount(Horizontal(*columns, classes="pair"))
        self.scroll_end(animate=False)
        return base, tuned

    def show_last_pair_from_its_start(self) -> None:
        """Once both answers of a side-by-side pair are in: when the pair is taller than the view, show
        its first lines (the two answers' beginnings side by side) instead of the longer one's end."""
        pairs = self.query(".pair")
        if pairs and pairs.last().outer_size.height > self.scrollable_content_region.height:
            self.scroll_to_widget(pairs.last(), animate=False, top=True)

    def clear(self) -> None:
        self.remove_children()
