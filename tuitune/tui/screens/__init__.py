"""The app's modes, in F-key order. Each mode's screen lives in its own module, imported on first use.

Adding or replacing a screen: write `screens/<name>.py` with a `TuituneScreen` subclass and point its
entry here at it (see docs/tui.md). Nothing else in the app needs to change.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass(frozen=True)
class Mode:
    """One top-level screen: its name, the keys that open it, and where its screen class lives."""

    name: str  # also the i18n keys "mode.NAME" (short) and "mode.NAME.title" (heading)
    key: str  # primary key, an F-key
    digit: str  # in the ctrl+g "go to" list; also alt+digit where the terminal reports it as such
    screen: str  # "module:Class"

    def screen_class(self) -> type[Screen]:
        module_name, class_name = self.screen.split(":")
        return getattr(importlib.import_module(module_name), class_name)


MODES: tuple[Mode, ...] = (
    Mode("hardware", "f1", "1", "tuitune.tui.screens.hardware:HardwareScreen"),
    Mode("dataset", "f2", "2", "tuitune.tui.screens.dataset:DatasetScreen"),
    Mode("recipe", "f3", "3", "tuitune.tui.screens.recipe:RecipeScreen"),
    Mode("train", "f4", "4", "tuitune.tui.screens.train:TrainScreen"),
    Mode("runs", "f5", "5", "tuitune.tui.screens.runs:RunsScreen"),
    Mode("chat", "f6", "6", "tuitune.tui.screens.chat:ChatScreen"),
    Mode("export", "f7", "7", "tuitune.tui.screens.export:ExportScreen"),
)

MODE_BY_NAME = {m.name: m for m in MODES}
