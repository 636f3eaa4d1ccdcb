"""`tuitune data preview`: exit codes, the --json shape, the coloured rendering, no weights loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tiny_model import build_tokenizer

from tuitune.cli import main

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
