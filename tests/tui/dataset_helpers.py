"""Driving the Dataset screen in Pilot tests (the app itself: the `data_app` fixture in conftest): what
the status line and the rows table show, typing a path, waiting until everything about the open file
arrived."""

from __future__ import annotations

from conftest import wait_for

from tuitune.tui.widgets.rows_table import RowsTable


def status(app) -> str:
    return str(app.screen.query_one("#ds-status").render())


def table(app) -> RowsTable:
    return app.screen.query_one(RowsTable)


def lines_shown(app) -> list[str]:
    t = table(app)
    return [str(t.get_row_at(i)[0]) for i in range(t.row_count)]


async def settled(pilot, timeout: float = 30) -> None:
    def done() -> bool:
        screen = pilot.app.screen
        if not hasattr(screen, "is_settled"):  # a dialog over the screen: say what it says
            texts = [str(w.render()) for w in screen.query("Static")]
            raise AssertionError(f"{type(screen).__name__} over the dataset screen: {' | '.join(texts)}")
        return screen.is_settled

    await wait_for(pilot, done, timeout=timeout, what="the dataset screen")


async def open_path(pilot, path) -> None:
    """Type a path into the Dataset field, as a user would."""
    editor = pilot.app.screen.field("data.path").editor
    editor.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *str(path))
    await pilot.pause()


