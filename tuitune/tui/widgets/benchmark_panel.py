"""The benchmarks part of the Evaluate tab: which lm-eval tasks (typed with completion, or picked
from the popular ones with ctrl+o), how many examples each, what is happening, and the scores
before and after (BenchmarkBars). Enter in either field, or ctrl+b, asks the screen to run them."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from tuitune.core.benchmarks import KNOWN_TASKS, parse_task_names
from tuitune.core.errors import UserError
from tuitune.tui.i18n import localize_bindings, t
from tuitune.tui.widgets.benchmark_bars import BenchmarkBars
from tuitune.tui.widgets.runs_table import display_path
from tuitune.tui.widgets.suggesters import TaskListSuggester

DEFAULT_LIMIT = 100  # a first look in minutes, not hours; empty = every example


class BenchmarkPanel(Vertical):
    DEFAULT_CSS = """
    BenchmarkPanel { height: auto; }
    BenchmarkPanel #bench-controls { height: 1; }
    BenchmarkPanel #bench-controls Label { padding: 0 1; color: $text-muted; }
    BenchmarkPanel #bench-controls Label.-title { color: $text-accent; text-style: bold; }
    BenchmarkPanel Input { height: 1; border: none; padding: 0 1; background: $boost; }
    BenchmarkPanel Input:focus { background: $primary 40%; }
    BenchmarkPanel #bench-tasks { width: 1fr; }
    BenchmarkPanel #bench-limit { width: 8; }
    BenchmarkPanel #bench-status { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    BenchmarkPanel #bench-status.-error { color: $text-error; }
    """
    BINDINGS = [Binding("ctrl+o", "pick_tasks", "bench.pick")]

    class Requested(Message):
        """Run these tasks (limit None = every example)."""

        def __init__(self, tasks: list[str], limit: int | None) -> None:
            super().__init__()
            self.tasks, self.limit = tasks, limit

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.report: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="bench-controls"):
            yield Label(t("bench.title", self.lang), classes="-title")
            yield Input(
                placeholder=t("bench.tasks_placeholder", self.lang),
                id="bench-tasks",
                compact=True,
                suggester=TaskListSuggester([k.name for k in KNOWN_TASKS]),
            )
            yield Label(t("bench.limit", self.lang))
            yield Input(str(DEFAULT_LIMIT), placeholder=t("bench.limit_all", self.lang), id="bench-limit", compact=True)
        yield Static(t("bench.idle", self.lang), id="bench-status", markup=False)
        yield BenchmarkBars(self.lang, id="bench-bars")

    def on_mount(self) -> None:
        localize_bindings(self, self.lang)

    # ------------------------------------------------------------------ what to run

    def request(self) -> tuple[list[str], int | None]:
        """The tasks and the limit as typed; UserError saying what is wrong."""
        tasks = parse_task_names(self.query_one("#bench-tasks", Input).value)
        if not tasks:
            raise UserError(t("bench.no_tasks", self.lang))
        text = self.query_one("#bench-limit", Input).value.strip()
        if not text:
            return tasks, None
        try:
            limit = int(text)
        except ValueError:
            limit = 0
        if limit < 1:
            raise UserError(t("bench.bad_limit", self.lang, value=text))
        return tasks, limit

    def set_tasks(self, names: list[str]) -> None:
        self.query_one("#bench-tasks", Input).value = ", ".join(names)

    @on(Input.Submitted, "#bench-tasks, #bench-limit")
    def _submitted(self) -> None:
        self.ask()

    def ask(self) -> None:
        try:
            tasks, limit = self.request()
        except UserError as e:
            self.say(e.message, error=True)
            return
        self.post_message(self.Requested(tasks, limit))

    def action_pick_tasks(self) -> None:
        self._pick()

    @work(exclusive=True, exit_on_error=False, group="bench-dialog")
    async def _pick(self) -> None:
        from tuitune.tui.dialogs.task_picker import TaskPickerDialog

        typed = parse_task_names(self.query_one("#bench-tasks", Input).value)
        chosen = await self.app.push_screen_wait(TaskPickerDialog(typed))
        if chosen is not None:
            self.set_tasks(chosen)
            self.query_one("#bench-tasks", Input).focus()

    # ------------------------------------------------------------------ what happened

    def say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#bench-status", Static)
        status.set_class(error, "-error")
        status.update(text)

    def show_report(self, report: dict[str, Any]) -> None:
        self.report = report
        self.query_one(BenchmarkBars).show(report)
        self.say(
            t(
                "bench.done",
                self.lang,
                run=report.get("run", ""),
                tasks=len(report.get("tasks") or []),
                seconds=float(report.get("seconds") or 0.0),
                path=display_path(report.get("path") or ""),
            )
            + "\n" + t("bench.chat_prompts" if report.get("chat_prompts") else "bench.plain_prompts", self.lang)
            + "".join(f"\n{note}" for note in report.get("notes") or [])
        )
