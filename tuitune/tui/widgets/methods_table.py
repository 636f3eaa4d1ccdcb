"""The methods table: full, freeze, LoRA, QLoRA 8-bit and 4-bit for the same model and settings,
each with its training peak and whether it fits. Enter on a row uses that method."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from tuitune.core.units import format_bytes, format_count
from tuitune.tui.i18n import t

VERDICT_COLOUR = {"fits": "text-success", "tight": "text-warning", "does not fit": "text-error"}


class MethodsTable(DataTable):
    DEFAULT_CSS = """
    MethodsTable { height: auto; max-height: 8; }
    """

    class Chosen(Message):
        def __init__(self, method: str, bits: int) -> None:
            super().__init__()
            self.method = method
            self.bits = bits

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self.lang = lang
        self._rows: dict[str, Any] = {}

    WIDE = 50  # room for the trainable-parameters column

    def _columns(self, wide: bool) -> None:
        keys = ("method", "trainable", "peak", "verdict") if wide else ("method", "peak", "verdict")
        if [str(k.value) for k in self.columns] != list(keys):
            self.clear(columns=True)
            for key in keys:
                self.add_column(t("hw.col_" + key, self.lang), key=key)

    def show(self, methods: list[Any], current: str) -> None:
        """`methods`: core MethodFit rows; `current`: the label of the method the controls use."""
        self._rows = {m.label: m for m in methods}
        labels = [m.label for m in methods]
        row = labels.index(current) if current in labels else self.cursor_row
        self.clear()
        room = self.parent.size.width if self.parent is not None else 0
        wide = room >= self.WIDE
        self._columns(wide)
        variables = self.app.theme_variables
        for m in methods:
            colour = variables.get(VERDICT_COLOUR.get(m.verdict, "text-muted"), "")
            mark = "▸ " if m.label == current else "  "
            cells = [Text(mark + m.label, style="bold" if m.label == current else "")]
            if wide:
                cells.append(Text(format_count(m.trainable_params), justify="right"))
            cells.append(Text(format_bytes(m.total_bytes), justify="right"))
            cells.append(Text(t("verdict." + m.verdict, self.lang), style=f"bold {colour}".strip()))
            self.add_row(*cells, key=m.label)
        if methods:
            self.move_cursor(row=min(row, len(methods) - 1), animate=False)

    def verdicts(self) -> dict[str, str]:
        """method label -> verdict, as shown (tests read it)."""
        return {label: m.verdict for label, m in self._rows.items()}

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        m = self._rows.get(str(event.row_key.value))
        if m is not None:
            self.post_message(self.Chosen(m.method, m.bits))
