"""Every run in the runs folder, one row each: the columns of `tuitune runs` (core's list_runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from tuitune.core.events import format_duration
from tuitune.tui.i18n import localize_bindings, t

STATUS_STYLE = {
    "done": "green",
    "training": "cyan",
    "evaluating": "cyan",
    "saving": "cyan",
    "loading": "cyan",
    "starting": "cyan",
    "stopping": "yellow",
    "stopped": "yellow",
    "failed": "red",
    "crashed": "red",
    "interrupted": "red",
    "unreadable": "red",
}
COLUMNS = ("name", "status", "method", "model", "steps", "best_eval", "duration", "group")
RIGHT = {"steps", "best_eval", "duration"}


def display_path(path: str) -> str:
    """A path as short as it can be said: relative to the working folder when it lies below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def short_model(model: str, width: int = 28) -> str:
    """A model as a person names it: a folder's last part, a hub id as is; cut from the left."""
    name = Path(model).name if model.startswith(("/", ".", "~")) else model
    return name if len(name) <= width else "…" + name[-(width - 1):]


def run_cells(run: Any, marked: str | None = None) -> list[Any]:
    """One RunSummary as table cells (the marked run of a diff gets a ◆)."""
    steps = f"{run.step}/{run.max_steps}" if run.max_steps else str(run.step)
    best = f"{run.best_eval_loss:.4f}" if isinstance(run.best_eval_loss, (int, float)) else "-"
    name = ("◆ " if run.name == marked else "") + run.name
    status = Text(run.status + (" ●" if run.live else ""), style=STATUS_STYLE.get(run.status, "blue"))
    return [
        name,
        status,
        run.method,
        short_model(run.model),
        Text(steps, justify="right"),
        Text(best, justify="right"),
        Text(format_duration(run.duration_s), justify="right"),
        run.group or "",  # trained together (`tuitune train --together`)
    ]


class RunsTable(DataTable):
    DEFAULT_CSS = """
    RunsTable { height: 1fr; }
    """
    # enter selects the row (RowSelected); the screen opens that run. Shown in the footer as "Open".
    BINDINGS = [Binding("enter", "select_cursor", "runs.open")]

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.lang = lang
        self.runs: list[Any] = []
        self._shown: list[tuple] = []
        localize_bindings(self, lang)

    def on_mount(self) -> None:
        for col in COLUMNS:
            self.add_column(t(f"runs.col.{col}", self.lang), key=col)

    @property
    def current(self) -> Any | None:
        """The RunSummary under the cursor."""
        if not self.runs or self.cursor_row < 0 or self.cursor_row >= len(self.runs):
            return None
        return self.runs[self.cursor_row]

    def show_runs(self, runs: list[Any], marked: str | None = None) -> None:
        """Replace the rows, keeping the cursor on the same run; repaints only when something changed."""
        shown = [(tuple(r.to_dict().items()), r.name == marked) for r in runs]
        if shown == self._shown:
            return
        keep = self.current.name if self.current is not None else None
        self._shown = shown
        self.runs = list(runs)
        self.clear()
        for run in runs:
            self.add_row(*run_cells(run, marked), key=run.name)
        names = [r.name for r in runs]
        if keep in names:
            self.move_cursor(row=names.index(keep))
