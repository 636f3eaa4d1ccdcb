"""A value of the wrong type where text is expected, in every format and file kind: numbers and
booleans are kept as their text with a problem, null and containers skip the row; each problem names
the line and the field."""

from __future__ import annotations

import pytest
from data_files import row_lines, write_rows

from tuitune.core.data import load_examples

# format -> (a row with `v` where the trained text goes, how problems name that place)
ROWS = {
    "alpaca": (lambda v: {"instruction": "Add 2 and 2", "output": v}, "field 'output'"),
    "text": (lambda v: {"text": v}, "field 'text'"),
    "prompt-completion": (lambda v: {"prompt": "2+2=", "completion": v}, "field 'completion'"),
    "messages": (
        lambda v: {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": v}]},
        "'messages' turn 2",
    ),
    "sharegpt": (
        lambda v: {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": v}]},
        "'conversations' turn 2",
    ),
}
KEPT = [(4, 'is a number (4), kept as the text "4"', "4"), (2.5, 'is a number (2.5), kept as the text "2.5"', "2.5"),
        (True, 'is a boolean (true), kept as the text "true"', "true")]
SKIPPED = [(["4"], "is a list, expected a string"), ({"n": 4}, "is an object, expected a string")]
# A list where text goes means something in some formats: content parts, or prompt-completion turns.
PARTS = 'has content parts that are not text (expected {"type": "text", "text": ...}); row skipped'
LIST_PROBLEM = {
    "alpaca": "field 'output' is a list, expected a string; row skipped",
    "text": "field 'text' is a list, expected a string; row skipped",
    "prompt-completion": "'completion' turn 1 is a string, expected an object with role and content (or from and value); row skipped",
    "messages": "'messages' turn 2 " + PARTS,
    "sharegpt": "'conversations' turn 2 " + PARTS,
}


def trained_text(example) -> str:
    return example.text if example.text is not None else example.messages[-1]["content"]


def where(fmt: str) -> str:
    place = ROWS[fmt][1]
    return place + " content" if place.startswith("'") else place


@pytest.mark.parametrize("kind", ["jsonl", "json"])
@pytest.mark.parametrize("fmt", list(ROWS))
def test_wrong_types_in_json_files(tmp_path, fmt, kind):
    make = ROWS[fmt][0]
    values = [v for v, _, _ in KEPT] + [None] + [v for v, _ in SKIPPED]
    path = write_rows(tmp_path / f"d.{kind}", [make(v) for v in values])
    lines = row_lines(path, len(values))
    data = load_examples(path)
    assert data.format == fmt
    assert [trained_text(e) for e in data.examples] == [text for _, _, text in KEPT]
    assert [e.line for e in data.examples] == lines[: len(KEPT)]
    got = [(p.line, p.message) for p in data.problems]
    want = [(line, f"{where(fmt)} {msg}") for line, (_, msg, _) in zip(lines, KEPT, strict=False)]
    want += [(lines[len(KEPT) + 1], LIST_PROBLEM[fmt]), (lines[len(KEPT) + 2], f"{where(fmt)} {SKIPPED[1][1]}; row skipped")]
    null_line = lines[len(KEPT)]
    nulls = [g for g in got if g[0] == null_line]
    assert len(nulls) == 1 and nulls[0][1].endswith("row skipped")
    assert ("null" in nulls[0][1] or "no 'content'" in nulls[0][1] or "missing" in nulls[0][1])
    assert ROWS[fmt][1].split(" turn")[0] in nulls[0][1]
    assert [g for g in got if g[0] != null_line] == want


@pytest.mark.parametrize("fmt", list(ROWS))
@pytest.mark.parametrize(("value", "message", "kept"), [(4, KEPT[0][1], "4"), (True, KEPT[2][1], "true"), (["4"], "", None)])
def test_wrong_types_in_parquet_columns(tmp_path, fmt, value, message, kept):
    """A Parquet column has one type: the whole column is numbers, booleans or lists here."""
    make = ROWS[fmt][0]
    rows = [make(value), make(value)]
    if fmt in ("messages", "sharegpt"):  # every content of the struct column has the type
        key, content = ("messages", "content") if fmt == "messages" else ("conversations", "value")
        for r in rows:
            r[key][0][content] = value
    path = write_rows(tmp_path / "d.parquet", rows)
    data = load_examples(path, format=fmt)
    assert [trained_text(e) for e in data.examples] == ([kept, kept] if kept else [])
    assert all((p.line in (1, 2)) for p in data.problems)
    first = [p.message for p in data.problems if p.line == 1]
    if kept:
        assert f"{where(fmt)} {message}" in first
    else:
        assert first[-1] == (LIST_PROBLEM[fmt] if fmt not in ("messages", "sharegpt") else LIST_PROBLEM[fmt].replace("turn 2", "turn 1"))


@pytest.mark.parametrize("fmt", ["alpaca", "text", "prompt-completion"])
def test_a_null_in_a_parquet_text_column_skips_that_row(tmp_path, fmt):
    make = ROWS[fmt][0]
    path = write_rows(tmp_path / "d.parquet", [make("4"), make(None), make("5")])
    data = load_examples(path, format=fmt)
    assert [trained_text(e) for e in data.examples] == ["4", "5"]
    assert [(p.line, p.message) for p in data.problems] == [(2, f"{where(fmt)} is null ({fmt} rows need "
                                                             f"{ {'alpaca': 'instruction and output', 'text': 'text', 'prompt-completion': 'prompt and completion'}[fmt]}); row skipped")]


@pytest.mark.parametrize("fmt", ["messages", "sharegpt"])
def test_wrong_types_inside_json_cells_of_a_csv(tmp_path, fmt):
    make = ROWS[fmt][0]
    values = [4, True, None, ["4"]]
    path = write_rows(tmp_path / "d.csv", [make(v) for v in values])
    data = load_examples(path)
    assert data.format == fmt and [trained_text(e) for e in data.examples] == ["4", "true"]
    got = {p.line: p.message for p in data.problems}
    assert got[2] == f"{where(fmt)} {KEPT[0][1]}" and got[3] == f"{where(fmt)} {KEPT[2][1]}"
    assert "turn 2" in got[4] and got[4].endswith("row skipped")
    assert got[5] == LIST_PROBLEM[fmt]


def test_optional_nulls_are_absent_not_problems(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", [{"instruction": "Hi", "input": None, "system": None, "history": None, "output": "Hello"}])
    data = load_examples(path)
    assert data.problems == [] and data.examples[0].messages == [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}
    ]


def test_text_parts_with_value_are_read_like_text(tmp_path):
    row = {"messages": [
        {"role": "user", "content": [{"type": "text", "value": "Hi "}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": [{"type": "text", "value": "Hello."}]},
    ]}
    data = load_examples(write_rows(tmp_path / "d.jsonl", [row]))
    assert data.problems == []
    assert [m["content"] for m in data.examples[0].messages] == ["Hi there", "Hello."]
