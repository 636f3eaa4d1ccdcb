"""Hostile input reported row by row, never a lost file or a traceback (issue 17's data items): an
unterminated CSV quote, JSON nested too deeply in one row, a Parquet file with a binary column."""

from __future__ import annotations

import json

import pytest
from tiny_model import build_tokenizer

from tuitune.cli import main
from tuitune.core.data import count_rows, load_examples, read_page


def test_an_unterminated_csv_quote_is_reported_with_its_line(tmp_path):
    rows = ["instruction,output"] + [f"question {i},answer {i}" for i in range(1000)]
    rows[5] = 'question 4,"answer 4 has a quote that never closes'
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(rows) + "\n")
    data = load_examples(path)
    assert data.total_rows == 1000 and len(data.examples) == 999  # not 5 rows of which one swallowed the rest
    assert [(p.line, p.message.split(",")[0]) for p in data.problems] == [
        (6, 'a quote (") opened in this row is not closed properly')
    ]
    assert "lines 6-1001 would run together as one cell" in data.problems[0].message
    assert data.examples[4].line == 7 and data.examples[-1].messages[-1]["content"] == "answer 999"
    assert count_rows(path) == 1000


def test_a_stray_quote_closed_rows_later_is_reported_too(tmp_path):
    path = tmp_path / "stray.csv"
    path.write_text('instruction,output\na,"b\nc,d\ne,f" and more\ng,h\n')
    data = load_examples(path)
    assert [e.messages[0]["content"] for e in data.examples] == ["c", "e", "g"]  # line 4 alone is a (lenient) row
    assert [p.line for p in data.problems] == [2] and "lines 2-4 would run together" in data.problems[0].message


def test_a_quoted_multi_line_cell_is_still_one_cell(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text('instruction,output\n"two\nlines","fine ""quoted"" text"\nnext,row\n')
    data = load_examples(path)
    assert data.problems == [] and data.examples[0].messages[0]["content"] == "two\nlines"
    assert data.examples[0].messages[1]["content"] == 'fine "quoted" text' and data.examples[1].line == 4


DEEP = '{"instruction": "deep", "output": "x", "meta": ' + "[" * 5000 + "]" * 5000 + "}"
NESTED_200 = {"instruction": "nested", "output": "y", "meta": json.loads("[" * 200 + "]" * 200)}


@pytest.mark.parametrize("layout", ["jsonl", "json array", "json object of one array"])
def test_deeply_nested_json_is_a_problem_of_that_row(tmp_path, layout):
    good = [json.dumps({"instruction": "a", "output": "b"}), DEEP, json.dumps(NESTED_200), json.dumps({"instruction": "c", "output": "d"})]
    if layout == "jsonl":
        path = tmp_path / "deep.jsonl"
        path.write_text("\n".join(good) + "\n")
    elif layout == "json array":
        path = tmp_path / "deep.json"
        path.write_text("[\n" + ",\n".join(good) + "\n]\n")
    else:
        path = tmp_path / "wrapped.json"
        path.write_text('{"version": 1,\n "data": [\n' + ",\n".join(good) + "\n]}\n")
    data = load_examples(path)
    assert [e.messages[0]["content"] for e in data.examples] == ["a", "c"]
    first = 1 if layout == "jsonl" else (2 if layout == "json array" else 3)
    assert [(p.line, p.message) for p in data.problems] == [
        (first + 1, "lists or objects nested more than 100 levels deep; row skipped"),
        (first + 2, "lists or objects nested more than 100 levels deep; row skipped"),
    ]
    assert len(read_page(path).rows) == 4


def test_deeply_nested_json_in_a_csv_cell(tmp_path):
    path = tmp_path / "deep.csv"
    cell = '"' + ("[" * 3000 + "]" * 3000) + '"'
    path.write_text(f"messages\n{cell}\n" + '"[{""role"": ""user"", ""content"": ""hi""}, {""role"": ""assistant"", ""content"": ""yo""}]"\n')
    data = load_examples(path)
    assert len(data.examples) == 1
    assert [(p.line, p.message) for p in data.problems] == [
        (2, "field 'messages': lists or objects nested more than 100 levels deep; row skipped")
    ]


@pytest.fixture
def binary_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bin.parquet"
    table = pa.table({"instruction": ["a", None, "c"], "output": ["x", "y", "z"], "blob": [b"\x00\x01", b"\xff", b""]})
    pq.write_table(table, path)
    other = tmp_path / "bintext.parquet"
    pq.write_table(pa.table({"text": [b"hello", b"\xff\xfe"]}), other)
    return path, other


def test_a_binary_column_does_not_break_the_preview(binary_parquet, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path, text_bytes = binary_parquet
    tok = tmp_path / "tok"
    build_tokenizer().save_pretrained(tok)
    assert main(["data", "preview", str(path), "--model", str(tok)]) == 0
    out = capsys.readouterr().out
    assert '"blob": "<1 bytes>"' in out and "row skipped" in out  # the unusable row 2 is shown raw
    assert main(["data", "preview", str(path), "--model", str(tok), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["preview"]
    assert rows[1]["record"] == {"instruction": None, "output": "y", "blob": "<1 bytes>"}
    assert main(["data", "preview", str(text_bytes), "--model", str(tok), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["message"] for p in out["problems"]] == [
        "field 'text' is binary data (5 bytes), expected a string; row skipped",
        "field 'text' is binary data (2 bytes), expected a string; row skipped",
    ]
