"""Choosing GPUs in the app: marking GPU rows on Hardware & Memory (space) plans for them and writes
train.gpus into the recipe; the Recipe form edits the field; the Train screen shows the GPUs a run
uses and each one's memory. GPUs are fake (core's FakeGpuProbe behind app.gpu_probe)."""

from __future__ import annotations

import pytest
from conftest import wait_for

from tuitune.core.hardware import FakeGpuProbe
from tuitune.core.memory.fit_plan import plan
from tuitune.core.models.spec import model_spec
from tuitune.core.runs import EventWriter, RunDirectory
from tuitune.tui.widgets.machine_panel import MachinePanel
from tuitune.tui.widgets.run_devices import RunDevices

GiB = 2**30
FOUR_ONE_BUSY = "4xA100,busy=1:38GB"


def fake_machine(app, spec: str = FOUR_ONE_BUSY):
    app.gpu_probe = FakeGpuProbe(spec)
    return app


async def settled(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.screen.is_settled, timeout=30, what="the plan")


async def mark(pilot, *rows: int) -> None:
    """Focus the GPU strip and press space on these rows (cursor moved with the arrow keys)."""
    panel = pilot.app.screen.query_one(MachinePanel)
    panel.focus()
    await pilot.pause()
    for row in rows:
        steps = row - panel.cursor
        await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "space")
    await pilot.pause()
    await settled(pilot)


async def test_marked_gpus_are_planned_for_and_written_into_the_recipe(make_app):
    app = fake_machine(make_app(start_mode="hardware"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        screen = app.screen
        await mark(pilot, 0, 2)
        target = screen.controls.target
        assert (target.kind, target.indices, target.n_gpus) == ("chosen", (0, 2), 2)
        # The verdict, the largest batch and the suggestions are the planner's for those two GPUs.
        gpus = FakeGpuProbe(FOUR_ONE_BUSY).read().gpus
        recipe = screen.planned_recipe
        want = plan(model_spec(recipe.model_path), recipe, min(gpus[0].free_bytes, gpus[2].free_bytes), n_gpus=2)
        assert screen.plan.max_batch == want.max_batch and screen.plan.estimate.train_peak_bytes == want.estimate.train_peak_bytes
        verdict = str(screen.query_one("#verdict").render())
        assert "free on GPU 0, 2" in verdict and "with 2 GPUs in one run" in verdict
        assert "chosen for the run: GPU 0, 2" in str(screen.query_one(MachinePanel).render())
        assert app.recipe.train.gpus == "auto"  # nothing written behind the user's back
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.recipe.train.gpus == [0, 2]
        # Unmarking both goes back to auto and to the roomiest single GPU.
        await mark(pilot, 0, 2)
        assert screen.controls.recipe.train.gpus == "auto" and screen.controls.target.kind == "gpu"


async def test_a_busy_gpu_chosen_is_planned_against_its_free_memory(make_app):
    app = fake_machine(make_app(start_mode="hardware"), "2xA100,busy=1:70GB")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        model = app.screen.controls.row("model.name_or_path").editor
        model.focus()
        await pilot.press("end", "ctrl+u", *"llama-3-8b")
        await pilot.pause(0.5)
        await settled(pilot)
        assert app.screen.plan.estimate.verdict == "fits"  # on the idle GPU 0
        await mark(pilot, 1)
        assert app.screen.plan.estimate.verdict == "does not fit"  # 9.6 GiB free on GPU 1
        assert app.screen.plan.suggestions, "what would make it fit on the GPU chosen"
        panel = str(app.screen.query_one(MachinePanel).render())
        assert "python3[40001]" in panel and "chosen for the run: GPU 1" in panel


async def test_the_recipe_marks_its_gpus_and_the_form_edits_the_field(make_app):
    app = fake_machine(make_app(start_mode="recipe"))
    async with app.run_test(size=(100, 30)) as pilot:
        row = app.screen.query_one("#field-train-gpus")
        await wait_for(pilot, lambda: row.is_mounted, what="the form")
        auto = row.query_one(".field-or")
        assert auto.value is True and row.editor.disabled  # "auto" by default
        auto.value = False
        await pilot.pause()
        row.editor.focus()
        await pilot.press(*"3, 3")
        await pilot.pause()
        # The last good value ("3", typed on the way) stays in the recipe while the text is wrong.
        assert "GPU 3 is listed twice" in row.error_text and app.recipe.train.gpus == [3]
        await pilot.press("backspace", "1")
        await pilot.pause()
        assert row.error_text == "" and app.recipe.train.gpus == [3, 1]
        app.switch_mode("hardware")
        await settled(pilot)
        assert app.screen.query_one(MachinePanel).chosen == [3, 1]
        assert app.screen.controls.target.indices == (3, 1)


def _run_on_two_gpus(tmp_path):
    """A run as a trainer on two GPUs writes it (the GPUs are not here: the events are)."""
    run = RunDirectory(tmp_path / "runs" / "two-gpus")
    run.create()
    (run.path / "recipe.toml").write_text('name = "two-gpus"\n', encoding="utf-8")
    device = {"reserved": 0, "total": 80 * GiB}
    with EventWriter(run.events_path) as w:
        w.write("start", time=1_700_000_000.0, max_steps=10, resumed_from=None, device="cuda", world_size=2,
                gpus=[0, 2], cuda_visible_devices="0,2", n_gpus=2, method="lora", model="Qwen/Qwen2.5-7B",
                num_train=960, num_eval=40, trainable_params=40_370_176, total_params=7_655_986_688, precision="bf16")
        w.write("status", time=1_700_000_000.0, status="training", message="training")
        for s, used in ((1, 12), (2, 30)):
            devices = [{**device, "rank": r, "gpu": g, "reserved": (used + r) * GiB, "allocated": used * GiB}
                       for r, g in enumerate((0, 2))]
            w.write("step", time=1_700_000_000.0 + 60 * s, step=s, max_steps=10, loss=2.0 - s / 10, lr=2e-4,
                    grad_norm=0.8, epoch=s / 10, tokens=8192 * s, tokens_per_s=4096.0, elapsed_s=60.0 * s,
                    eta_s=60.0 * (10 - s),
                    memory={"device": "cuda", "allocated": used * GiB, "peak": used * GiB, "devices": devices})
    run.update_status(status="stopped", step=2, max_steps=10)
    return run


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_train_shows_the_gpus_a_run_uses_and_their_memory(make_app, tmp_path, size):
    _run_on_two_gpus(tmp_path)
    app = make_app(run="two-gpus")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.screen.is_settled, 30, "the replay")
        text = str(app.screen.query_one(RunDevices).render())
        assert "GPUs 0, 2" in text
        assert "GPU 0 30.0 GiB/80.0 GiB" in text and "GPU 2 31.0 GiB/80.0 GiB" in text  # the latest step
