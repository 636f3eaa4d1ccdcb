"""Runs screen against real run folders (the tiny model trained by `tuitune train`): the list, delete
with confirmation, refusing a run a trainer holds, stop, a failed resume's message, and the diff."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for, wait_for_error_dialog
from trained_runs import RUNS, STEPS, copy_runs, pin_for_pictures, trained_runs

from tuitune.core.runs import RunDirectory
from tuitune.tui.dialogs.confirm import ConfirmDialog

SIZE = (100, 30)


@pytest.fixture
def runs_dir(tiny_model_dir, tmp_path_factory, tmp_path):
    return copy_runs(trained_runs(tiny_model_dir, tmp_path_factory), tmp_path / "runs")


def table_rows(screen) -> dict[str, list[str]]:
    table = screen.table
    return {
        str(row.value): [str(getattr(c, "plain", c)) for c in table.get_row(row)]
        for row in table.rows
    }


async def listed(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.screen.is_settled and pilot.app.screen.table.row_count > 0, what="the runs")


async def cursor_to(pilot, name: str) -> None:
    table = pilot.app.screen.table
    table.move_cursor(row=[r.name for r in table.runs].index(name))
    await pilot.pause()


async def test_the_list_shows_every_run_as_tuitune_runs_does(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        rows = table_rows(app.screen)
        assert set(rows) == set(RUNS)
        for name in RUNS:
            status = json.loads((runs_dir / name / "status.json").read_text())
            name_cell, state, method, _model, steps, best, duration, *_group = rows[name]
            assert (state, method, steps) == ("done", "lora", f"{STEPS}/{STEPS}")
            assert best == f"{status['best_eval_loss']:.4f}"
            assert duration != "-"


async def test_a_new_run_appears_without_a_key_press(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        (runs_dir / "gamma").mkdir()
        (runs_dir / "gamma" / "recipe.toml").write_text((runs_dir / "alpha" / "recipe.toml").read_text())
        await wait_for(pilot, lambda: "gamma" in table_rows(app.screen), timeout=10, what="the periodic refresh")
        assert table_rows(app.screen)["gamma"][1] == "prepared"


async def test_delete_asks_first_and_removes_the_folder(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), what="the answer")
        assert (runs_dir / "alpha").is_dir()
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: set(table_rows(app.screen)) == {"beta"}, what="the list without alpha")
        assert not (runs_dir / "alpha").exists() and (runs_dir / "beta" / "adapter").is_dir()


async def test_a_run_a_trainer_holds_is_not_deleted(make_app, runs_dir):
    lock = RunDirectory(runs_dir / "alpha").acquire_lock()  # a real flock, as a live trainer holds it
    try:
        app = make_app(start_mode="runs", runs_dir=runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await listed(pilot)
            await cursor_to(pilot, "alpha")
            assert table_rows(app.screen)["alpha"][1] == "done ●"  # shown as live
            await pilot.press("delete")
            text = await wait_for_error_dialog(pilot)
            assert "in use by a trainer" in text and f"pid {lock.run.holder_pid()}" in text and "stop it first" in text
            await pilot.press("escape")
        assert (runs_dir / "alpha" / "adapter").is_dir()
    finally:
        lock.release()


def _hold_lock(run_path):
    """A stand-in trainer: another process holding the run's lock (stop signals the lock's holder, so
    it must not be this test's own process)."""
    code = ("import os, sys, time; from tuitune.core.runs import RunDirectory; "
            "lock = RunDirectory(sys.argv[1]).acquire_lock(); lock.set_holder(os.getpid()); "
            "print('locked', flush=True); time.sleep(300)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert holder.stdout.readline().strip() == "locked"
    return holder


async def test_stop_asks_then_tells_the_trainer(make_app, runs_dir):
    holder = _hold_lock(runs_dir / "beta")
    try:
        app = make_app(start_mode="runs", runs_dir=runs_dir)
        async with app.run_test(size=SIZE) as pilot:
            await listed(pilot)
            await cursor_to(pilot, "beta")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
            assert not (runs_dir / "beta" / "stop").exists() and holder.poll() is None
            await pilot.press("y")
            await wait_for(pilot, lambda: (runs_dir / "beta" / "stop").exists(), what="the stop request")
            assert holder.wait(timeout=30) == -signal.SIGTERM  # the trainer was told
            await cursor_to(pilot, "alpha")  # not training: nothing to ask
            await pilot.press("s")
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ConfirmDialog) and not (runs_dir / "alpha" / "stop").exists()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


async def test_resume_runs_the_cli_and_shows_why_it_refused(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        await pilot.press("r")
        text = await wait_for_error_dialog(pilot, timeout=60)  # the CLI's answer
        assert "alpha" in text and "already finished" in text and "model.adapter=" in text


async def test_enter_opens_the_run_in_the_train_screen(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        opened: list[str] = []
        if hasattr(app, "open_run"):  # the Train screen's reattach, once merged
            app.open_run = opened.append
        await pilot.press("enter")
        await pilot.pause()
        if hasattr(type(app), "open_run"):
            assert opened == ["alpha"]
        else:
            assert app.current_mode == "train" and any("alpha" in n.message for n in app._notifications)


async def test_diff_of_two_runs_shows_the_keys_that_differ(make_app, runs_dir):
    app = make_app(start_mode="runs", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        await pilot.press("m")
        assert table_rows(app.screen)["alpha"][0] == "◆ alpha"
        await cursor_to(pilot, "beta")
        await pilot.press("m")
        diff = app.screen.query_one("#runs-diff")
        await wait_for(pilot, lambda: diff.changed_keys, what="the diff")
        assert set(diff.changed_keys) == {"name", "train.learning_rate"}
        assert "0.01 → 0.005" in str(diff.render()) and diff.is_on_screen
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query_one("#runs-diff-box").has_class("-shown")


def test_snapshot_runs_with_a_diff(snap_compare, make_app, runs_dir, monkeypatch):
    pin_for_pictures(runs_dir)
    monkeypatch.chdir(runs_dir.parent)  # paths show relative: the same in every session

    async def diff(pilot):
        await listed(pilot)
        await cursor_to(pilot, "alpha")
        await pilot.press("m")
        await cursor_to(pilot, "beta")
        await pilot.press("m")
        await pilot.pause(0.2)

    assert snap_compare(make_app(start_mode="runs", runs_dir="runs"), terminal_size=SIZE, run_before=diff)


async def test_stop_then_resume_a_real_training(make_app, tiny_model_dir, tmp_path_factory, tmp_path):
    """A detached trainer is stopped from the screen (checkpoint first), then resumed from it with r and
    runs to its end, the list following it without a key press."""
    from engine_support import FACTS, pretrained_tiny_dir, tuitune, write_jsonl, write_recipe

    model = pretrained_tiny_dir(tiny_model_dir, tmp_path_factory)
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    runs = tmp_path / "runs"
    recipe = write_recipe(tmp_path / "long.toml", model, data, runs, "long", "lora",
                          train={"max_steps": 5000, "save_steps": 0, "logging_steps": 1})
    started = tuitune("train", str(recipe), "--detach")
    assert started.returncode == 0, started.stderr
    run = RunDirectory(runs / "long")
    try:
        app = make_app(start_mode="runs", runs_dir=runs)
        async with app.run_test(size=SIZE) as pilot:
            await listed(pilot)
            await wait_for(pilot, lambda: table_rows(app.screen)["long"][1] == "training ●", timeout=120, what="training")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: table_rows(app.screen)["long"][1] == "stopped", timeout=120, what="the stop")
            stopped_at = json.loads(run.status_path.read_text())["step"]
            assert run.last_checkpoint().name == f"checkpoint-{stopped_at}"
            # Resume with three steps left, so it ends soon.
            run.recipe_path.write_text(run.recipe_path.read_text().replace("max_steps = 5000", f"max_steps = {stopped_at + 3}"))
            await pilot.press("r")
            await wait_for(pilot, lambda: table_rows(app.screen)["long"][1] == "done", timeout=180, what="the resumed run")
            assert table_rows(app.screen)["long"][4] == f"{stopped_at + 3}/{stopped_at + 3}"
        starts = [e for e in run.events() if e["type"] == "start"]
        assert [s["resumed_from"] for s in starts] == [None, stopped_at]
    finally:
        if run.request_stop():  # never leave a trainer behind
            for _ in range(600):
                if not run.is_locked():
                    break
                time.sleep(0.1)


async def test_run_option_selects_the_run_or_says_it_is_missing(make_app, runs_dir):
    # `tuitune --run NAME` opens the run on the Train screen; the Runs screen then has it selected.
    app = make_app(runs_dir=runs_dir, run="alpha")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.current_mode == "train", what="the Train screen")
        await pilot.press("f5")
        await listed(pilot)
        assert app.current_mode == "runs" and app.screen.table.current.name == "alpha"
    app = make_app(runs_dir=runs_dir, run="gone")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_error_dialog(pilot)
        await pilot.press("escape")
        await pilot.press("f5")
        await listed(pilot)
        assert "No run named gone in runs/" in str(app.screen.query_one("#runs-detail").render())
