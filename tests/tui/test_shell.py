"""The shell: modes by F-key, alt+digit and the command palette; errors as dialogs."""

from __future__ import annotations

import pytest
from conftest import wait_for, wait_for_error_dialog

from tuitune.tui.i18n import t
from tuitune.tui.screens import MODES
from tuitune.tui.widgets.mode_bar import ModeBar


async def test_function_keys_reach_every_mode(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.current_mode == "hardware"
        for mode in reversed(MODES):  # reversed: every key is pressed from another mode
            await pilot.press(mode.key)
            await wait_for(pilot, lambda m=mode: getattr(app.screen, "MODE", "") == m.name, what=mode.key)
            assert app.current_mode == mode.name
            # The mode bar of the shown screen marks this mode as current.
            bar = app.screen.query_one(ModeBar)
            assert f" {mode.key.upper()} {t('mode.' + mode.name)} " in str(bar.render())


async def test_ctrl_g_lists_the_modes_for_terminals_without_f_keys(make_app):
    app = make_app(start_mode="recipe")
    async with app.run_test() as pilot:  # 80x24
        await pilot.press("ctrl+g")  # from inside the form: an Input has the focus
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GoToDialog", what="go-to list")
        await pilot.press("7")
        await wait_for(pilot, lambda: app.current_mode == "export", what="export by digit")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "GoToDialog", what="go-to list")
        await pilot.press("up", "enter")  # the list starts on the current mode
        await wait_for(pilot, lambda: app.current_mode == "chat", what="chat by arrow and enter")
        await pilot.press("alt+3")  # terminals with the kitty keyboard protocol report alt+digit
        await wait_for(pilot, lambda: app.current_mode == "recipe", what="alt+3")


async def test_command_palette_opens_a_mode(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="palette")
        await pilot.press(*"go to chat")
        await pilot.pause(0.3)  # the palette searches in the background
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "chat", what="chat mode from the palette")


async def test_command_palette_offers_the_screens_own_commands(make_app, recipes_dir):
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CommandPalette", what="palette")
        await pilot.press(*"load")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "OpenRecipeDialog", what="open dialog")


async def test_run_option_opens_the_train_mode_naming_the_run(make_app):
    app = make_app(run="quickstart")  # no such run in the (empty) runs folder
    async with app.run_test(size=(100, 30)) as pilot:
        assert "quickstart" in await wait_for_error_dialog(pilot)
        assert app.current_mode == "train"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_mode_bar_fits_80_columns(lang):
    from rich.cells import cell_len

    text = ModeBar._render_modes("recipe", lang).plain
    assert cell_len(text) <= 80, text


async def test_chinese_interface(make_app):
    app = make_app(lang="zh")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "硬件" in str(app.screen.query_one(ModeBar).render())
        await wait_for(pilot, lambda: app.screen.query("FooterKey"), what="footer keys")
        footer_labels = {key.description for key in app.screen.query("FooterKey")}
        assert "退出" in footer_labels  # ctrl+q, translated


async def test_failed_worker_shows_the_error_dialog(make_app):
    from tuitune.core.errors import UserError

    app = make_app(start_mode="recipe")

    def fails() -> None:
        raise UserError("model.name_or_path: no such model", "check the name")

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.screen.run_worker(fails, thread=True, exit_on_error=False, group="test")
        shown = await wait_for_error_dialog(pilot)
        assert "no such model" in shown and "check the name" in shown
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.current_mode == "recipe" and type(app.screen).__name__ == "RecipeScreen",
            what="dialog closed",
        )


async def test_unexpected_worker_error_keeps_its_traceback_in_details(make_app):
    app = make_app(start_mode="recipe")

    def fails() -> None:
        raise ZeroDivisionError("division by zero")

    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.screen.run_worker(fails, thread=True, exit_on_error=False)
        # The dialog is the screen before its children are mounted: wait for the details too (a loaded machine).
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ErrorDialog" and app.screen.query("#details-text"),
                       what="error dialog")
        details = app.screen.query_one("#details-text").render()
        assert "Traceback" in str(details) and "fails" in str(details)
