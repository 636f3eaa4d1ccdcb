"""Faults as the app shows them (real run folders trained by `tuitune train`): a copied run whose recipe
turns on trust_remote_code is loaded only after the user says yes; a run with a cut-off adapter says
so in place, naming the file; a run that cannot be read is a row of its own and the others still show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import wait_for
from test_chat_screen import ask_to_load
from trained_runs import RUNS, copy_runs, trained_runs

from tuitune.core.recipe import load_recipe, save_recipe
from tuitune.tui.dialogs.confirm import ConfirmDialog

SIZE = (100, 30)


@pytest.fixture
def runs_dir(tiny_model_dir, tmp_path_factory, tmp_path):
    return copy_runs(trained_runs(tiny_model_dir, tmp_path_factory), tmp_path / "runs")


@pytest.fixture(autouse=True)
def _forget_remote_code_permission():
    from tuitune.core.runs import remote_code

    yield
    remote_code._allowed.clear()


def _trust_remote_code(run: Path) -> None:
    recipe, _ = load_recipe(run / "recipe.toml")
    recipe.model.trust_remote_code = True
    save_recipe(recipe, run / "recipe.toml")


async def test_chat_asks_before_a_copied_run_runs_its_models_code(make_app, runs_dir):
    _trust_remote_code(runs_dir / "alpha")
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await ask_to_load(pilot, "alpha")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=60, what="the question")
        assert "alpha" in str(app.screen.query_one("#message").render())
        await pilot.press("n")
        state = screen.query_one("#chat-state")
        await wait_for(pilot, lambda: app.screen is screen and "alpha" in str(state.render()), what="the refusal")
        assert screen.session is None and state.has_class("-error")

        await ask_to_load(pilot, "alpha")  # asked again; yes loads it
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=60, what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.session is not None, timeout=120, what="the model")


async def test_chat_on_a_run_with_a_cut_off_adapter_names_the_file(make_app, runs_dir):
    weights = runs_dir / "alpha" / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await ask_to_load(pilot, "alpha")
        state = screen.query_one("#chat-state")
        await wait_for(pilot, lambda: state.has_class("-error"), timeout=60, what="the message")
        assert "adapter_model.safetensors: cut off" in str(state.render())
        assert screen.session is None


async def test_an_unreadable_run_is_its_own_row_and_the_others_still_show(make_app, runs_dir):
    (runs_dir / "alpha" / "status.json").unlink()
    (runs_dir / "alpha" / "status.json").mkdir()  # reading it fails with an OSError
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.is_settled and screen.table.row_count == len(RUNS), what="the runs")
        by_name = {r.name: r for r in screen.table.runs}
        assert by_name["alpha"].status == "unreadable" and by_name["beta"].status == "done"
        screen.table.move_cursor(row=[r.name for r in screen.table.runs].index("alpha"))
        await pilot.pause()
        detail = str(screen.query_one("#runs-detail").render())
        assert "status.json" in detail


async def test_export_asks_before_a_copied_run_runs_its_models_code(make_app, runs_dir, tmp_path):
    from test_export_screen import choose, text_of

    _trust_remote_code(runs_dir / "alpha")
    out = tmp_path / "out" / "alpha-adapter"
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "alpha", "adapter", out)
        assert "trust_remote_code" in text_of(screen, "#export-check")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen, what="the answer")
        await pilot.pause(0.2)
        assert screen.checked is None and not screen.exporting and not out.exists()

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.checked is not None, timeout=30, what="the check")
        assert text_of(screen, "#export-check").startswith("✓ alpha (lora)")


async def test_resume_from_the_runs_screen_asks_first_and_no_starts_nothing(make_app, runs_dir):
    from test_runs_screen import cursor_to, listed

    run = runs_dir / "alpha"
    _trust_remote_code(run)
    shutil.rmtree(run / "adapter")  # as a crashed run looks: no result, a resume is possible
    log_before = (run / "train.log").read_bytes()
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), timeout=30, what="the question")
        assert "alpha" in str(app.screen.query_one("#message").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: any("alpha" in n.message for n in app._notifications), what="the refusal")
        await pilot.pause(0.5)
    assert (run / "train.log").read_bytes() == log_before  # no trainer was started
