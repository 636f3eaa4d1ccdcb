"""The Dataset screen's background work: each worker calls core with the recipe's data settings and
posts its answer as a message tagged with the source (or request) it belongs to, so answers about a
file that is no longer open are dropped.

Core calls: read_page, count_rows, scan_examples (in a child process), load_examples +
encode_examples + length_stats + long_row_problems, label_mask_preview, row_at_line, list_entries,
load_tokenizer_only.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import work
from textual.message import Message

from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.tui.widgets.rows_table import PAGE_SIZE

# Rendering and tokenizing runs at ~2,000 rows/s on one core: lengths come from the first rows.
STATS_ROWS = 2000


def source_options(recipe: Recipe) -> dict[str, str]:
    """The keywords every core read takes from the recipe besides the path: entry and text split."""
    return {"dataset": recipe.data.dataset, "text_split": recipe.data.text_split}


class DatasetWork:
    """Mixed into DatasetScreen (a Textual Screen): workers and the messages they post."""

    class Paged(Message, namespace="dataset_screen"):
        def __init__(self, source: int, page: Any = None, cursor: int = 0, error: str = "", entries: list | None = None) -> None:
            super().__init__()
            self.source, self.page, self.cursor, self.error = source, page, cursor, error
            self.entries = entries  # a LLaMA-Factory folder's entries (core EntrySummary), else None

    class Counted(Message, namespace="dataset_screen"):
        def __init__(self, source: int, rows: int | None) -> None:
            super().__init__()
            self.source, self.rows = source, rows

    class Checking(Message, namespace="dataset_screen"):
        def __init__(self, source: int, rows: int) -> None:
            super().__init__()
            self.source, self.rows = source, rows

    class Scanned(Message, namespace="dataset_screen"):
        def __init__(self, source: int, scan: Any = None, error: str = "") -> None:
            super().__init__()
            self.source, self.scan, self.error = source, scan, error

    class Measured(Message, namespace="dataset_screen"):
        def __init__(self, source: int, stats: Any = None, problems: list | None = None, error: str = "", notes: list | None = None) -> None:
            super().__init__()
            self.source, self.stats, self.problems, self.error = source, stats, problems or [], error
            self.notes = notes or []  # tools rendering, rows longer than cutoff_len

    class Rendered(Message, namespace="dataset_screen"):
        def __init__(self, request: int, where: str, preview: Any = None, model: str = "", error: str = "") -> None:
            super().__init__()
            self.request, self.where, self.preview, self.model, self.error = request, where, preview, model, error

    class Located(Message, namespace="dataset_screen"):
        def __init__(self, source: int, line: int, row: int | None) -> None:
            super().__init__()
            self.source, self.line, self.row = source, line, row

    # Provided by the screen: its tokenizer cache and lock, `t` (its strings) and `post_message`.
    _tokenizers: dict[str, Any]
    _tokenizer_lock: threading.Lock

    # ------------------------------------------------------------------ workers (threads)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-page")
    def _read_page(self, source: int, recipe: Recipe, offset: int, cursor: int) -> None:
        from tuitune.core.data import read_page
        from tuitune.core.data.dataset_info import info_file, list_entries

        d = recipe.data
        entries = None
        try:
            info = info_file(recipe.data_path)
            entries = list_entries(info) if info is not None else None
            page = read_page(recipe.data_path, d.format, d.columns, offset, PAGE_SIZE, d.split, **source_options(recipe))
        except UserError as e:
            self.post_message(self.Paged(source, error=e.message + (f" ({e.hint})" if entries and e.hint else ""), entries=entries))
            return
        self.post_message(self.Paged(source, page, cursor, entries=entries))

    @work(thread=True, exit_on_error=False, group="data-count")
    def _count(self, source: int, recipe: Recipe, stop: threading.Event) -> None:
        from tuitune.core.data import count_rows

        try:
            rows = count_rows(recipe.data_path, recipe.data.split, cancel=stop, **source_options(recipe))
        except UserError:
            return  # the page reader says what is wrong
        self.post_message(self.Counted(source, rows))

    @work(thread=True, exit_on_error=False, group="data-check")
    def _check(self, source: int, recipe: Recipe, stop: threading.Event) -> None:
        # Checking every row is a pure-Python loop (seconds for a million rows): in a child process,
        # so this process's event loop never waits for the GIL (see tui/child_process.py).
        from tuitune.core.data import scan_examples
        from tuitune.tui.child_process import run_in_child

        def progress(rows: int) -> None:
            self.post_message(self.Checking(source, rows))

        d = recipe.data
        try:
            scan = run_in_child(
                scan_examples, recipe.data_path, d.format, d.columns, d.split, progress=progress, cancel=stop,
                **source_options(recipe),
            )
        except UserError as e:
            self.post_message(self.Scanned(source, error=e.message))
            return
        if scan is not None and not scan.cancelled:
            self.post_message(self.Scanned(source, scan))

    def tokenizer(self, recipe: Recipe) -> Any:
        """The recipe model's tokenizer, loaded once (no weights); UserError when it cannot be found."""
        model = recipe.model_path
        with self._tokenizer_lock:
            if model not in self._tokenizers:
                from tuitune.core.data.tokenizer import load_tokenizer_only

                self._tokenizers[model] = load_tokenizer_only(model, recipe.model.trust_remote_code)
            return self._tokenizers[model]

    def _explain(self, error: UserError, recipe: Recipe) -> str:
        """A tokenizer that cannot be loaded: say whose, and where the model is chosen."""
        text = error.message + (f" ({error.hint})" if error.hint else "")
        if recipe.model_path not in self._tokenizers:
            text += "\n" + self.t("data.tokenizer_hint", model=recipe.model.name_or_path)
        return text

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-measure")
    def _measure_lengths(self, source: int, recipe: Recipe) -> None:
        from tuitune.core.data import chat_template_for, encode_examples, length_stats, load_examples
        from tuitune.core.data.long_rows import long_row_problems, long_rows_summary
        from tuitune.core.data.tool_rendering import tools_note

        d = recipe.data
        try:
            loaded = load_examples(recipe.data_path, d.format, d.columns, STATS_ROWS, d.split, **source_options(recipe))
            if not loaded.examples:
                self.post_message(self.Measured(source, error=self.t("data.no_usable")))
                return
            tok = self.tokenizer(recipe)
            note = tools_note(loaded.examples, tok, chat_template_for(tok, d.template)[0])
        except UserError as e:
            self.post_message(self.Measured(source, error=self._explain(e, recipe)))
            return
        encoded, problems = encode_examples(
            loaded.examples, tok, d.cutoff_len, d.train_on_prompt, d.template, d.system, chunk_long_text=d.chunk_long_text
        )
        stats = length_stats([e.full_length for e in encoded], d.cutoff_len)
        notes = [n for n in (note, long_rows_summary(encoded, d.cutoff_len)) if n]
        self.post_message(self.Measured(source, stats, problems + long_row_problems(encoded, d.cutoff_len), notes=notes))

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-render")
    def _render_row(self, request: int, where: str, example: Any, recipe: Recipe) -> None:
        from tuitune.core.data import label_mask_preview

        d = recipe.data
        try:
            tok = self.tokenizer(recipe)
            preview = label_mask_preview(example, tok, d.cutoff_len, d.train_on_prompt, d.template, d.system)
        except UserError as e:
            self.post_message(self.Rendered(request, where, error=self._explain(e, recipe)))
            return
        self.post_message(self.Rendered(request, where, preview, recipe.model.name_or_path))

    @work(thread=True, exclusive=True, exit_on_error=False, group="data-locate")
    def _locate(self, source: int, recipe: Recipe, line: int, file: str | None) -> None:
        from tuitune.core.data import row_at_line

        try:
            row = row_at_line(recipe.data_path, line, file, recipe.data.split, **source_options(recipe))
        except UserError:
            row = None
        self.post_message(self.Located(source, line, row))
