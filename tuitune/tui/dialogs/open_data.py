"""Browse for a dataset: a folder tree showing only folders and the files the data layer reads."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DirectoryTree, Static

from tuitune.tui.dialogs.base import Dialog

DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq", ".txt", ".text")


class DataTree(DirectoryTree):
    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for p in paths:
            if p.name.startswith(".") or p.name in ("__pycache__", "node_modules"):
                continue
            if p.is_dir() or p.suffix.lower() in DATA_SUFFIXES:
                yield p


class OpenDataDialog(Dialog[Path | None]):
    DEFAULT_CSS = """
    OpenDataDialog > #box { height: 80%; }
    OpenDataDialog DataTree { height: 1fr; background: $surface; }
    OpenDataDialog .dialog-hint { color: $text-muted; }
    """

    def __init__(self, start: Path) -> None:
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.t("data.browse_title"), classes="dialog-title", markup=False)
            yield Static(self.t("data.browse_hint"), classes="dialog-hint", markup=False)
            yield DataTree(self.start, id="tree")

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        path = event.path
        try:
            path = path.resolve().relative_to(Path.cwd())  # shorter, and how a recipe would write it
        except ValueError:
            pass
        self.dismiss(path)
