"""What every mode screen shares: the mode bar on top, the footer of keys below, the language,
commands for the palette, and worker failures shown as the error dialog."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar, NamedTuple

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from tuitune.tui.i18n import localize_bindings, t
from tuitune.tui.widgets.mode_bar import ModeBar
from tuitune.tui.workers import ReportsWorkerErrors


class PaletteCommand(NamedTuple):
    title: str
    help: str
    run: Callable[[], object]


class TuituneScreen(ReportsWorkerErrors, Screen):
    """Base of every mode screen. Subclasses set MODE and implement `compose_body()`."""

    MODE: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        localize_bindings(self, self.lang)

    @property
    def lang(self) -> str:
        return getattr(self.app, "lang", "en")

    def t(self, key: str, /, **values: object) -> str:
        return t(key, self.lang, **values)

    def compose(self) -> ComposeResult:
        yield ModeBar(self.MODE, self.lang)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

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
