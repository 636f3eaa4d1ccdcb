"""The memory verdict beside the form: the real estimator, fed by the form, updated as values change."""

from __future__ import annotations

import pytest
from conftest import wait_for

from tuitune.core import memory
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import load_recipe
from tuitune.core.units import format_bytes
from tuitune.tui.widgets.recipe_form import RecipeForm


async def settled_text(pilot) -> str:
    """The panel's text once it answers for exactly what the form holds now."""
    panel = pilot.app.screen.query_one("#memory")
    form = pilot.app.screen.query_one(RecipeForm)
    await wait_for(
        pilot, lambda: panel.last_requested == form.recipe and panel.is_current, what="memory estimate"
    )
    return str(panel.render())


def expected_peak(recipe, available=None) -> memory.MemoryEstimate:
    return memory.estimate(model_spec(recipe.model_path), recipe, available)


async def load(pilot, path) -> None:
    pilot.app.screen.load_file(path)
    await pilot.pause()


async def test_panel_shows_the_estimate_for_the_loaded_recipe_and_follows_edits(
    make_app, recipes_dir, monkeypatch
):
    monkeypatch.delenv("TUITUNE_FAKE_GPU", raising=False)
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        await load(pilot, recipes_dir / "quickstart.toml")
        recipe = load_recipe(recipes_dir / "quickstart.toml")[0]
        shown = await settled_text(pilot)
        assert format_bytes(expected_peak(recipe).train_peak_bytes) in shown

        editor = app.screen.query_one(RecipeForm).row("data.cutoff_len").editor
        editor.focus()
        await pilot.press("end", "ctrl+u", *"4096")
        await pilot.pause()
        recipe.data.cutoff_len = 4096
        longer = expected_peak(recipe).train_peak_bytes
        shown = await settled_text(pilot)
        assert format_bytes(longer) in shown  # a longer sequence needs more memory, and the panel says so


async def test_verdict_against_a_faked_24gb_gpu(make_app, recipes_dir, monkeypatch):
    monkeypatch.setenv("TUITUNE_FAKE_GPU", "24GB")
    from tuitune.core.hardware import probe

    free = probe().gpus[0].free_bytes
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        await load(pilot, recipes_dir / "llama3-8b-qlora-24gb.toml")
        recipe = load_recipe(recipes_dir / "llama3-8b-qlora-24gb.toml")[0]
        est = expected_peak(recipe, free)
        shown = await settled_text(pilot)
        assert "GPU 0" in shown and format_bytes(free) in shown
        assert f"free: {est.verdict}" in shown

        # Full fine-tuning of an 8B model does not fit 24 GB: the verdict turns as the method changes.
        form = app.screen.query_one(RecipeForm)
        form.row("method.type").editor.value = "full"
        await wait_for(pilot, lambda: form.recipe.method.type == "full", what="method changed")
        recipe.method.type = "full"
        assert expected_peak(recipe, free).verdict == "does not fit"
        shown = await settled_text(pilot)
        assert "free: does not fit" in shown


async def test_an_unknown_model_is_reported_in_the_panel_not_as_a_crash(make_app):
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        editor = app.screen.query_one(RecipeForm).row("model.name_or_path").editor
        editor.focus()
        await pilot.press("end", "ctrl+u", *"no-such-model-anywhere")
        await pilot.pause()
        shown = await settled_text(pilot)
        assert "Cannot estimate" in shown
        assert type(app.screen).__name__ == "RecipeScreen"  # no error dialog for a half-typed name


@pytest.mark.parametrize("lang,word", [("zh", "训练")])
async def test_panel_in_chinese(make_app, lang, word):
    app = make_app(lang=lang, start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        assert word in await settled_text(pilot)
