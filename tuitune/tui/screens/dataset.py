"""Dataset: open a file, check its format and columns, page through its rows, see one row as the model
reads it (trained tokens coloured), token lengths against cutoff_len, and every problem by line.

Everything is read in workers, so a million-row file shows its first page at once while its rows
are counted and checked in the background (cancelled when another file is opened). The file, format
and columns start from the current recipe; ctrl+r writes them back. The tokenizer (never the
weights) of the recipe's model renders rows and measures lengths.

A LLaMA-Factory data folder lists its dataset_info.json entries to pick from; a .txt source shows
how it is split into examples (data.text_split). All data work is core's, called from the workers
in dataset_work.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Input, Static, TabbedContent, TabPane

from tuitune.core.recipe import FIELDS, Recipe
from tuitune.tui.i18n import localize_bindings
from tuitune.tui.i18n_dataset import note_text
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.screens.dataset_work import DatasetWork
from tuitune.tui.widgets.data_problems import DataProblemsList
from tuitune.tui.widgets.dataset_entries import DatasetEntries
from tuitune.tui.widgets.field_row import FieldRow
from tuitune.tui.widgets.length_histogram import LengthHistogram
from tuitune.tui.widgets.masked_row import MaskedRow
from tuitune.tui.widgets.rows_table import PAGE_SIZE, RowsTable
from tuitune.tui.widgets.suggesters import PathSuggester

DATA_KEYS = ("data.path", "data.format", "data.columns", "data.dataset", "data.text_split")
TABS = ("rows", "row", "lengths", "problems")


class RowView(VerticalScroll):
    """The rendered row, scrollable; n / p step through the rows of the page, escape goes back."""

    BINDINGS = [
        Binding("n", "screen.step_row(1)", "data.next_row"),
        Binding("p", "screen.step_row(-1)", "data.prev_row"),
        Binding("escape", "screen.back_to_rows", "data.back"),
    ]

    def on_mount(self) -> None:
        localize_bindings(self, getattr(self.app, "lang", "en"))

# What else of the recipe changes what this screen shows (lengths and the rendered row).
RENDER_KEYS = (
    "model.name_or_path", "data.cutoff_len", "data.template", "data.system", "data.train_on_prompt", "data.chunk_long_text",
)
DEBOUNCE_S = 0.4  # a path being typed is opened once the typing pauses
class DatasetScreen(DatasetWork, TuituneScreen):
    MODE = "dataset"
    AUTO_FOCUS = "#rows-table"  # the recipe's dataset is open already: arrows and enter work at once
    BINDINGS = [
        Binding("ctrl+l", "focus_path", "data.file"),  # as a browser's ctrl+l goes to the address
        Binding("ctrl+o", "browse", "data.browse"),
        Binding("ctrl+r", "use_in_recipe", "hw.use"),
        # The tab titles carry their digit; an input that has the focus takes digits first.
        *(Binding(str(i), f"show_tab('{tab}')", tab, show=False) for i, tab in enumerate(TABS, 1)),
    ]
    DEFAULT_CSS = """
    DatasetScreen {
        #ds-top { height: auto; }
        #ds-top FieldRow { grid-columns: 16 1fr; max-width: 100%; }
        #ds-top FieldRow .field-error { padding-left: 16; }
        #ds-options { height: auto; }
        #ds-options FieldRow { width: 1fr; }
        #ds-options #field-data-format { width: 38; }
        #ds-options #field-data-text_split { width: 38; display: none; }
        #ds-options.-text #field-data-text_split { display: block; }
        #ds-options.-text #field-data-columns { display: none; }
        #ds-status { height: auto; max-height: 2; padding: 0 1; background: $boost; color: $text-muted; }
        #ds-status.-error { color: $text-error; }
        #ds-tabs { height: 1fr; }
        #ds-tabs TabPane { padding: 0; }
        .pane-hint { height: 1; padding: 0 1; color: $text-muted; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.edit: Recipe = self.app.recipe.copy()  # the file, format and columns tried here
        self._seen_version = self.app.recipe_version
        self.source = 0  # bumped each time another file (or format, columns) is opened
        self._cancel: list[threading.Event] = []
        self._debounce: Timer | None = None
        self.page: Any = None  # core DataPage shown
        self.rows: int | None = None  # exact row count, once counted
        self.checked_rows = 0  # rows the background check has read so far
        self.scan: Any = None  # core DataScan, once the whole file is checked
        self.stats: Any = None  # core LengthStats of the first rows
        self.render_problems: list[Any] = []  # rows the chat template could not render, rows far too long
        self.notes: list[str] = []  # how the rows were read and rendered (core's notes)
        self.error = ""  # why the file cannot be read
        self._row_request = 0
        self.opened_row: Any = None  # the PageRow shown in the Row tab
        self._tokenizers: dict[str, Any] = {}
        self._tokenizer_lock = threading.Lock()

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        lang = self.lang
        with Vertical(id="ds-top"):
            yield FieldRow(FIELDS["data.path"], self.edit.data.path, lang)
            yield DatasetEntries(lang, id="ds-entries")
            with Horizontal(id="ds-options"):
                yield FieldRow(FIELDS["data.format"], self.edit.data.format, lang)
                yield FieldRow(FIELDS["data.columns"], self.edit.data.columns, lang)
                yield FieldRow(FIELDS["data.text_split"], self.edit.data.text_split, lang)
        yield Static("", id="ds-status", markup=False)
        with TabbedContent(id="ds-tabs", initial="rows"):
            with TabPane("1 " + self.t("data.tab_rows"), id="rows"):
                yield Static("", id="rows-hint", classes="pane-hint", markup=False)
                yield RowsTable(lang, id="rows-table")
            with TabPane("2 " + self.t("data.tab_row"), id="row"):
                with RowView(id="row-scroll"):
                    yield MaskedRow(lang, id="masked")
            with TabPane("3 " + self.t("data.tab_lengths"), id="lengths"):
                with VerticalScroll():
                    yield LengthHistogram(lang, id="histogram")
            with TabPane("4 " + self.t("data.tab_problems"), id="problems"):
                yield Static(self.t("data.problems_hint"), classes="pane-hint", markup=False)
                yield DataProblemsList(lang, id="data-problems")

    @property
    def table(self) -> RowsTable:
        return self.query_one(RowsTable)

    def field(self, key: str) -> FieldRow:
        return self.query_one("#field-" + key.replace(".", "-"), FieldRow)

    def on_mount(self) -> None:
        path_input = self.field("data.path").editor
        assert isinstance(path_input, Input)
        path_input.suggester = PathSuggester(suffixes=(".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".txt"))
        columns = self.field("data.columns").editor
        assert isinstance(columns, Input)
        columns.placeholder = self.t("data.columns_placeholder")
        self.open_source()

    def on_unmount(self) -> None:
        self._stop_background()

    def on_screen_resume(self) -> None:
        if self.app.recipe_version == self._seen_version:
            return
        self._seen_version = self.app.recipe_version
        before = self.edit
        self.edit = self.app.recipe.copy()
        for key in DATA_KEYS:
            if key != "data.dataset":  # the entries list follows the page (below)
                self.field(key).set_value(self.edit.get(key))
        if any(before.get(k) != self.edit.get(k) for k in DATA_KEYS + RENDER_KEYS):
            self.open_source()
        else:
            self._show_status()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand(self.t("data.browse"), self.t("data.browse_help"), self.action_browse)
        yield PaletteCommand(self.t("hw.use"), self.t("data.use_help"), self.action_use_in_recipe)

    # ------------------------------------------------------------------ what is open

    @property
    def path(self) -> str:
        return self.edit.resolve_path(self.edit.data.path)

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        event.stop()
        if event.problem is not None:
            return
        self.edit.set(event.key, event.value)
        if event.key == "data.path":
            self.edit.data.dataset = ""  # an entry belongs to the dataset_info.json it came from
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if event.key in ("data.format", "data.text_split"):  # a choice, not typing: open at once
            self.open_source()
        else:
            self._debounce = self.set_timer(DEBOUNCE_S, self._opened_after_typing)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the file or columns field: open now and go to the rows."""
        event.stop()
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
            self.open_source()
        self.table.focus()

    def on_dataset_entries_chosen(self, event: DatasetEntries.Chosen) -> None:
        if event.name != self.edit.data.dataset:
            self.edit.data.dataset = event.name
            self.open_source()
        self.table.focus()  # as after typing a path: the rows answer the keys

    def _opened_after_typing(self) -> None:
        self._debounce = None
        self.open_source()

    def open_source(self, offset: int = 0, cursor: int = 0) -> None:
        """Read the first page of what the fields name, and start counting, checking and measuring."""
        self._stop_background()
        self.source += 1
        self.page, self.rows, self.scan, self.stats, self.error = None, None, None, None, ""
        self.checked_rows = 0
        self.render_problems, self.notes = [], []
        self._row_request += 1  # a row being rendered belongs to the old file
        self.query_one(MaskedRow).show_message(self.t("data.row_none"))
        self.query_one(LengthHistogram).show_message(self.t("data.stats_waiting"))
        self.query_one(DataProblemsList).show([], self.t("data.checking_short"))
        recipe = self.edit.copy()
        source = self.source
        count_stop, scan_stop = threading.Event(), threading.Event()
        self._cancel = [count_stop, scan_stop]
        self._read_page(source, recipe, offset, cursor)
        self._count(source, recipe, count_stop)
        self._check(source, recipe, scan_stop)
        self._measure_lengths(source, recipe)
        self._show_status()

    def _stop_background(self) -> None:
        for event in self._cancel:
            event.set()
        self._cancel = []

    @property
    def is_settled(self) -> bool:
        """Everything about the open file has arrived (tests and screenshots wait on it)."""
        return self._debounce is None and (bool(self.error) or (
            self.page is not None and self.rows is not None and self.scan is not None and self.stats is not None
        ))

    # ------------------------------------------------------------------ answers (event loop)

    def on_dataset_screen_paged(self, event: DatasetWork.Paged) -> None:
        if event.source != self.source:
            return
        self.query_one(DatasetEntries).show(event.entries, self.edit.data.dataset)
        text_source = event.page is not None and any(n.startswith("plain text:") for n in event.page.notes)
        self.query_one("#ds-options").set_class(text_source, "-text")
        if event.error:
            self.error = event.error
            self._stop_background()
            self.table.clear(columns=True)
            self.query_one("#rows-hint", Static).update("")
            self.query_one(LengthHistogram).show_message(event.error)
            self.query_one(DataProblemsList).show([], "")
        else:
            self.page = event.page
            self.table.show(event.page, event.cursor)
            self._show_rows_hint()
        self._show_status()

    def on_dataset_screen_counted(self, event: DatasetWork.Counted) -> None:
        if event.source == self.source and event.rows is not None:
            self.rows = event.rows
            self._show_rows_hint()
            self._show_status()

    def on_dataset_screen_checking(self, event: DatasetWork.Checking) -> None:
        if event.source == self.source and self.scan is None:
            self.checked_rows = event.rows
            self._show_status()

    def on_dataset_screen_scanned(self, event: DatasetWork.Scanned) -> None:
        if event.source != self.source:
            return
        if event.error:
            self.error = self.error or event.error
        else:
            self.scan = event.scan
            self.rows = event.scan.rows if self.rows is None else self.rows
        self._show_problems()
        self._show_status()

    def on_dataset_screen_measured(self, event: DatasetWork.Measured) -> None:
        if event.source != self.source:
            return
        histogram = self.query_one(LengthHistogram)
        if event.error:
            self.stats = False  # measured, with nothing to show
            histogram.show_message(self.t("data.stats_failed", error=event.error))
        else:
            self.stats = event.stats
            self.render_problems, self.notes = event.problems, event.notes
            note = self.t("data.stats_note", rows=event.stats.rows, model=self.edit.model.name_or_path)
            histogram.show(event.stats, "\n".join([note] + [note_text(n, self.lang) for n in event.notes]))
            self._show_problems()
        self._show_status()

    def _show_problems(self) -> None:
        found = list(self.scan.problems) if self.scan is not None else []
        seen = {(p.file, p.line, p.message) for p in found}
        found += [p for p in self.render_problems if (p.file, p.line, p.message) not in seen]
        found.sort(key=lambda p: (p.file or "", p.line or 0))
        note = "" if self.scan is not None else self.t("data.checking_short")
        self.query_one(DataProblemsList).show(found, note)

    def _show_rows_hint(self) -> None:
        page = self.page
        if page is None:
            return
        total = self.rows if self.rows is not None else page.total_rows
        approx = "" if self.rows is not None or page.total_exact else "~"
        first = page.offset + 1 if page.rows else 0
        self.query_one("#rows-hint", Static).update(
            self.t("data.rows_hint", first=first, last=page.offset + len(page.rows), total=f"{approx}{total:,}")
        )

    def _show_status(self) -> None:
        status = self.query_one("#ds-status", Static)
        status.set_class(bool(self.error), "-error")
        if self.error:
            status.update(self.error)
            return
        parts = []
        page = self.page
        if page is None:
            parts.append(self.t("data.reading"))
        else:
            chosen = self.edit.data.format != "auto"
            if page.dataset:
                parts.append(self.t("data.entry_status", name=page.dataset))
            key = "data.format_chosen" if chosen else "data.format_entry" if page.dataset else "data.format_detected"
            parts.append(self.t(key, format=page.format))
            parts += [note_text(n, self.lang).split(" (data.")[0] for n in page.notes]
        if self.rows is not None:
            parts.append(self.t("data.rows", n=f"{self.rows:,}"))
        elif page is not None:
            parts.append(self.t("data.rows_about", n=f"{page.total_rows:,}"))
        if self.scan is not None:
            n = len(self.scan.problems)
            parts.append(self.t("data.usable", n=f"{self.scan.usable:,}"))
            parts.append(self.t("data.problems", n=n) if n else self.t("problems.none"))
        elif page is not None:
            parts.append(self.t("data.checking", n=f"{self.checked_rows:,}"))
        if page is not None and page.columns:
            parts.append(self.t("data.columns", columns=", ".join(page.columns)))
        if self._changes():
            parts.append(self.t("data.pending"))
        status.update("  ·  ".join(parts))

    # ------------------------------------------------------------------ paging, rows, jumping

    def on_rows_table_page_requested(self, event: RowsTable.PageRequested) -> None:
        page = self.page
        if page is None:
            return
        if event.delta > 0 and page.at_end:
            self.notify(self.t("data.last_page"))
            return
        if event.delta < 0 and page.offset == 0:
            self.notify(self.t("data.first_page"))
            return
        offset = max(0, page.offset + event.delta * PAGE_SIZE)
        self._read_page(self.source, self.edit.copy(), offset, 0 if event.delta > 0 else PAGE_SIZE - 1)

    def on_rows_table_opened(self, event: RowsTable.Opened) -> None:
        if self.page is None or not 0 <= event.index < len(self.page.rows):
            return
        self.open_row(self.page.rows[event.index])

    def open_row(self, row: Any) -> None:
        """Show one row of the page rendered through the chat template, in the Row tab."""
        self._row_request += 1
        masked = self.query_one(MaskedRow)
        where = self.t("data.row_where", line=f"{row.file}:{row.line}" if row.file else row.line)
        self.query_one(TabbedContent).active = "row"
        self.opened_row = row
        view = self.query_one(RowView)
        view.scroll_home(animate=False)
        view.focus()
        if row.example is None:
            lines = [where] + [p.message for p in row.problems]
            masked.show_message("\n".join(lines), "$text-error")
            return
        masked.show_message(where + "\n" + self.t("data.rendering", model=self.edit.model.name_or_path))
        self._render_row(self._row_request, where, row.example, self.edit.copy())

    def action_step_row(self, delta: int) -> None:
        """The next or previous row of the page, rendered (the table's cursor follows)."""
        if self.page is None or self.opened_row not in self.page.rows:
            return
        index = self.page.rows.index(self.opened_row) + delta
        if not 0 <= index < len(self.page.rows):
            self.notify(self.t("data.page_edge"))
            return
        self.table.move_cursor(row=index, animate=False)
        self.open_row(self.page.rows[index])

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        focus = {"rows": RowsTable, "row": RowView, "problems": DataProblemsList}.get(tab)
        if focus is not None:
            self.query_one(focus).focus()

    def action_back_to_rows(self) -> None:
        self.query_one(TabbedContent).active = "rows"
        self.table.focus()

    def on_dataset_screen_rendered(self, event: DatasetWork.Rendered) -> None:
        if event.request != self._row_request:
            return
        masked = self.query_one(MaskedRow)
        if event.error:
            masked.show_message(event.where + "\n" + self.t("data.render_failed", error=event.error), "$text-error")
        else:
            masked.show_row(event.where, event.preview, event.model)

    def on_data_problems_list_jump_to(self, event: DataProblemsList.JumpTo) -> None:
        self._locate(self.source, self.edit.copy(), event.line, event.file)

    def on_dataset_screen_located(self, event: DatasetWork.Located) -> None:
        if event.source != self.source:
            return
        if event.row is None:
            self.notify(self.t("data.line_missing", line=event.line), severity="warning")
            return
        offset = event.row // PAGE_SIZE * PAGE_SIZE
        self.query_one(TabbedContent).active = "rows"
        self.table.focus()
        if self.page is not None and self.page.offset == offset:
            self.table.move_cursor(row=event.row - offset, animate=False)
        else:
            self._read_page(self.source, self.edit.copy(), offset, event.row - offset)

    # ------------------------------------------------------------------ browse, use in recipe

    @work(exclusive=True, exit_on_error=False, group="dataset-dialog")
    async def action_browse(self) -> None:
        from tuitune.tui.dialogs.open_data import OpenDataDialog

        current = Path(self.path).expanduser()
        start = current.parent if current.parent.is_dir() else Path(".")
        chosen = await self.app.push_screen_wait(OpenDataDialog(start))
        if chosen is not None:
            editor = self.field("data.path").editor
            assert isinstance(editor, Input)
            editor.value = str(chosen)  # the row reports the edit; the file opens after the debounce

    def action_focus_path(self) -> None:
        editor = self.field("data.path").editor
        assert isinstance(editor, Input)
        editor.focus()
        editor.select_all()  # typing replaces the path; arrows keep it

    def _changes(self) -> dict[str, Any]:
        return {k: self.edit.get(k) for k in DATA_KEYS if self.edit.get(k) != self.app.recipe.get(k)}

    def action_use_in_recipe(self) -> None:
        if self.write_into_recipe(self._changes()):
            self._show_status()
