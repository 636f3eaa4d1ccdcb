"""Hardware & Memory, driven by keys: the machine strip refreshed live, the plan for a model and
method against a (faked) GPU or a card size, the methods table, suggestions, and writing the
settings back into the current recipe."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import wait_for

from tuitune.core import hardware, memory
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import new_recipe
from tuitune.core.units import format_bytes
from tuitune.tui.widgets.methods_table import MethodsTable
from tuitune.tui.widgets.plan_controls import PlanControls

GiB = 2**30


class BusyFakeGpu(hardware.FakeGpuProbe):
    """A made-up GPU whose load climbs on every refresh, so a test can see the strip follow it."""

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self.refreshes = 0

    def refresh(self, gpus):
        self.refreshes += 1
        n = self.refreshes
        return [
            replace(g, utilization_pct=min(100, 10 * n), free_bytes=g.total_bytes - n * GiB, temperature_c=40 + n)
            for g in gpus
        ]


@pytest.fixture
def fake_gpu(monkeypatch):
    def use(spec: str) -> None:
        monkeypatch.setenv("TUITUNE_FAKE_GPU", spec)

    use("24GB")
    return use


def controls(app) -> PlanControls:
    return app.screen.query_one(PlanControls)


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def settled(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.screen.is_settled, timeout=20, what="the plan")


async def type_into(pilot, key: str, text: str) -> None:
    # The controls mount once the first complete frame is painted (app.after_first_frame).
    await wait_for(pilot, lambda: pilot.app.screen.query(PlanControls), timeout=20, what="the controls")
    editor = controls(pilot.app).row(key).editor
    editor.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *text)
    await pilot.pause()


async def choose(pilot, select, value) -> None:
    """Open a Select with enter and walk to `value` with the arrow keys, as a user would."""
    select.focus()
    await pilot.pause()
    values = [v for _, v in select._options]
    steps = values.index(value) - values.index(select.value)
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await wait_for(pilot, lambda: select.value == value, what=f"select {value}")


def expected(model: str, available: int | None, **values) -> memory.MemoryEstimate:
    recipe = new_recipe()
    recipe.model.name_or_path = model
    for key, value in values.items():
        recipe.set(key, value)
    return memory.estimate(model_spec(model), recipe, available)


async def test_the_strip_shows_the_gpu_and_follows_it_live(make_app, fake_gpu):
    app = make_app(start_mode="hardware")
    app.gpu_probe = BusyFakeGpu("24GB")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        strip = text_of(app, "#machine")
        assert "GPU 0 Fake GPU 24GB" in strip and "24.0 GiB" in strip and "CPU" in strip and "RAM" in strip
        # About once a second the strip re-reads the GPU in a worker; the busy fake climbs each time.
        await wait_for(pilot, lambda: app.gpu_probe.refreshes >= 2, timeout=10, what="two live refreshes")
        n = app.gpu_probe.refreshes
        await wait_for(pilot, lambda: f"util {10 * app.gpu_probe.refreshes}%" in text_of(app, "#machine"), what="util shown")
        assert f"{40 + app.gpu_probe.refreshes}°C" in text_of(app, "#machine")
        assert app.gpu_probe.refreshes >= n
        details = text_of(app, "#details")
        assert "FlashAttention-2" in details and "transformers" in details and "fake GPUs" in details


async def test_llama_3_8b_qlora_on_the_24gb_gpu(make_app, fake_gpu):
    free = hardware.probe(".").gpus[0].free_bytes
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        await type_into(pilot, "model.name_or_path", "llama-3-8b")
        await choose(pilot, controls(app).row("method.type").editor, "qlora")
        await settled(pilot)

        est = expected("llama-3-8b", free, **{"method.type": "qlora"})
        shown = text_of(app, "#verdict")
        assert "meta-llama/Meta-Llama-3-8B" in shown and "qlora 4-bit" in shown
        assert f"Training needs {format_bytes(est.train_peak_bytes)} of {format_bytes(free)} free on GPU 0: {est.verdict}" in shown
        # With the defaults (batch 4 x 1024 tokens, no checkpointing) the activations do not fit...
        assert est.verdict == "does not fit"

        breakdown = app.screen.query_one("#breakdown")
        assert dict(breakdown.parts) == {k: v for k, v in est.components.items() if v > 0}

        # Every method of the table agrees with the estimator on the same inputs.
        table = app.screen.query_one(MethodsTable)
        rows = {
            "full": {"method.type": "full"},
            "freeze": {"method.type": "freeze"},
            "lora": {"method.type": "lora"},
            "qlora-8bit": {"method.type": "qlora", "quantization.bits": 8},
            "qlora-4bit": {"method.type": "qlora", "quantization.bits": 4},
        }
        assert table.row_count == 5
        for i, (label, values) in enumerate(rows.items()):
            e = expected("llama-3-8b", free, **values)
            cells = [str(c) for c in table.get_row_at(i)]
            assert label in cells[0]
            assert format_bytes(e.train_peak_bytes) in cells and e.verdict in cells, (label, cells)
        assert table.verdicts()["full"] == "does not fit"
        assert "▸ qlora-4bit" in str(table.get_row_at(4)[0])  # the method in use is marked

        # ...and gradient checkpointing (the first suggestion) makes it fit: flip the switch.
        assert "gradient checkpointing" in app.screen.plan.suggestions[0].text
        controls(app).row("train.gradient_checkpointing").editor.focus()
        await pilot.press("space")
        await settled(pilot)
        est = expected("llama-3-8b", free, **{"method.type": "qlora", "train.gradient_checkpointing": True})
        assert est.verdict == "fits"
        assert f"Training needs {format_bytes(est.train_peak_bytes)} of {format_bytes(free)} free on GPU 0: fits" in text_of(
            app, "#verdict"
        )


async def test_without_a_gpu_pick_a_card_size_or_type_one(make_app, fake_gpu):
    fake_gpu("none")
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        assert "No NVIDIA GPU" in text_of(app, "#machine")
        await type_into(pilot, "model.name_or_path", "llama-3-8b")
        await choose(pilot, controls(app).row("method.type").editor, "qlora")
        await settled(pilot)
        est = expected("llama-3-8b", 24 * GiB, **{"method.type": "qlora"})
        assert f"{format_bytes(est.train_peak_bytes)} of 24.0 GiB on a 24 GB card: does not fit" in text_of(app, "#verdict")

        target = app.screen.query_one("#target")
        await choose(pilot, target, f"card:{80 * GiB}")
        await settled(pilot)
        assert f"{format_bytes(est.train_peak_bytes)} of 80.0 GiB on a 80 GB card: fits" in text_of(app, "#verdict")

        # Full fine-tuning of 8B needs far more than 40 GB: the typed size gives that verdict.
        await choose(pilot, controls(app).row("method.type").editor, "full")
        await choose(pilot, target, "custom")
        size = app.screen.query_one("#card-size")
        size.focus()
        await pilot.press("end", "ctrl+u", *"40")
        await settled(pilot)
        full = expected("llama-3-8b", 40 * GiB, **{"method.type": "full"})
        assert full.verdict == "does not fit"
        assert f"Training needs {format_bytes(full.train_peak_bytes)} of 40.0 GiB on a 40 GB card: does not fit" in text_of(
            app, "#verdict"
        )
        await pilot.press("ctrl+u", *"lots")
        await pilot.pause()
        assert "not a size" in text_of(app, "#card-error")  # said in place; the last plan stays


async def test_a_method_row_and_a_suggestion_change_the_settings_and_ctrl_r_the_recipe(make_app, fake_gpu):
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        await type_into(pilot, "model.name_or_path", "llama-3-8b")
        await settled(pilot)
        # LoRA on a 16-bit 8B base with batch 4 x 1024 does not fit 24 GB: suggestions are offered.
        assert app.screen.plan.estimate.verdict == "does not fit"
        suggestions = app.screen.query_one("#suggestions")
        plan_suggestions = app.screen.plan.suggestions
        first = next(i for i, s in enumerate(plan_suggestions) if s.changes and s.verdict != "does not fit")
        suggestions.focus()
        await pilot.press("home", *["down"] * first, "enter")
        await settled(pilot)
        for key, value in plan_suggestions[first].changes.items():
            assert controls(app).recipe.get(key) == value
        assert app.screen.plan.estimate.verdict != "does not fit"

        # Enter on the QLoRA 4-bit row of the methods table switches the method.
        table = app.screen.query_one(MethodsTable)
        table.focus()
        await pilot.press(*["down"] * (4 - table.cursor_row), "enter")
        await settled(pilot)
        assert controls(app).recipe.method.type == "qlora" and controls(app).recipe.quantization.bits == 4
        assert app.recipe.method.type == "lora"  # nothing written yet...
        assert "differ from the current recipe" in text_of(app, "#pending")

        await pilot.press("ctrl+r")  # ...until ctrl+r
        await pilot.pause()
        # The alias goes into the recipe as the hub id training can download.
        assert app.recipe.model.name_or_path == "meta-llama/Meta-Llama-3-8B" and app.recipe.method.type == "qlora"
        for key, value in plan_suggestions[first].changes.items():
            if key != "method.type":
                assert app.recipe.get(key) == value
        assert "Same as the current recipe" in text_of(app, "#pending")

        await pilot.press("f3")  # the Recipe form shows what was written
        await wait_for(pilot, lambda: app.current_mode == "recipe", what="recipe screen")
        await pilot.pause()
        form = app.screen.query_one("#recipe-form")
        assert form.row("method.type").editor.value == "qlora"
        assert form.row("model.name_or_path").editor.value == "meta-llama/Meta-Llama-3-8B"


async def test_the_controls_start_from_the_recipe_loaded_in_the_recipe_screen(make_app, fake_gpu, recipes_dir):
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.load_file(recipes_dir / "llama3-8b-qlora-24gb.toml")
        await pilot.pause()
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.current_mode == "hardware", what="hardware screen")
        await settled(pilot)
        recipe = controls(app).recipe
        assert recipe.model.name_or_path == app.recipe.model.name_or_path
        assert recipe.method.type == "qlora"
        assert controls(app).row("train.batch_size").editor.value == str(app.recipe.train.batch_size)
        assert "qlora 4-bit" in text_of(app, "#verdict")


async def test_an_unknown_model_is_said_in_place(make_app, fake_gpu):
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        await type_into(pilot, "model.name_or_path", "no-such-model-anywhere")
        await settled(pilot)
        assert "Cannot estimate" in text_of(app, "#verdict")
        assert type(app.screen).__name__ == "HardwareScreen"  # no error dialog


async def test_model_names_complete_from_the_catalog(make_app, fake_gpu):
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "model.name_or_path", "qwen2.5-7")
        editor = controls(app).row("model.name_or_path").editor
        await wait_for(pilot, lambda: editor._suggestion == "qwen2.5-7b", what="a suggestion")
        await pilot.press("right")  # accepts it
        assert editor.value == "qwen2.5-7b"
        await settled(pilot)
        assert "Qwen/Qwen2.5-7B" in text_of(app, "#verdict")


async def test_several_gpus_offer_one_run_across_all(make_app, fake_gpu):
    fake_gpu("2xA100")
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        target = app.screen.query_one("#target")
        assert [v for _, v in target._options][:3] == ["gpu:0", "gpu:1", "all"]
        await choose(pilot, target, "all")
        await settled(pilot)
        assert "free per GPU (the fullest of 2)" in text_of(app, "#verdict")
        assert app.screen.plan.estimate.setup.n_gpus == 2


async def test_ctrl_f_goes_to_the_suggestions_and_enter_applies_one(make_app, fake_gpu):
    fake_gpu("none")
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        await type_into(pilot, "model.name_or_path", "llama-3-8b")
        await choose(pilot, controls(app).row("method.type").editor, "qlora")
        await settled(pilot)
        assert app.screen.plan.estimate.verdict == "does not fit"
        first = app.screen.plan.suggestions[0]
        assert first.verdict == "fits" and first.changes == {"train.gradient_checkpointing": True}
        await pilot.press("ctrl+f")
        suggestions = app.screen.query_one("#suggestions")
        assert suggestions.has_focus and suggestions.highlighted == 0
        assert suggestions.region.y < 24  # scrolled into view at 80x24
        await pilot.press("enter")
        await settled(pilot)
        assert controls(app).row("train.gradient_checkpointing").editor.value is True
        est = expected("llama-3-8b", 24 * GiB, **{"method.type": "qlora", "train.gradient_checkpointing": True})
        assert f"{format_bytes(est.train_peak_bytes)} of 24.0 GiB on a 24 GB card: fits" in text_of(app, "#verdict")
        assert "It fits as it is" in str(suggestions.get_option_at_index(0).prompt)
        assert "3 settings differ" in text_of(app, "#pending")


async def test_controls_are_built_after_the_first_frame_and_take_focus(make_app, monkeypatch):
    """The opening screen paints first (its footer with ^q Quit, nothing focused), then builds the
    controls and focuses the model field (bench/cold_start.py)."""
    from tuitune.tui.screens.hardware import HardwareScreen

    mounted_after_frame = []
    mount = HardwareScreen._mount_controls

    async def recording(self):
        mounted_after_frame.append(self.app.first_frame_shown)
        await mount(self)

    monkeypatch.setattr(HardwareScreen, "_mount_controls", recording)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: bool(app.screen.query("#controls")), 30, "the controls")
        assert mounted_after_frame == [True]
        editor = controls(app).row("model.name_or_path").editor
        await wait_for(pilot, lambda: app.focused is editor, 10, "the model field focused")
        late = []
        app.after_first_frame(lambda: late.append(True))  # after the first frame: at the next refresh
        await wait_for(pilot, lambda: late == [True], 10, "a callback asked for after the first frame")
