"""Dataset, driven by keys: open a file, its format and row count, paging, a row as the model is
trained on it, the problems list jumping to rows, a big file that stays responsive, column mapping
and writing the choice back into the recipe."""

from __future__ import annotations

import asyncio
import json
import time

from conftest import REPO, wait_for
from dataset_helpers import lines_shown, open_path, settled, status, table
from textual.widgets import TabbedContent

from tuitune.core.data import label_mask_preview, load_examples, read_page
from tuitune.core.data.tokenizer import load_tokenizer_only
from tuitune.tui.screens.dataset import DatasetScreen
from tuitune.tui.widgets.data_problems import DataProblemsList
from tuitune.tui.widgets.masked_row import STYLE_TRAINED

IDENTITY = REPO / "recipes/data/identity.jsonl"
BROKEN = REPO / "tests/data/broken.jsonl"


def write_jsonl(path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Question {i + 1}?", "input": "", "output": f"Answer {i + 1}."}) + "\n")


async def test_open_the_identity_dataset(data_app):
    app = data_app(path="nothing-here.jsonl")
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert "no such file" in status(app)  # said in place, no dialog
        await open_path(pilot, IDENTITY)
        await settled(pilot)
        assert "format alpaca (detected)" in status(app) and "80 rows" in status(app) and "No problems" in status(app)
        assert "columns: instruction, input, output" in status(app)
        page = read_page(IDENTITY, limit=100)
        assert table(app).row_count == len(page.rows) == 80
        first = [str(c) for c in table(app).get_row_at(0)]
        assert first[:3] == ["1", "Who are you?", page.rows[0].example.messages[1]["content"]]
        assert "Rows 1-80 of 80" in str(app.screen.query_one("#rows-hint").render())


async def test_pages_turn_with_n_and_p(data_app, tmp_path):
    path = tmp_path / "250.jsonl"
    write_jsonl(path, 250)
    app = data_app(path=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert table(app).has_focus  # the rows answer the keys straight away
        assert lines_shown(app)[0] == "1" and table(app).row_count == 100
        await pilot.press("n")
        await wait_for(pilot, lambda: lines_shown(app)[0] == "101", what="page 2")
        await pilot.press("n")
        await wait_for(pilot, lambda: lines_shown(app)[0] == "201", what="page 3")
        assert table(app).row_count == 50 and "Rows 201-250 of 250" in str(app.screen.query_one("#rows-hint").render())
        await pilot.press("p")
        await wait_for(pilot, lambda: lines_shown(app)[0] == "101", what="back to page 2")
        assert table(app).cursor_row == 99  # going back lands on the row above where you were


async def test_a_row_as_trained_marks_the_trained_tokens(data_app, tiny_model_dir):
    app = data_app(path=IDENTITY)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        await pilot.press("down", "down", "enter")
        masked = app.screen.query_one("#masked")
        await wait_for(pilot, lambda: masked.preview is not None, timeout=20, what="the rendered row")
        assert app.screen.query_one(TabbedContent).active == "row"

        example = load_examples(IDENTITY, max_samples=3).examples[2]
        want = label_mask_preview(example, load_tokenizer_only(str(tiny_model_dir)), app.recipe.data.cutoff_len)
        assert masked.preview == want
        content = masked.render()
        text = str(content)
        body = text.index("\n\n") + 2  # after the heading and the colour legend
        trained = "".join(text[s.start : s.end] for s in content.spans if s.style == STYLE_TRAINED and s.start >= body)
        want_trained = "".join(p.text for p in want.pieces if p.trained and not p.cut)
        assert trained == want_trained
        assert example.messages[-1]["content"] in trained  # the reply is trained...
        assert example.messages[0]["content"] not in trained  # ...the question is not
        template = "the model's own" if want.template == "tokenizer" else want.template
        assert f"Line 3  chat template: {template} · {want.tokens} tokens, {want.trained_tokens} trained" in text

        await pilot.press("n")  # the next row, in place
        await wait_for(pilot, lambda: "Line 4" in str(masked.render()), what="row 4")
        await pilot.press("escape")
        assert app.screen.query_one(TabbedContent).active == "rows" and table(app).cursor_row == 3


async def test_problems_jump_to_their_rows(data_app):
    app = data_app(path=BROKEN)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert "13 rows" in status(app) and "4 usable" in status(app) and "11 problems" in status(app)
        await pilot.press("4")
        problems = app.screen.query_one(DataProblemsList)
        assert problems.has_focus
        listed = [str(p) for p in problems.problems]
        assert listed == [str(p) for p in load_examples(BROKEN).problems]
        target = next(i for i, p in enumerate(problems.problems) if p.line == 10)  # after the blank line 3
        await pilot.press("home", *["down"] * target, "enter")
        await wait_for(pilot, lambda: app.screen.query_one(TabbedContent).active == "rows", what="rows tab")
        await wait_for(pilot, lambda: lines_shown(app)[table(app).cursor_row] == "10", what="cursor on line 10")
        assert table(app).has_focus


async def test_a_big_file_shows_its_first_page_while_the_rest_is_checked(data_app, tmp_path):
    path = tmp_path / "big.jsonl"
    write_jsonl(path, 400_000)  # the whole-file check takes seconds; a page takes milliseconds
    app = data_app(path=path)
    arrived: list[tuple[str, int | None]] = []  # what the screen received, in order

    def hook(message) -> None:
        if isinstance(message, DatasetScreen.Paged) and message.page is not None:
            arrived.append(("page", message.page.offset))
        elif isinstance(message, (DatasetScreen.Scanned, DatasetScreen.Counted)):
            arrived.append((type(message).__name__, None))

    async def until(condition, what: str, timeout: float = 30) -> None:
        # Plain sleeps, not pilot.pause(): Pilot's waits walk every widget's queue, which is slow
        # while a worker thread holds the GIL, and would hide how fast the app itself answers.
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.01)

    async with app.run_test(size=(100, 30), message_hook=hook):
        screen = app.screen
        await until(lambda: table(app).row_count == 100, "the first page")
        assert screen.scan is None
        app.simulate_key("n")  # a key while the check runs
        await until(lambda: lines_shown(app)[0] == "101", "page 2")
        await until(lambda: screen.scan is not None, "the whole-file check", timeout=60)
        # Both pages were shown before the check finished: reading, paging and keys never waited for it.
        assert arrived.index(("page", 0)) < arrived.index(("page", 100)) < arrived.index(("Scanned", None))
        assert screen.rows == 400_000 and screen.scan.usable == 400_000
        assert "400,000 rows" in status(app) and "No problems" in status(app)

    # Opening another file stops the check of the one before.
    app = data_app(path=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: table(app).row_count == 100, timeout=20, what="the first page")
        checks = [w for w in app.workers if w.group == "data-check" and w.is_running]
        assert checks and app.screen.scan is None
        await open_path(pilot, IDENTITY)
        await wait_for(pilot, lambda: not any(w.is_running for w in checks), timeout=5, what="the old check to stop")
        await settled(pilot)
        assert "80 rows" in status(app)


async def test_format_override_columns_and_use_in_recipe(data_app, tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"A{i}."}) + "\n" for i in range(5)))
    app = data_app(path=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert "format unknown" in status(app) or "0 usable" in status(app)
        columns = app.screen.field("data.columns").editor
        columns.focus()
        await pilot.press(*"instruction=question, output=answer")
        await settled(pilot)
        await wait_for(pilot, lambda: "5 usable" in status(app), what="mapped columns")
        assert "format alpaca (detected)" in status(app)

        fmt = app.screen.field("data.format").editor
        fmt.focus()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("down", "enter")  # auto -> alpaca
        await settled(pilot)
        assert "format alpaca" in status(app) and "(detected)" not in status(app)
        assert "not in the recipe yet" in status(app)

        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.recipe.data.columns == {"instruction": "question", "output": "answer"}
        assert app.recipe.data.format == "alpaca" and app.recipe.data.path == str(path)
        assert "not in the recipe yet" not in status(app)
