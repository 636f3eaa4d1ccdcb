"""The Train screen with real tiny trainings: start from the UI, watch the chart fill, quit and
reattach, stop with confirmation, replay a stopped run, and a failed run's error.

Each trainer is a real detached process on the tiny model; every test ends the ones it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for, wait_for_error_dialog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_support import FACTS, events, write_jsonl, write_recipe  # noqa: E402

from tuitune.core.recipe import load_recipe  # noqa: E402
from tuitune.core.runs import RunDirectory  # noqa: E402

TRAIN_TIMEOUT = 240  # seconds: torch import and tiny steps on two shared cores


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


@pytest.fixture
def trainers(tmp_path):
    """Trainers a test started (listed, or found in its runs folder) are killed when it ends."""
    pids: list[int] = []
    yield pids
    for status in (tmp_path / "runs").glob("*/status.json"):
        pids.append(json.loads(status.read_text()).get("pid"))
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _recipe(tmp_path: Path, model: Path, name: str, data: Path | None = None, **train) -> Path:
    data = data or write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=4)
    settings = {"max_steps": 5000, "logging_steps": 1, "save_steps": 0, **train}
    return write_recipe(tmp_path / f"{name}.toml", model, data, tmp_path / "runs", name, "lora", train=settings)


def _use_recipe(app, path: Path) -> None:
    recipe, problems = load_recipe(path)
    assert not problems
    app.set_recipe(recipe, path)


async def _start_from_ui(app, pilot, recipe: Path, trainers: list[int]) -> RunDirectory:
    """Make `recipe` the current one, press t, and return the run once the app follows it."""
    _use_recipe(app, recipe)
    await pilot.press("t")
    await wait_for(pilot, lambda: app.follower.attached is not None, TRAIN_TIMEOUT, "the run to start")
    run = app.follower.attached.run
    trainers.append(run.read_status().get("pid"))
    return run


def _train_points(app) -> int:
    charts = app.screen.query("#chart")  # none while another screen (or a dialog) is up
    return len(charts.first().series["train"][0]) if charts else 0


def _chart_last_step(app) -> float:
    charts = app.screen.query("#chart")
    steps = charts.first().series["train"][0] if charts else []
    return max(steps, default=0)


def _history_steps(app) -> int:
    return len(app.follower.attached.history.train_loss.steps) if app.follower.attached else 0


def _screen_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query("Static"))


async def test_start_quit_reattach_stop_and_replay(make_app, tiny_model_dir, tmp_path, trainers):
    path = _recipe(tmp_path, tiny_model_dir, "ui")
    app = make_app(start_mode="train")
    async with app.run_test(size=(80, 24)) as pilot:
        _use_recipe(app, path)
        app.update_recipe({"train.learning_rate": 0.002})  # an unsaved edit: the run must train it
        await pilot.pause()
        assert "ui" in _screen_text(app)  # the current recipe, before any run
        await pilot.press("t")
        await wait_for(pilot, lambda: app.follower.attached is not None, TRAIN_TIMEOUT, "the run to start")
        run = app.follower.attached.run
        trainers.append(run.read_status().get("pid"))
        await wait_for(pilot, lambda: _train_points(app) >= 3, TRAIN_TIMEOUT, "three points on the chart")
        first = _chart_last_step(app)
        await wait_for(pilot, lambda: _chart_last_step(app) > first, TRAIN_TIMEOUT, "the chart to grow")
        assert "training" in str(app.screen.query_one("#head").render())
        assert "step " in str(app.screen.query_one("#progress-text").render())
    frozen, _ = load_recipe(run.recipe_path)
    assert frozen.train.learning_rate == 0.002 and frozen.name == "ui"

    # The app quit; the trainer did not.
    pid = run.read_status()["pid"]
    assert _alive(pid) and run.is_locked()

    # Plain `tuitune` (no --run) finds the live run, shows it on the Train screen, replays and follows it.
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.follower.attached is not None, 30, "the live run to be found")
        await wait_for(pilot, lambda: app.current_mode == "train", 10, "the Train screen")
        steps_then = len(events(run.path, "step"))
        # The chart shrinks long histories to its width: count the steps in the history, and check the
        # chart reaches the newest step.
        await wait_for(pilot, lambda: _history_steps(app) >= steps_then and _chart_last_step(app) >= steps_then,
                       30, "the history replayed")
        await wait_for(pilot, lambda: _chart_last_step(app) > steps_then, TRAIN_TIMEOUT, "live updates after the replay")

        # Stop, with confirmation: "n" keeps it running, "y" stops it.
        await pilot.press("s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", 10, "the confirmation")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.current_mode == "train" and type(app.screen).__name__ == "TrainScreen",
                       10, "the dialog to close")
        assert not run.stop_requested() and run.is_locked()
        await pilot.press("s")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", 10, "the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.follower.attached.live, TRAIN_TIMEOUT, "the trainer to stop")
        await wait_for(pilot, lambda: "stopped" in str(app.screen.query_one("#head").render()), 5, "stopped shown")
    assert run.read_status()["status"] == "stopped" and run.last_checkpoint() is not None
    deadline = time.monotonic() + 30  # the lock goes a moment before the process ends
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)

    # `tuitune --run NAME` on the stopped run: the whole history, the final state.
    all_steps = [e["step"] for e in events(run.path, "step")]
    app = make_app(run="ui")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.is_settled and app.current_mode == "train", 30, "the replay")
        assert app.follower.attached.history.train_loss.steps == all_steps
        drawn = app.screen.query_one("#chart").series["train"][0]  # shrunk to the width when long
        assert drawn[0] == all_steps[0] and drawn[-1] == all_steps[-1] and set(drawn) <= set(all_steps)
        head = str(app.screen.query_one("#head").render())
        assert "ui" in head and "stopped" in head
        assert f"step {all_steps[-1]}/5000" in str(app.screen.query_one("#progress-text").render())
        assert app.screen.query_one("#stop").disabled  # nothing to stop
        assert not app.screen.query_one("#resume").disabled  # a stopped run can be resumed


async def test_failed_run_shows_its_error_and_notifies(make_app, tiny_model_dir, tmp_path, trainers):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"colour": "teal"}) + "\n" for _ in range(5)), encoding="utf-8")
    path = _recipe(tmp_path, tiny_model_dir, "broken", data=bad)
    app = make_app(start_mode="train")
    async with app.run_test(size=(100, 30)) as pilot:
        run = await _start_from_ui(app, pilot, path, trainers)
        await wait_for(pilot, lambda: not app.follower.attached.live, TRAIN_TIMEOUT, "the run to fail")
        await wait_for(pilot, lambda: app.screen.is_settled, 10, "the screen")
        error = [e for e in events(run.path, "error")][-1]
        problem = str(app.screen.query_one("#problem").render())
        assert error["kind"] == "data" and error["message"][:40] in problem
        assert "failed" in str(app.screen.query_one("#head").render())
        notes = [n for n in app._notifications if n.severity == "error"]
        assert notes and "broken" in notes[-1].message
    # A fresh app on the failed run shows the same error, without ringing for old news.
    app = make_app(run=str(run.path))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.is_settled, 30, "the replay")
        assert error["message"][:40] in str(app.screen.query_one("#problem").render())
        assert not [n for n in app._notifications if n.severity == "error"]


async def test_start_refuses_a_broken_recipe_with_a_message(make_app, tmp_path):
    app = make_app(start_mode="train")
    async with app.run_test(size=(80, 24)) as pilot:
        app.recipe.train.batch_size = 0  # as a hand-edited value could be: the recipe does not validate
        await pilot.press("t")
        assert "train.batch_size" in await wait_for_error_dialog(pilot, 30)
    assert not (tmp_path / "runs").exists()


async def test_missing_run_name_says_so(make_app):
    app = make_app(run="nosuchrun")
    async with app.run_test(size=(80, 24)) as pilot:
        assert "nosuchrun" in await wait_for_error_dialog(pilot)
        assert app.current_mode == "train"


def test_run_history_replays_resume_without_repeating_steps():
    from tuitune.core.runs.history import RunHistory

    h = RunHistory()
    h.add([{"type": "start", "max_steps": 10, "resumed_from": None}]
          + [{"type": "step", "step": s, "loss": 1.0 / s, "lr": 0.1, "grad_norm": 1.0, "max_steps": 10} for s in range(1, 7)]
          + [{"type": "eval", "step": 5, "eval_loss": 0.5}])
    # Killed after step 6, resumed from the checkpoint at step 4: steps 5 and 6 come again.
    h.add([{"type": "start", "max_steps": 10, "resumed_from": 4}]
          + [{"type": "step", "step": s, "loss": 2.0 / s, "max_steps": 10} for s in range(5, 8)])
    assert h.train_loss.steps == [1, 2, 3, 4, 5, 6, 7]
    assert h.train_loss.values[4] == 2.0 / 5
    assert h.eval_loss.steps == [] and h.best_eval_loss == 0.5
    assert h.step == 7 and h.max_steps == 10
    notable = h.add([{"type": "step", "step": 8, "loss": None}, {"type": "error", "kind": "nan", "message": "m"}])
    assert h.train_loss.steps[-1] == 7 and notable[0]["kind"] == "nan"


def test_downsample_keeps_extremes_and_bounds_the_count():
    from tuitune.core.series import downsample

    n = 30_000
    xs = list(range(1, n + 1))
    ys = [3.0 - i / n for i in range(n)]
    ys[12_345] = 9.0  # a spike
    ys[20_000] = -1.0  # a dip
    out_x, out_y = downsample(xs, ys, 80)
    assert len(out_x) <= 2 * 80 + 2
    assert out_x[0] == 1 and out_x[-1] == n
    assert max(out_y) == 9.0 and min(out_y) == -1.0
    assert out_x == sorted(out_x)
    assert all(ys[x - 1] == y for x, y in zip(out_x, out_y, strict=True))
    assert downsample([1, 2, 3], [3.0, 2.0, 1.0], 80) == ([1, 2, 3], [3.0, 2.0, 1.0])


async def test_chart_reads_at_3_and_30000_steps(make_app, tmp_path):
    """A replayed 30,000-step run draws a bounded number of points; 3 steps draw all three."""
    from tuitune.core.runs import EventWriter

    for name, n in (("three", 3), ("long", 30_000)):
        run = RunDirectory(tmp_path / "runs" / name)
        run.create()
        (run.path / "recipe.toml").write_text(f'name = "{name}"\n', encoding="utf-8")
        with EventWriter(run.events_path) as w:
            w.write("start", max_steps=n, resumed_from=None)
            for s in range(1, n + 1):
                w.write("step", step=s, max_steps=n, loss=2.0 + (s % 7) / 10, lr=1e-4, grad_norm=0.5)
            w.write("done", steps=n, output="x")
        app = make_app(run=name)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda app=app: app.screen.is_settled, 60, "the replay")
            chart = app.screen.query_one("#chart")
            xs = chart.series["train"][0]
            if n == 3:
                assert xs == [1, 2, 3]
            else:
                assert 50 < len(xs) <= 2 * chart.size.width + 2 and xs[0] == 1 and xs[-1] == n
            text = chart.plt.build()
            assert ("30k" in text) if n > 3 else ("3" in text)


@pytest.mark.parametrize(("kind", "words"), [("nan", "NaN"), ("oom", "out of memory")])
async def test_nan_and_out_of_memory_ring_and_notify(make_app, tmp_path, kind, words):
    """Events written while the app follows a live run (this test holds the run's lock as a trainer)."""
    from tuitune.core.runs import EventWriter

    run = RunDirectory(tmp_path / "runs" / "live")
    run.create()
    (run.path / "recipe.toml").write_text('name = "live"\n', encoding="utf-8")
    lock = run.acquire_lock()
    bells: list[float] = []
    app = make_app(run="live")
    app.bell = lambda: bells.append(time.monotonic())  # the terminal bell, counted
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            with EventWriter(run.events_path) as w:
                w.write("start", max_steps=10, resumed_from=None)
                w.write("step", step=1, max_steps=10, loss=2.0)
                await wait_for(pilot, lambda: _train_points(app) == 1, 10, "the first step")
                assert not bells  # nothing to ring for yet
                w.write("error", kind=kind, message="at step 2", hint="lower train.learning_rate")
                w.write("status", status="failed", message="failed")
            lock.release()
            await wait_for(pilot, lambda: not app.follower.attached.live, 10, "the end of the run")
            notes = [n.message for n in app._notifications if n.severity == "error"]
            assert len(bells) == 1 and len(notes) == 1 and words in notes[0] and "at step 2" in notes[0]
            await wait_for(pilot, lambda: app.screen.is_settled, 10, "the screen")
            assert "lower train.learning_rate" in str(app.screen.query_one("#problem").render())
    finally:
        lock.release()


async def test_without_a_recipe_the_quickstart_is_current_and_the_train_screen_says_so(make_app, recipes_dir):
    from tuitune.tui.app import quickstart_recipe

    first = quickstart_recipe(recipes_dir)
    assert first == recipes_dir / "quickstart.toml"
    app = make_app(start_mode="train", first_recipe=first)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "quickstart" in _screen_text(app), 10, "the quickstart on the Train screen")
        text = _screen_text(app)
        assert "Current recipe: quickstart" in text and "bundled quickstart" in text
        assert app.recipe.name == "quickstart" and app.recipe.train.learning_rate == 1e-3 and app.recipe_path == first
        # Visiting the Recipe screen keeps it; an edit makes it the user's recipe (the note goes).
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.current_mode == "recipe", 10, "the Recipe screen")
        await pilot.pause(0.5)
        # The form shows "all-linear" ticked; mounting it must not put the default list back.
        assert app.recipe.lora.target_modules == "all-linear"
        await pilot.press("f4")
        await wait_for(pilot, lambda: "bundled quickstart" in _screen_text(app), 10, "the note, still there")
        app.update_recipe({"train.learning_rate": 5e-4})
        await pilot.press("f3", "f4")
        await wait_for(pilot, lambda: "bundled quickstart" not in _screen_text(app), 10, "the note gone after an edit")
        assert "Current recipe: quickstart" in _screen_text(app)


async def test_without_a_quickstart_the_defaults_stay(make_app, tmp_path):
    app = make_app(start_mode="train", first_recipe=tmp_path / "missing.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "Current recipe" in _screen_text(app), 10, "the recipe line")
        assert "Current recipe: my-run" in _screen_text(app) and "bundled quickstart" not in _screen_text(app)


async def test_answers_sampled_while_training_show_under_the_chart(make_app, tiny_model_dir, tmp_path, trainers):
    """Trainer -> sample events -> Train screen: the latest answer to each prompt, with its step."""
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=4)
    prompts = ["Who made you?", "Where do you live?"]
    path = write_recipe(tmp_path / "sampled.toml", tiny_model_dir, data, tmp_path / "runs", "sampled", "lora",
                        train={"max_steps": 6, "logging_steps": 1, "save_steps": 0},
                        eval={"sample_every": 4, "sample_prompts": prompts})
    app = make_app(start_mode="train")
    async with app.run_test(size=(100, 30)) as pilot:
        run = await _start_from_ui(app, pilot, path, trainers)
        await wait_for(pilot, lambda: app.follower.attached.history.done is not None, TRAIN_TIMEOUT, "the run to finish")
        await wait_for(pilot, lambda: app.screen.is_settled, 10, "the last redraw")
        samples = events(run.path, "sample")
        assert [(e["step"], e["prompt"]) for e in samples] == [(4, p) for p in prompts] + [(6, p) for p in prompts]
        box = app.screen.query_one("#samples")
        assert box.display and box.border_title.startswith("Answers now")
        shown = str(box.render()).splitlines()
        assert len(shown) == 2
        for line, e in zip(shown, samples[-2:], strict=True):
            answer = " ".join(e["answer"].split())
            assert line.startswith("step 6") and e["prompt"] in line and answer[:20] in line
