"""Pictures of every screen at 100x30 (pytest-textual-snapshot). Update with --snapshot-update after
looking at the differences report; see docs/tui.md."""

from __future__ import annotations

import pytest
from conftest import wait_for

from tuitune.tui.screens import MODES

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def fake_24gb_gpu(monkeypatch):
    """Pictures must not depend on the machine: every snapshot sees one faked 24 GB GPU."""
    monkeypatch.setenv("TUITUNE_FAKE_GPU", "24GB")


async def settle(pilot) -> None:
    """Wait until the screen stops changing: the memory panel has answered and workers are done."""
    app = pilot.app
    if app.current_mode == "recipe":
        memory, form = app.screen.query_one("#memory"), app.screen.query_one("#recipe-form")
        await wait_for(
            pilot, lambda: memory.last_requested == form.recipe and memory.is_current, what="memory"
        )
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("mode", [m.name for m in MODES])
def test_screen_snapshot(snap_compare, make_app, mode):
    assert snap_compare(make_app(start_mode=mode), terminal_size=SIZE, run_before=settle)


def test_recipe_form_in_chinese(snap_compare, make_app):
    async def focus_rank(pilot):
        pilot.app.screen.query_one("#field-lora-r").editor.focus()
        await settle(pilot)

    assert snap_compare(make_app(lang="zh", start_mode="recipe"), terminal_size=SIZE, run_before=focus_rank)


def test_recipe_form_with_an_error_and_changes(snap_compare, make_app):
    async def edit(pilot):
        pilot.app.screen.query_one("#field-lora-r").editor.focus()
        await pilot.press("end", "ctrl+u", "0")
        await settle(pilot)

    assert snap_compare(make_app(start_mode="recipe"), terminal_size=SIZE, run_before=edit)
