"""A screen that is not built yet: it says plainly what it will show and which command does it today.

Used by the modes whose core APIs are still being written; each is replaced by a real screen module.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tuitune.tui.screens.base import TuituneScreen


class PlannedScreen(TuituneScreen):
    """Subclasses set MODE; the texts come from i18n keys "<MODE>.will" and "<MODE>.cmd"."""

    DEFAULT_CSS = """
    PlannedScreen {
        #planned { padding: 1 2; }
        .planned-title { text-style: bold; color: $text-accent; margin-bottom: 1; }
        .planned-label { color: $text-muted; margin-top: 1; }
        .planned-item { height: auto; padding-left: 2; }
        .planned-bullet { width: 2; }
        .planned-cmd { padding-left: 2; color: $text-success; text-style: bold; }
        .planned-hint { margin-top: 1; color: $text-muted; }
    }
    """

    MODE: ClassVar[str] = ""

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="planned"):
            yield Static(self.t(f"mode.{self.MODE}.title"), classes="planned-title", markup=False)
            yield Static(self.t("planned.heading"), markup=False)
            yield Static(self.t("planned.will_show"), classes="planned-label", markup=False)
            for item in self.t(self.MODE + ".will").splitlines():
                with Horizontal(classes="planned-item"):
                    yield Static("•", classes="planned-bullet")
                    yield Static(item, markup=False)
            yield Static(self.t("planned.today"), classes="planned-label", markup=False)
            yield Static(self.t(self.MODE + ".cmd"), classes="planned-cmd", markup=False)
            run = getattr(self.app, "initial_run", None)
            if run and self.MODE == "runs":
                yield Static(self.t("planned.run", run=run), classes="planned-label", markup=False)
            yield Static(self.t("planned.elsewhere"), classes="planned-hint", markup=False)
