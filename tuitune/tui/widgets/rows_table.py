"""A page of dataset rows: line, the turns (or the text) and each row's problems. n / p turn the page;
enter opens the row as the model reads it."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tuitune.tui.i18n import localize_bindings, t

PAGE_SIZE = 100


def one_line(text: Any, width: int) -> str:
    """Whitespace folded to single spaces and cut to `width` with an ellipsis (a huge text is cut
    before it is folded, so a 50 MB row costs no more than a short one)."""
    flat = " ".join(str(text)[: width * 4].split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def first_turns(messages: list[dict[str, Any]], lang: str = "en") -> tuple[str, str, int]:
    """(first user message, first assistant turn: its reply or the tools it calls, turns without
    system) of a chat example."""
    from tuitune.core.data.tool_calls import call_summary

    user = next((m["content"] for m in messages if m["role"] == "user"), "")
    first = next((m for m in messages if m["role"] == "assistant"), None)
    reply = ""
    if first is not None:
        calls = " ".join(call_summary(c) for c in first.get("tool_calls") or ())
        reply = " ".join(p for p in (first["content"], t("data.tool_calls", lang, calls=calls) if calls else "") if p)
    return user, reply, sum(m["role"] != "system" for m in messages)


def raw_record(record: Any) -> str:
    """A record as read, for rows that could not be used (binary values and the like described)."""
    from tuitune.core.data.raw import shown_value

    return json.dumps(shown_value(record), ensure_ascii=False) if record else ""


class RowsTable(DataTable):
    DEFAULT_CSS = """
    RowsTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("n", "page(1)", "data.next_page"),
        Binding("p", "page(-1)", "data.prev_page"),
    ]

    class PageRequested(Message):
        def __init__(self, delta: int) -> None:
            super().__init__()
            self.delta = delta

    class Opened(Message):
        """Enter on a row: show it rendered."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index  # in the page

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.lang = lang
        self.page: Any = None  # core DataPage shown
        localize_bindings(self, lang)

    def show(self, page: Any, cursor: int = 0) -> None:
        self.page = page
        self.clear(columns=True)
        width = max(40, self.size.width or self.app.size.width)
        text = page.format == "text"
        any_problem = any(row.problems for row in page.rows)
        problems_w = (18 if width < 100 else 30) if any_problem else 8
        line_w = max(4, len(str(page.rows[-1].line)) if page.rows else 4)
        self.add_column(t("data.col_line", self.lang), key="line", width=line_w)
        # Each column adds 2 cells of padding; what remains is shared by the text columns.
        rest = width - line_w - problems_w - (4 if text else 5) * 2 - 6
        if text:
            self.add_column(t("data.col_text", self.lang), key="text", width=max(10, rest))
            self.add_column(t("data.col_chars", self.lang), key="chars", width=6)
        else:
            self.add_column(t("data.col_user", self.lang), key="user", width=max(8, rest // 2))
            self.add_column(t("data.col_assistant", self.lang), key="assistant", width=max(8, rest - rest // 2))
            self.add_column(t("data.col_turns", self.lang), key="turns", width=5)
        self.add_column(t("data.col_problems", self.lang), key="problems", width=problems_w)
        for i, row in enumerate(page.rows):
            self.add_row(*self._cells(row, text, width), key=str(i))
        if page.rows:
            self.move_cursor(row=max(0, min(cursor, len(page.rows) - 1)), animate=False)

    def _cells(self, row: Any, text: bool, width: int) -> list[Any]:
        where = f"{row.file}:{row.line}" if row.file else str(row.line)
        note = Text(one_line("; ".join(p.message for p in row.problems), 200), style="bold red" if row.problems else "")
        ex = row.example
        if text:
            body = ex.text if ex is not None and ex.text is not None else raw_record(row.record)
            return [where, one_line(body or "", 200), str(len(ex.text)) if ex and ex.text else "", note]
        if ex is not None and ex.messages:
            user, reply, turns = first_turns(ex.messages, self.lang)
            return [where, one_line(user, 200), one_line(reply, 200), str(turns), note]
        raw = raw_record(row.record)
        return [where, Text(one_line(raw, 200), style="dim"), "", "", note]

    def action_page(self, delta: int) -> None:
        self.post_message(self.PageRequested(delta))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Opened(int(str(event.row_key.value))))
