"""`tuitune data preview --json` on the real-world cases: tool calls (and the fallback note, once), a
LLaMA-Factory folder with --dataset, preference data, wrong types, one-per-line text, long rows."""

from __future__ import annotations

import json

import pytest
from data_files import write_rows
from llamafactory_folder import write_llamafactory_folder
from tiny_model import build_tokenizer

from tuitune.cli import main
from tuitune.core.data.tool_rendering import FALLBACK_NOTE


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    build_tokenizer().save_pretrained(path)
    return str(path)


def preview(capsys, *args):
    code = main(["data", "preview", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_tool_rows_in_the_json_preview(tmp_path, tok_dir, capsys):
    folder = write_llamafactory_folder(tmp_path / "data")
    code, out = preview(capsys, str(folder / "tools.jsonl"), "--model", tok_dir, "--format", "sharegpt")
    assert code == 0 and out["problems"] == []
    assert out["notes"] == [FALLBACK_NOTE]
    first = out["preview"][0]
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    rendered = out["rendered"]
    assert rendered["notes"] == [FALLBACK_NOTE]
    trained = "".join(p["text"] for p in rendered["pieces"] if p["trained"])
    assert trained.startswith("<tool_call>\n") and "sunny\n</tool_response>" not in trained


def test_the_fallback_note_is_said_once_in_the_table_view(tmp_path, tok_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    folder = write_llamafactory_folder(tmp_path / "data")
    assert main(["data", "preview", str(folder / "tools.jsonl"), "--model", tok_dir]) == 0
    assert capsys.readouterr().out.count("does not render tools") == 1


def test_a_llamafactory_folder_with_dataset(tmp_path, tok_dir, capsys):
    folder = write_llamafactory_folder(tmp_path / "data")
    code, out = preview(capsys, str(folder), "--dataset", "qa", "--model", tok_dir)
    assert code == 0 and out["dataset"] == "qa" and out["format"] == "alpaca" and out["examples"] == 20
    assert out["preview"][0]["messages"][0]["content"] == "What is 0 plus 0?"
    assert main(["data", "preview", str(folder), "--dataset", "ranked", "--model", tok_dir]) == 2
    err = capsys.readouterr().err
    assert "entry 'ranked': is preference data (ranking = true)" in err and "Traceback" not in err
    assert main(["data", "preview", str(folder), "--model", tok_dir]) == 2
    assert "choose one of its datasets" in capsys.readouterr().err


def test_preference_wrong_types_and_text_lines(tmp_path, tok_dir, capsys):
    pref = write_rows(tmp_path / "pref.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}] * 3)
    code, out = preview(capsys, str(pref), "--model", tok_dir)
    assert code == 0 and out["examples"] == 0 and len(out["problems"]) == 1
    assert out["problems"][0]["line"] is None and out["problems"][0]["message"].startswith("this is preference data")

    typed = write_rows(tmp_path / "typed.jsonl", [{"instruction": "2+2", "output": 4}, {"instruction": "3+3", "output": None}])
    code, out = preview(capsys, str(typed), "--model", tok_dir)
    assert out["examples"] == 1 and out["problems"] == [
        {"line": 1, "message": 'field \'output\' is a number (4), kept as the text "4"'},
        {"line": 2, "message": "field 'output' is null (alpaca rows need instruction and output); row skipped"},
    ]

    lines = tmp_path / "lines.txt"
    lines.write_text("one\ntwo\nthree\n")
    code, out = preview(capsys, str(lines), "--model", tok_dir)
    assert out["examples"] == 3 and out["notes"] == ["plain text: one example per line (data.text_split = auto)"]
    code, out = preview(capsys, str(lines), "--model", tok_dir, "--text-split", "file")
    assert out["examples"] == 1 and out["preview"][0]["text"] == "one\ntwo\nthree"


def test_long_rows_and_chunks_in_the_json_preview(tmp_path, tok_dir, capsys):
    path = write_rows(tmp_path / "doc.jsonl", [{"text": " ".join(["fox"] * 600)}, {"text": "short"}])
    code, out = preview(capsys, str(path), "--model", tok_dir, "--cutoff-len", "64")
    assert [p["line"] for p in out["problems"]] == [1] and "far longer than cutoff_len 64: 64 trained" in out["problems"][0]["message"]
    assert any(n.startswith("1 row longer than cutoff_len (64):") for n in out["notes"])
    code, out = preview(capsys, str(path), "--model", tok_dir, "--cutoff-len", "64", "--chunk-long-text")
    assert out["problems"] == [] and any(n.startswith("1 long text split into") for n in out["notes"])
    assert out["stats"]["max"] <= 64
