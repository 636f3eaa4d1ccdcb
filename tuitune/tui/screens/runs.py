"""Runs: every run in the runs folder (core's list_runs, as `tuitune runs`), refreshed in the
background; open one in the Train screen, resume, stop, delete, and diff two runs' recipes.

Resume spawns `tuitune train --resume NAME --detach` in its own session, so the trainer outlives the
app; stop and delete go through core (request_stop, delete_run), which refuse a run a trainer holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from tuitune.core.errors import UserError
from tuitune.core.runs import RunDirectory, check_deletable, delete_run, list_runs
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.widgets.recipe_diff import RecipeDiff
from tuitune.tui.widgets.runs_table import RunsTable, display_path

REFRESH_S = 2.0  # status and durations of live runs move; the list is re-read this often


class RunsScreen(TuituneScreen):
    MODE = "runs"

    BINDINGS = [
        Binding("r", "resume", "runs.resume"),
        Binding("s", "stop", "runs.stop"),
        Binding("delete", "delete", "runs.delete"),
        Binding("d", "delete", "runs.delete", show=False),
        Binding("m", "mark", "runs.diff"),
        Binding("escape", "unmark", "runs.unmark", show=False),
    ]

    DEFAULT_CSS = """
    RunsScreen {
        #runs-heading { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
        #runs-table { height: 1fr; }
        #runs-detail { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
        #runs-detail.-error { color: $text-error; }
        #runs-diff-box { height: auto; max-height: 45%; border-top: solid $primary; display: none; }
        #runs-diff-box.-shown { display: block; }
        #runs-diff-title { padding: 0 1; text-style: bold; }
        #runs-diff { padding: 0 1; }
    }
    """

    class Listed(Message):
        def __init__(self, runs: list[Any], error: str = "") -> None:
            super().__init__()
            self.runs, self.error = runs, error

    class Resumed(Message):
        def __init__(self, name: str, error: UserError | None) -> None:
            super().__init__()
            self.name, self.error = name, error

    def __init__(self) -> None:
        super().__init__()
        self.listed = False  # the first list has arrived
        self.busy = 0  # actions in flight (resume, stop, delete)
        self.marked: str | None = None  # the run picked first for a diff
        self.diffed: tuple[str, str] | None = None
        self.missing: str | None = None  # the run asked for with --run, when it is not in the folder

    def compose_body(self) -> ComposeResult:
        yield Static(self.t("runs.heading", folder=self.app.runs_dir.name), id="runs-heading", markup=False)
        yield RunsTable(self.lang, id="runs-table")
        wanted = getattr(self.app, "initial_run", None)
        loading = self.t("runs.looking", name=wanted) if wanted else self.t("runs.loading")
        yield Static(loading, id="runs-detail", markup=False)
        with VerticalScroll(id="runs-diff-box"):
            yield Static("", id="runs-diff-title", markup=False)
            yield RecipeDiff(self.lang, id="runs-diff")

    def on_mount(self) -> None:
        self.query_one(RunsTable).focus()
        self.refresh_runs()
        self.set_interval(REFRESH_S, self._refresh_if_shown)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def _refresh_if_shown(self) -> None:
        if self.is_current:  # another mode is shown: re-read when this one comes back
            self.refresh_runs()

    @property
    def is_settled(self) -> bool:
        return self.listed and not self.busy

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    # ------------------------------------------------------------------ the list

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-list")
    def refresh_runs(self) -> None:
        try:
            runs = list_runs(self.app.runs_dir)
        except OSError as e:  # the folder went away or is unreadable: say so, keep the app up
            self.post_message(self.Listed([], f"{self.app.runs_dir}: {e}"))
            return
        self.post_message(self.Listed(runs))

    def on_runs_screen_listed(self, message: Listed) -> None:
        first = not self.listed
        self.listed = True
        names = [r.name for r in message.runs]
        if self.marked and self.marked not in names:
            self.marked = None
        self.table.show_runs(message.runs, self.marked)
        wanted = getattr(self.app, "initial_run", None)  # `tuitune --run NAME`
        if first and wanted:
            if wanted in names:
                self.table.move_cursor(row=names.index(wanted))
            else:
                self.missing = wanted
        self._show_detail(message.error)

    def on_data_table_row_selected(self) -> None:
        self.action_open_run()

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self, error: str = "") -> None:
        detail = self.query_one("#runs-detail", Static)
        detail.set_class(bool(error), "-error")
        run = self.table.current
        if error:
            text = error
        elif self.missing:  # `tuitune --run NAME` named a run that is not here
            text = self.t("runs.missing", name=self.missing, folder=self.app.runs_dir.name)
        elif run is None:
            text = self.t("runs.none", folder=self.app.runs_dir.name)
        else:
            text = display_path(run.path)
            if run.live and run.pid:
                text += "  ·  " + self.t("runs.live", pid=run.pid)
            if run.error:
                key = "runs.unreadable" if run.status == "unreadable" else "runs.error"
                text += "\n" + self.t(key, error=run.error)
            if self.marked:
                text += "\n" + self.t("runs.marked", name=self.marked)
        detail.update(text)

    def _current_or_say(self) -> Any | None:
        run = self.table.current
        if run is None:
            self.notify(self.t("runs.none", folder=self.app.runs_dir.name), severity="warning")
        return run

    # ------------------------------------------------------------------ open, resume, stop, delete

    def action_open_run(self) -> None:
        run = self._current_or_say()
        if run is None:
            return
        if hasattr(self.app, "open_run"):
            self.app.open_run(run.name)
        else:
            self.app.switch_mode("train")
            self.app.notify(self.t("runs.opened", name=run.name))

    def action_resume(self) -> None:
        run = self._current_or_say()
        if run is None:
            return
        if run.live:
            self.notify(self.t("runs.already_live", name=run.name), severity="warning")
            return
        self.busy += 1
        self._resume_if_allowed(run)

    @work(exclusive=True, exit_on_error=False, group="runs-dialog")
    async def _resume_if_allowed(self, run: Any) -> None:
        """A recipe that would run the model's own code asks first (tui.remote_code)."""
        from tuitune.tui.remote_code import ask_remote_code, refusal

        refused = refusal(run.path)
        if refused is not None and not await ask_remote_code(self.app, refused):
            self.busy -= 1
            self.notify(self.t("remote.declined", run=run.name), severity="warning")
            return
        self._resume(run)

    @work(thread=True, exit_on_error=False, group="runs-resume")
    def _resume(self, run: Any) -> None:
        """The CLI checks the run and starts the trainer (its own session), then returns."""
        from tuitune.tui.train_start import resume_run

        try:
            resume_run(RunDirectory(run.path))
        except UserError as e:  # the CLI's own words: its error and hint
            self.post_message(self.Resumed(run.name, e))
            return
        self.post_message(self.Resumed(run.name, None))

    def on_runs_screen_resumed(self, message: Resumed) -> None:
        self.busy -= 1
        if message.error is None:
            self.notify(self.t("runs.resumed", name=message.name))
        else:
            title = self.t("runs.resume_failed", name=message.name)
            self.app.show_error(UserError(f"{title}: {message.error.message}", message.error.hint))
        self.refresh_runs()

    def action_stop(self) -> None:
        run = self._current_or_say()
        if run is None:
            return
        if not run.live:
            self.notify(self.t("runs.not_live", name=run.name, status=run.status), severity="warning")
            return
        self._confirm_then(self.t("runs.stop_title"), self.t("runs.stop_ask", name=run.name), lambda: self._send_stop(run))

    def _send_stop(self, run: Any) -> None:
        if RunDirectory(run.path).request_stop():
            self.notify(self.t("runs.stop_sent", name=run.name))
        else:
            self.notify(self.t("runs.not_live", name=run.name, status=run.status), severity="warning")

    def action_delete(self) -> None:
        run = self._current_or_say()
        if run is None:
            return
        try:
            check_deletable(RunDirectory(run.path))
        except UserError as e:
            self.app.show_error(e, self.t("runs.delete_title"))
            return
        ask = self.t("runs.delete_ask", name=run.name, path=run.path)
        self._confirm_then(self.t("runs.delete_title"), ask, lambda: self._delete(run))

    def _delete(self, run: Any) -> None:
        try:
            kept = delete_run(RunDirectory(run.path))
        except UserError as e:
            self.app.show_error(e)
        else:
            if kept:
                names = ", ".join(kept[:5]) + (" …" if len(kept) > 5 else "")
                self.notify(self.t("runs.deleted_kept", name=run.name, count=len(kept), names=names), severity="warning")
            else:
                self.notify(self.t("runs.deleted", name=run.name))
            if self.marked == run.name:
                self.action_unmark()

    def _confirm_then(self, title: str, question: str, act: Callable[[], None]) -> None:
        """Ask in a dialog; `act` runs when the user agrees. The list is re-read either way."""
        self.busy += 1
        self._ask_and_act(title, question, act)

    @work(exclusive=True, exit_on_error=False, group="runs-dialog")
    async def _ask_and_act(self, title: str, question: str, act: Callable[[], None]) -> None:
        from tuitune.tui.dialogs.confirm import ConfirmDialog

        try:
            if await self.app.push_screen_wait(ConfirmDialog(title, question)):
                act()
        finally:
            self.busy -= 1
        self.refresh_runs()

    # ------------------------------------------------------------------ diff two recipes

    def action_mark(self) -> None:
        run = self._current_or_say()
        if run is None:
            return
        if self.marked is None or self.marked == run.name:
            self.marked = None if self.marked == run.name else run.name
            if self.marked:
                self.notify(self.t("runs.mark_hint", name=run.name))
        else:
            self._diff(self.marked, run.name)
        self.table.show_runs(self.table.runs, self.marked)
        self._show_detail()

    def action_unmark(self) -> None:
        self.marked = None
        self.diffed = None
        self.query_one("#runs-diff-box").remove_class("-shown")
        self.table.show_runs(self.table.runs, None)
        self._show_detail()

    def _diff(self, first: str, second: str) -> None:
        runs = {r.name: r for r in self.table.runs}
        try:
            a = RunDirectory(runs[first].path).load_recipe()
            b = RunDirectory(runs[second].path).load_recipe()
        except UserError as e:
            self.app.show_error(e)
            return
        self.diffed = (first, second)
        self.query_one("#runs-diff-title", Static).update(self.t("runs.diff_title", a=first, b=second))
        self.query_one(RecipeDiff).compare(a, b)
        self.query_one("#runs-diff-box").add_class("-shown")

    def palette_commands(self):
        for action, key in (("open_run", "runs.open"), ("resume", "runs.resume"), ("stop", "runs.stop"),
                            ("delete", "runs.delete"), ("mark", "runs.diff")):
            yield PaletteCommand(self.t(key), self.t(key + "_help"), getattr(self, f"action_{action}"))
