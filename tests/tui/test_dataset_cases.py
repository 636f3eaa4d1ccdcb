"""The Dataset screen on real-world data: a LLaMA-Factory folder's entries to pick, tool calls in the
rows and in the rendered row (with the fallback said), a .txt file's split, a Parquet file with a
binary column, and the problems of wrong types, multimodal rows and a row far longer than cutoff_len."""

from __future__ import annotations

import pytest
from conftest import REPO, wait_for
from dataset_helpers import lines_shown, settled, status, table
from textual.widgets import Select, TabbedContent

from tuitune.core.data.loader import TEXT_MODE_NOTES
from tuitune.core.data.tool_rendering import FALLBACK_NOTE, NATIVE_NOTE
from tuitune.tui.i18n_dataset import note_text
from tuitune.tui.widgets.data_problems import DataProblemsList
from tuitune.tui.widgets.dataset_entries import DatasetEntries

LLAMAFACTORY = REPO / "tests/data/llamafactory"
MIXED = REPO / "tests/data/mixed_problems.jsonl"


async def choose_entry(pilot, name: str) -> None:
    """Pick an entry in the Dataset entry list with the keyboard."""
    entries = pilot.app.screen.query_one(DatasetEntries)
    select = entries.query_one(Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    names = [e.name for e in entries.entries]
    await pilot.press("home", *["down"] * (names.index(name) + 1), "enter")  # the first line is the prompt
    await pilot.pause()


async def test_a_llamafactory_folder_lists_its_entries_to_pick(data_app):
    app = data_app(path=LLAMAFACTORY)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        entries = app.screen.query_one(DatasetEntries)
        assert entries.has_class("-shown") and entries.display
        assert [e.name for e in entries.entries][:3] == ["qa", "weather_tools", "chat_openai"]
        assert "choose one of its datasets" in status(app) and "qa, weather_tools" in status(app)
        options = [str(prompt) for prompt, _ in entries.query_one(Select)._options]
        assert "weather_tools  (sharegpt, tools.jsonl)" in options
        assert any(o.startswith("ranked  ✗ is preference data") for o in options)

        await choose_entry(pilot, "weather_tools")
        await settled(pilot)
        assert "entry weather_tools" in status(app) and "format sharegpt" in status(app) and "24 rows" in status(app)
        first = [str(c) for c in table(app).get_row_at(0)]
        assert first[1] == "Weather in Paris?"
        assert first[2] == '→ get_weather({"city": "Paris"})'

        await pilot.press("enter")  # the row as trained, tools and all
        masked = app.screen.query_one("#masked")
        await wait_for(pilot, lambda: masked.preview is not None, timeout=20, what="the rendered row")
        text = str(masked.render())
        assert note_text(FALLBACK_NOTE, "en") in text and "# Tools" in text and "<tool_response>" in text
        assert masked.preview.notes == [FALLBACK_NOTE]

        await pilot.press("escape", "ctrl+r")
        await pilot.pause()
        assert app.recipe.data.dataset == "weather_tools" and app.recipe.data.path == str(LLAMAFACTORY)


async def test_a_refused_entry_says_why(data_app):
    app = data_app(path=LLAMAFACTORY)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        await choose_entry(pilot, "from_hub")
        await settled(pilot)
        assert "entry 'from_hub': points to a remote dataset" in status(app)
        await choose_entry(pilot, "qa")
        await settled(pilot)
        assert "entry qa" in status(app) and "20 usable" in status(app)


async def test_a_text_file_shows_its_split(data_app, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("first\nsecond\nthird\n")
    app = data_app(path=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert "plain text: one example per line" in status(app) and "3 rows" in status(app)
        split = app.screen.field("data.text_split")
        assert split.display and not app.screen.field("data.columns").display
        split.editor.focus()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("end", "enter")  # auto, line, paragraph, file
        await settled(pilot)
        await wait_for(pilot, lambda: "1 rows" in status(app), what="one example per file")
        assert "one example per file" in status(app) and lines_shown(app) == ["1"]


async def test_a_binary_parquet_column_shows_as_a_description(data_app, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"instruction": ["a", None], "output": ["x", "y"], "blob": [b"\x00\x01", b"\xff"]}), path)
    app = data_app(path=path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        second = [str(c) for c in table(app).get_row_at(1)]
        assert '"blob": "<1 bytes>"' in second[1] and "row skipped" in second[-1]
        await pilot.press("down", "enter")
        await pilot.pause()
        assert "field 'instruction' is null" in str(app.screen.query_one("#masked").render())


async def test_problems_of_real_world_rows(data_app):
    app = data_app(path=MIXED)
    app.recipe.data.cutoff_len = 256
    async with app.run_test(size=(100, 30)) as pilot:
        await settled(pilot)
        assert "7 rows" in status(app) and "5 usable" in status(app)
        problems = [str(p) for p in app.screen.query_one(DataProblemsList).problems]
        assert problems[0] == 'line 1: \'messages\' turn 2 content is a number (42), kept as the text "42"'
        assert problems[2].startswith("line 3: 'messages' turn 2 (assistant) has no 'content'")
        assert problems[3] == "line 4: has image, audio or video content parts: only text is supported; row skipped"
        assert problems[4].startswith("line 6: ") and "far longer than cutoff_len 256" in problems[4]
        await pilot.press("3")
        assert app.screen.query_one(TabbedContent).active == "lengths"
        note = app.screen.query_one("#histogram").note
        assert "1 row longer than cutoff_len (256):" in note


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_data_note_has_its_words(lang):
    """Core's notes (English) are shown in the interface's words; a core note whose wording changed
    would fall through untranslated and fail here."""
    for note in [FALLBACK_NOTE, NATIVE_NOTE, *(n + " (data.text_split = auto)" for n in TEXT_MODE_NOTES.values())]:
        shown = note_text(note, lang)
        assert shown.endswith(" (data.text_split = auto)") == note.endswith(" (data.text_split = auto)")
        has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in shown)
        assert has_cjk == (lang == "zh"), shown
    numbers = "3 rows longer than cutoff_len (64): 900 tokens, 192 trained"
    assert note_text(numbers, lang) == numbers  # notes with figures stay as core wrote them
