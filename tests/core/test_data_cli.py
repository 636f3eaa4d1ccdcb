"""`tuitune data preview`: exit codes, the --json shape, the coloured rendering, no weights loaded; and
the real-world cases: tool calls (the fallback note said once), a LLaMA-Factory folder with --dataset,
preference data, wrong types, one-per-line text, long rows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from data_files import write_rows
from llamafactory_folder import write_llamafactory_folder
from tiny_model import build_tokenizer

from tuitune.cli import main
from tuitune.core.data.tool_rendering import FALLBACK_NOTE

BROKEN_LINES = [2, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok")
    build_tokenizer().save_pretrained(path)
    return str(path)


def preview_json(capsys, *args):
    code = main(["data", "preview", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_json_shape_for_a_file_full_of_broken_lines(repo_root, tok_dir, capsys):
    code, out = preview_json(capsys, str(repo_root / "tests/data/broken.jsonl"), "--model", tok_dir, "--rows", "3")
    assert code == 0
    assert {"format", "rows", "stats", "problems"} <= set(out)
    assert out["format"] == "alpaca" and out["rows"] == 13 and out["examples"] == 4
    assert [p["line"] for p in out["problems"]] == BROKEN_LINES
    assert all(set(p) == {"line", "message"} and p["message"] for p in out["problems"])
    assert out["stats"]["rows"] == 4 and out["stats"]["min"] <= out["stats"]["median"] <= out["stats"]["max"]
    assert [r["line"] for r in out["preview"]] == [1, 2, 4]
    assert out["preview"][1]["record"] is None and "invalid JSON" in out["preview"][1]["problems"][0]
    pieces = out["rendered"]["pieces"]
    assert "".join(p["text"] for p in pieces if p["trained"]) == "I am Tally.<|im_end|>"
    assert "".join(p["text"] for p in pieces).startswith("<|im_start|>user\nWho are you?")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("sharegpt.jsonl", "sharegpt"),
        ("messages.jsonl", "messages"),
        ("alpaca.csv", "alpaca"),
        ("prompt_completion.tsv", "prompt-completion"),
        ("text.txt", "text"),
        ("bom_crlf.jsonl", "alpaca"),
    ],
)
def test_each_format_previews_cleanly(repo_root, tok_dir, capsys, name, fmt):
    code, out = preview_json(capsys, str(repo_root / "tests/data" / name), "--model", tok_dir)
    problems = [p for p in out["problems"] if not (name == "alpaca.csv" and p["line"] == 5)]
    assert code == 0 and out["format"] == fmt and problems == []
    assert out["stats"]["rows"] == out["examples"] > 0


def test_row_cutoff_format_and_columns_options(repo_root, tok_dir, tmp_path, capsys):
    code, out = preview_json(capsys, str(repo_root / "tests/data/sharegpt.jsonl"), "--model", tok_dir, "--row", "2", "--cutoff-len", "20")
    rendered = out["rendered"]
    assert rendered["line"] == 2 and rendered["truncated"] and any(p["cut"] for p in rendered["pieces"])
    assert out["stats"]["over_cutoff"] == 3 and out["stats"]["cutoff_len"] == 20
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "answer": "Tally."}\n')
    code, out = preview_json(capsys, str(qa), "--model", tok_dir)
    assert code == 0 and out["format"] == "unknown" and "cannot tell the format" in out["problems"][0]["message"]
    code, out = preview_json(capsys, str(qa), "--model", tok_dir, "--columns", "prompt=question,completion=answer")
    assert out["format"] == "prompt-completion" and out["problems"] == []
    code, out = preview_json(capsys, str(repo_root / "tests/data/plain.jsonl"), "--model", tok_dir, "--format", "text")
    assert "field 'text' is missing" in out["problems"][0]["message"]


def test_unreadable_file_exits_2_with_one_line(tmp_path, tok_dir, capsys):
    assert main(["data", "preview", str(tmp_path / "nope.jsonl"), "--model", tok_dir]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.jsonl: no such file or folder" in err and "Traceback" not in err
    utf16 = tmp_path / "u.jsonl"
    utf16.write_bytes('{"text": "x"}\n'.encode("utf-16"))
    assert main(["data", "preview", str(utf16), "--model", tok_dir]) == 2
    assert "UTF-16" in capsys.readouterr().err
    assert main(["data", "preview", str(utf16), "--columns", "bogus=x"]) == 2
    assert "'bogus' is not a standard field name" in capsys.readouterr().err


def test_table_view_colours_trained_tokens(repo_root, tok_dir, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["data", "preview", str(repo_root / "tests/data/broken.jsonl"), "--model", tok_dir]) == 0
    out = capsys.readouterr().out
    assert "\x1b[1;32mI am Tally.<|im_end|>" in out  # bold green: trained
    assert "line 8: not valid UTF-8" in out and "Problems (11)" in out
    assert "Token lengths (cutoff_len 1024)" in out


def test_default_demo_tokenizer_loads_without_weights(repo_root):
    code = (
        "import sys, json; from tuitune.cli import main; "
        f"rc = main(['data', 'preview', {str(repo_root / 'recipes/data/identity.jsonl')!r}, '--json', '--rows', '1']); "
        "import re; print(json.dumps({'rc': rc, 'modeling': [m for m in sys.modules if re.search(r'\\.models\\.(?!auto\\.)\\w+\\.modeling_', m)]}), "
        "file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=300)
    out = json.loads(res.stdout)
    facts = json.loads(res.stderr.strip().splitlines()[-1])
    assert facts["rc"] == 0 and facts["modeling"] == []  # no model class (e.g. models.llama.modeling_llama) imported
    assert out["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and out["problems"] == []
    assert "SmolLM" in "".join(p["text"] for p in out["rendered"]["pieces"] if not p["trained"])  # its system prompt


def test_tool_rows_in_the_json_preview(tmp_path, tok_dir, capsys):
    folder = write_llamafactory_folder(tmp_path / "data")
    code, out = preview_json(capsys, str(folder / "tools.jsonl"), "--model", tok_dir, "--format", "sharegpt")
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
    code, out = preview_json(capsys, str(folder), "--dataset", "qa", "--model", tok_dir)
    assert code == 0 and out["dataset"] == "qa" and out["format"] == "alpaca" and out["examples"] == 20
    assert out["preview"][0]["messages"][0]["content"] == "What is 0 plus 0?"
    assert main(["data", "preview", str(folder), "--dataset", "ranked", "--model", tok_dir]) == 2
    err = capsys.readouterr().err
    assert "entry 'ranked': is preference data (ranking = true)" in err and "Traceback" not in err
    assert main(["data", "preview", str(folder), "--model", tok_dir]) == 2
    assert "choose one of its datasets" in capsys.readouterr().err


def test_preference_wrong_types_and_text_lines(tmp_path, tok_dir, capsys):
    pref = write_rows(tmp_path / "pref.jsonl", [{"prompt": "Q", "chosen": "a", "rejected": "b"}] * 3)
    code, out = preview_json(capsys, str(pref), "--model", tok_dir)
    assert code == 0 and out["examples"] == 0 and len(out["problems"]) == 1
    assert out["problems"][0]["line"] is None and out["problems"][0]["message"].startswith("this is preference data")

    typed = write_rows(tmp_path / "typed.jsonl", [{"instruction": "2+2", "output": 4}, {"instruction": "3+3", "output": None}])
    code, out = preview_json(capsys, str(typed), "--model", tok_dir)
    assert out["examples"] == 1 and out["problems"] == [
        {"line": 1, "message": 'field \'output\' is a number (4), kept as the text "4"'},
        {"line": 2, "message": "field 'output' is null (alpaca rows need instruction and output); row skipped"},
    ]

    lines = tmp_path / "lines.txt"
    lines.write_text("one\ntwo\nthree\n")
    code, out = preview_json(capsys, str(lines), "--model", tok_dir)
    assert out["examples"] == 3 and out["notes"] == ["plain text: one example per line (data.text_split = auto)"]
    code, out = preview_json(capsys, str(lines), "--model", tok_dir, "--text-split", "file")
    assert out["examples"] == 1 and out["preview"][0]["text"] == "one\ntwo\nthree"


def test_long_rows_and_chunks_in_the_json_preview(tmp_path, tok_dir, capsys):
    path = write_rows(tmp_path / "doc.jsonl", [{"text": " ".join(["fox"] * 600)}, {"text": "short"}])
    code, out = preview_json(capsys, str(path), "--model", tok_dir, "--cutoff-len", "64")
    assert [p["line"] for p in out["problems"]] == [1] and "far longer than cutoff_len 64: 64 trained" in out["problems"][0]["message"]
    assert any(n.startswith("1 row longer than cutoff_len (64):") for n in out["notes"])
    code, out = preview_json(capsys, str(path), "--model", tok_dir, "--cutoff-len", "64", "--chunk-long-text")
    assert out["problems"] == [] and any(n.startswith("1 long text split into") for n in out["notes"])
    assert out["stats"]["max"] <= 64
