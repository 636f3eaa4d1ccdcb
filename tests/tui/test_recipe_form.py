"""The recipe form, driven by keys: sections per method, inline errors, guidance, load, save, diff."""

from __future__ import annotations

import pytest
from conftest import wait_for

from tuitune.core.recipe import FIELDS, METHODS, PROMPT_METHODS, load_recipe
from tuitune.tui.widgets.field_row import FieldRow
from tuitune.tui.widgets.recipe_form import RecipeForm


def form(app) -> RecipeForm:
    return app.screen.query_one(RecipeForm)


def row(app, key: str) -> FieldRow:
    return form(app).row(key)


def visible(app, key: str) -> bool:
    return row(app, key).display


async def type_into(pilot, key: str, text: str) -> None:
    """Focus a field's input, clear it and type `text`, as a user would."""
    editor = row(pilot.app, key).editor
    editor.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *text)
    await pilot.pause()


async def choose(pilot, key: str, value) -> None:
    """Open a field's Select with enter, move to `value` with the arrow keys, confirm with enter."""
    spec = FIELDS[key]
    select = row(pilot.app, key).editor
    select.focus()
    await pilot.pause()
    steps = list(spec.choices).index(value) - list(spec.choices).index(select.value)
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")
    await wait_for(pilot, lambda: select.value == value, what=f"{key} = {value}")


def screen_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query("Static, Label"))


@pytest.fixture
def recipe_app(make_app):
    return lambda lang="en": make_app(lang=lang, start_mode="recipe")


async def test_sections_follow_the_method(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        # Visit every method by keyboard and check which optional sections the form shows.
        for method in ["full", "qlora", "lora", "prompt", "freeze", "p-tuning"]:
            await choose(pilot, "method.type", method)
            await pilot.pause()
            assert visible(app, "lora.r") == (method in ("lora", "qlora")), method
            assert visible(app, "quantization.bits") == (method == "qlora"), method
            assert visible(app, "prompt.num_virtual_tokens") == (method in PROMPT_METHODS), method
            assert visible(app, "freeze.trainable_layers") == (method == "freeze"), method
            assert visible(app, "train.learning_rate")  # common fields always show
            assert app.screen.query_one("#section-lora").display == (method in ("lora", "qlora"))
        assert visible(app, "prompt.encoder_hidden_size")  # p-tuning's own field
        assert set(METHODS) >= {"full", "qlora"}


async def test_quantization_type_hides_for_8_bits(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await choose(pilot, "method.type", "qlora")
        assert visible(app, "quantization.quant_type")
        await choose(pilot, "quantization.bits", 8)
        assert not visible(app, "quantization.quant_type")
        assert form(app).recipe.quantization.bits == 8


async def test_bad_value_shows_the_schema_message_inline_and_recovers(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "lora.r", "0")
        r = row(app, "lora.r")
        assert r.has_class("-invalid")
        error = r.error_text
        assert "0 is out of range" in error and FIELDS["lora.r"].allowed() in error
        assert form(app).recipe.lora.r == 8  # the recipe keeps the last good value
        assert "1 problem" in str(app.screen.query_one("#recipe-status").render())
        assert "lora.r: 0 is out of range" in str(
            app.screen.query_one("#problems").get_option_at_index(0).prompt
        )

        await type_into(pilot, "lora.r", "abc")
        assert '"abc" is not valid' in r.error_text

        await type_into(pilot, "lora.r", "16")
        assert not r.has_class("-invalid")
        assert form(app).recipe.lora.r == 16
        assert "valid" in str(app.screen.query_one("#recipe-status").render())


async def test_cross_field_problem_is_listed_and_jumps_to_its_field(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "train.eval_steps", "10")  # needs data.val_size > 0
        problems = app.screen.query_one("#problems")
        assert "train.eval_steps" in str(problems.get_option_at_index(0).prompt)
        problems.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is row(app, "train.eval_steps").editor, what="jump")


async def test_guidance_follows_focus(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        guidance = app.screen.query_one("#guidance")
        for key in ("lora.r", "train.learning_rate", "method.type"):
            row(app, key).editor.focus()
            await pilot.pause()
            shown = str(guidance.render())
            assert FIELDS[key].text("en")[:60] in shown, key
            assert FIELDS[key].allowed() in shown, key
        row(app, "lora.r").editor.focus()
        await pilot.pause()
        assert app.focused.cursor_blink is False  # tests freeze the cursor (blink=False)


async def test_guidance_and_labels_in_chinese(recipe_app):
    app = recipe_app(lang="zh")
    async with app.run_test(size=(100, 30)) as pilot:
        row(app, "lora.r").editor.focus()
        await pilot.pause()
        shown = str(app.screen.query_one("#guidance").render())
        assert FIELDS["lora.r"].text("zh")[:30] in shown
        assert "整数 1..4096" in shown  # the allowed range, in Chinese
        assert str(row(app, "lora.r").query_one(".field-label").render()) == FIELDS["lora.r"].title("zh")
        assert str(app.screen.query_one("#section-train").render()) == "训练"


async def test_list_field_all_linear_switch(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "lora.target_modules", "q_proj, k_proj, v_proj")
        assert form(app).recipe.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
        box = row(app, "lora.target_modules").query_one("Checkbox")
        box.focus()
        await pilot.press("space")
        await pilot.pause()
        assert form(app).recipe.lora.target_modules == "all-linear"
        assert row(app, "lora.target_modules").editor.disabled
        await pilot.press("space")
        await pilot.pause()
        assert form(app).recipe.lora.target_modules == ["q_proj", "k_proj", "v_proj"]


async def test_table_field_reads_key_value_pairs(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "data.columns", "instruction=question, output=answer")
        assert form(app).recipe.data.columns == {"instruction": "question", "output": "answer"}


async def test_switch_toggles_a_bool(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        row(app, "train.gradient_checkpointing").editor.focus()
        await pilot.press("space")
        await pilot.pause()
        assert form(app).recipe.train.gradient_checkpointing is True
        assert "train.gradient_checkpointing" in app.screen.query_one("#diff").changed_keys


# ---------------------------------------------------------------------- load, save, diff


async def open_recipe_by_list(pilot, name: str) -> None:
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "OpenRecipeDialog", what="open dialog")
    files = pilot.app.screen.query_one("#files")
    index = next(i for i in range(files.option_count) if files.get_option_at_index(i).id.endswith(name))
    files.focus()
    await pilot.press("home", *["down"] * index, "enter")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RecipeScreen", what="dialog closed")


async def test_load_a_recipe_fills_the_form(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_recipe_by_list(pilot, "quickstart.toml")
        expected, problems = load_recipe(recipes_dir / "quickstart.toml")
        assert not problems
        assert form(app).recipe == expected
        assert row(app, "name").editor.value == "quickstart"
        assert row(app, "data.cutoff_len").editor.value == "256"
        assert row(app, "train.learning_rate").editor.value == "0.001"
        assert row(app, "lora.target_modules").query_one("Checkbox").value is True  # "all-linear"
        assert row(app, "data.packing").editor.value is True
        assert "quickstart.toml" in str(app.screen.query_one("#recipe-status").render())
        assert app.screen.query_one("#diff").changed_keys == []


async def test_load_by_typed_path_and_qlora_recipe_shows_quantization(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "OpenRecipeDialog", what="open dialog")
        app.screen.query_one("#path").focus()
        await pilot.press(*str(recipes_dir / "llama3-8b-qlora-24gb.toml"), "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RecipeScreen", what="dialog closed")
        assert form(app).recipe.method.type == "qlora"
        assert visible(app, "quantization.bits") and visible(app, "lora.r")


async def test_diff_lists_the_changed_keys(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_recipe_by_list(pilot, "quickstart.toml")
        await type_into(pilot, "lora.r", "32")
        await type_into(pilot, "train.learning_rate", "2e-4")
        diff = app.screen.query_one("#diff")
        assert diff.changed_keys == ["lora.r", "train.learning_rate"]
        shown = str(diff.render())
        assert "lora.r: 8 → 32" in shown and "train.learning_rate: 0.001 → 0.0002" in shown
        assert "2 changed" in str(app.screen.query_one("#recipe-status").render())


async def save_as(pilot, name: str) -> None:
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "PromptDialog", what="save prompt")
    await pilot.press("end", "ctrl+u", *name, "enter")
    await pilot.pause()


async def test_save_writes_toml_that_loads_back_equal(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_recipe_by_list(pilot, "quickstart.toml")
        await type_into(pilot, "lora.r", "16")
        await type_into(pilot, "name", "my-identity")
        await save_as(pilot, "my-identity.toml")
        target = recipes_dir / "my-identity.toml"
        await wait_for(pilot, target.exists, what="saved file")
        saved, problems = load_recipe(target)
        assert not problems
        assert saved == form(app).recipe
        assert saved.lora.r == 16 and saved.name == "my-identity"
        await wait_for(pilot, lambda: app.screen.query_one("#diff").changed_keys == [], what="diff reset")
        assert str(target) in str(app.screen.query_one("#recipe-status").render())


async def test_saving_a_copy_renames_the_run_that_followed_the_file_name(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_recipe_by_list(pilot, "quickstart.toml")  # name = "quickstart"
        await save_as(pilot, "identity-r16.toml")
        target = recipes_dir / "identity-r16.toml"
        await wait_for(pilot, target.exists, what="saved file")
        assert load_recipe(target)[0].name == "identity-r16"  # not runs/quickstart again
        assert row(app, "name").editor.value == "identity-r16"
        assert load_recipe(recipes_dir / "quickstart.toml")[0].name == "quickstart"


async def test_overwrite_asks_first(recipe_app, recipes_dir):
    app = recipe_app()
    target = recipes_dir / "quickstart.toml"
    original = target.read_text()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_recipe_by_list(pilot, "quickstart.toml")
        await type_into(pilot, "lora.r", "64")
        await save_as(pilot, "quickstart.toml")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="overwrite question")
        assert "exists" in str(app.screen.query_one("#message").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RecipeScreen", what="dialog closed")
        assert target.read_text() == original

        await save_as(pilot, "quickstart.toml")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="overwrite question")
        await pilot.press("y")
        await wait_for(pilot, lambda: load_recipe(target)[0].lora.r == 64, what="overwritten file")


async def test_saving_a_recipe_with_problems_asks_first(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "train.eval_steps", "10")  # a cross-field problem
        await save_as(pilot, "broken.toml")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="problems question")
        assert "train.eval_steps" in str(app.screen.query_one("#message").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not (recipes_dir / "broken.toml").exists()


async def test_save_rejects_a_name_without_toml(recipe_app, recipes_dir):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await save_as(pilot, "notes.txt")
        assert type(app.screen).__name__ == "PromptDialog"
        assert ".toml" in str(app.screen.query_one("#error").render())


async def test_loading_over_unsaved_changes_asks_first(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await type_into(pilot, "lora.r", "4")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="discard question")
        await pilot.press("n")
        await pilot.pause()
        assert form(app).recipe.lora.r == 4


async def test_command_palette_jumps_to_a_field(recipe_app):
    app = recipe_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="palette")
        await pilot.press(*"lora.dropout")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: app.focused is row(app, "lora.dropout").editor, what="focus on lora.dropout"
        )
        assert FIELDS["lora.dropout"].text("en")[:40] in str(app.screen.query_one("#guidance").render())
