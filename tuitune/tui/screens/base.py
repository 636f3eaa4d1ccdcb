"""What every mode screen shares: the mode bar on top, the footer of keys below, the language,
commands for the palette, and worker failures shown as the error dialog."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar, NamedTuple

from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widgets import Footer, Input

from tuitune.tui.i18n import Translated, localize_bindings
from tuitune.tui.widgets.mode_bar import ModeBar
from tuitune.tui.workers import ReportsWorkerErrors


class PaletteCommand(NamedTuple):
    title: str
    help: str
    run: Callable[[], object]


class TuituneScreen(Translated, ReportsWorkerErrors, Screen):
    """Base of every mode screen. Subclasses set MODE and implement `compose_body()`."""

    MODE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        localize_bindings(self, self.lang)

    def compose(self) -> ComposeResult:
        yield ModeBar(self.MODE, self.lang)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    # ---- choosing a run (Chat & Eval, Export)

    class RunsFound(Message):
        """The runs folder's run names, newest first, and the one to offer first."""

        def __init__(self, names: list[str], default: str | None) -> None:
            super().__init__()
            self.names, self.default = names, default

    @work(thread=True, exclusive=True, exit_on_error=False, group="find-runs")
    def find_runs(self) -> None:
        """List the app's runs folder in a thread; answers with RunsFound (on_tuitune_screen_runs_found)."""
        from tuitune.core.runs import run_choices

        self.post_message(self.RunsFound(*run_choices(self.app.runs_dir, getattr(self.app, "initial_run", None))))

    @staticmethod
    def offer_runs(field: Input, found: RunsFound) -> None:
        """Suggest the run names while `field` is typed in, and fill in the default when it is empty."""
        field.suggester = SuggestFromList(found.names, case_sensitive=True)
        if not field.value and found.default:
            field.value = found.default

    def write_into_recipe(self, changes: dict[str, object]) -> bool:
        """Write what-if settings into the app's current recipe (Hardware and Dataset ctrl+r): says
        what changed, or that nothing differs, and warns about values the recipe refuses."""
        if not changes:
            self.notify(self.t("hw.same"))
            return False
        problems = self.app.update_recipe(changes)
        self._seen_version = self.app.recipe_version
        if problems:
            self.notify("\n".join(p.format() for p in problems), severity="warning")
        self.notify(self.t("hw.used", changes=", ".join(f"{k} = {v}" for k, v in changes.items())))
        return True

    def palette_commands(self) -> Iterable[PaletteCommand]:
        """Commands this screen adds to the command palette (ctrl+p) while it is shown."""
        return ()
