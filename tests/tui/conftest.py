"""Helpers for driving the app with Pilot: a fresh app per test, the cursor frozen, waits that poll."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recipes_dir(tmp_path) -> Path:
    """A private copy of the shipped recipes, so saving cannot touch the repository."""
    dst = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", dst)
    return dst


@pytest.fixture
def make_app(tmp_path, recipes_dir):
    from tuitune.tui.app import TuituneApp

    def make(lang: str = "en", start_mode: str | None = None, **kw) -> TuituneApp:
        kw.setdefault("recipes_dir", recipes_dir)
        kw.setdefault("runs_dir", tmp_path / "runs")
        return TuituneApp(lang=lang, start_mode=start_mode, blink=False, **kw)

    return make


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Let the app run until `condition()` is true; fail with `what` after `timeout` seconds.

    Polling rather than a fixed pause keeps tests both fast and reliable on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def wait_for_error_dialog(pilot, timeout: float = 10.0) -> str:
    """Wait for the error dialog with its contents mounted and return its text.

    The dialog is the app's screen a moment before its children are mounted (seconds on a loaded
    machine), so waiting for the screen alone can read an empty dialog."""

    def shown() -> bool:
        screen = pilot.app.screen
        return type(screen).__name__ == "ErrorDialog" and bool(screen.query("#ok"))  # its last child

    await wait_for(pilot, shown, timeout, "the error dialog")
    return "\n".join(str(w.render()) for w in pilot.app.screen.query("Static"))


@pytest.fixture
def data_app(make_app, tiny_model_dir):
    """The Dataset screen with the tiny test model as the recipe's model (its tokenizer renders rows)."""

    def make(path=None):
        app = make_app(start_mode="dataset")
        app.recipe.model.name_or_path = str(tiny_model_dir)
        if path is not None:
            app.recipe.data.path = str(path)
        return app

    return make
