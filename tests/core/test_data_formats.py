"""Format detection, normalization to messages, column mapping and the JSON layouts."""

from __future__ import annotations

import json

import pytest

from tuitune.core.data import detect_format, load_examples, normalize, parse_columns
from tuitune.core.errors import UserError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_alpaca_with_system_history_and_input():
    messages, problems = normalize(
        {"system": "Be brief.", "history": [["hi", "hello"]], "instruction": "Add", "input": "2+2", "output": "4"}, "alpaca"
    )
    assert problems == []
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Add\n\n2+2"},
        {"role": "assistant", "content": "4"},
    ]


def test_sharegpt_speaker_names_map_to_roles():
    row = {
        "conversations": [
            {"from": "system", "value": "You can call tools."},
            {"from": "human", "value": "Weather?"},
            {"from": "function_call", "value": '{"name": "weather"}'},
            {"from": "observation", "value": "sunny"},
            {"from": "gpt", "value": "It is sunny."},
        ]
    }
    messages, problems = normalize(row, "sharegpt")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert problems == []


def test_messages_with_openai_content_parts():
    row = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
                        {"role": "assistant", "content": "Hello."}]}
    messages, problems = normalize(row, "messages")
    assert messages[0] == {"role": "user", "content": "Hi there"} and problems == []


def test_prompt_completion_plain_and_conversational():
    messages, _ = normalize({"prompt": "2+2=", "completion": "4", "system": "Math."}, "prompt-completion")
    assert messages == [{"role": "system", "content": "Math."}, {"role": "user", "content": "2+2="}, {"role": "assistant", "content": "4"}]
    messages, _ = normalize(
        {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Yo"}]}, "prompt-completion"
    )
    assert messages == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]


def test_text_format_keeps_the_text():
    text, problems = normalize({"text": "Once upon a time."}, "text")
    assert text == "Once upon a time." and problems == []


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        ({"instruction": "a", "input": "", "output": "b"}, "alpaca"),
        ({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}, "sharegpt"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "messages"),
        ({"text": "a b"}, "text"),
        ({"prompt": "a", "completion": "b"}, "prompt-completion"),
    ],
)
def test_each_format_is_detected_from_a_file(tmp_path, row, fmt):
    assert detect_format(row) == fmt
    data = load_examples(write_jsonl(tmp_path / "d.jsonl", [row, row | {"extra": 1}]))
    assert data.format == fmt
    assert len(data.examples) == 2
    ex = data.examples[0]
    if fmt == "text":
        assert ex.text == "a b" and ex.messages is None
    else:
        assert [m["content"] for m in ex.messages] == ["a", "b"]
        assert [m["role"] for m in ex.messages] == ["user", "assistant"]


def test_format_override_wins_over_detection(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "hello", "prompt": "p", "completion": "c"}])
    assert load_examples(path).format == "prompt-completion"
    data = load_examples(path, format="text")
    assert data.format == "text" and data.examples[0].text == "hello"


def test_column_mapping_renames_row_and_turn_fields(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Who?", "answer": "Tally."}])
    plain = load_examples(path)
    assert plain.examples == [] and "cannot tell the format" in plain.problems[0].message
    assert "question, answer" in plain.problems[0].message
    data = load_examples(path, columns=parse_columns("instruction=question, output=answer"))
    assert data.format == "alpaca"
    assert data.examples[0].messages[1] == {"role": "assistant", "content": "Tally."}

    path = write_jsonl(tmp_path / "dlg.jsonl", [{"dialog": [{"speaker": "user", "text": "Hi"}, {"speaker": "assistant", "text": "Yo"}]}])
    data = load_examples(path, columns={"messages": "dialog", "role": "speaker", "content": "text"})
    assert data.format == "messages" and data.examples[0].messages[1] == {"role": "assistant", "content": "Yo"}


def test_mapped_missing_column_is_named_in_the_problem(tmp_path):
    path = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Who?", "answer": "Tally."}, {"question": "Why?"}])
    data = load_examples(path, columns={"instruction": "question", "output": "answer"})
    assert len(data.examples) == 1
    assert [(p.line, p.message) for p in data.problems] == [
        (2, "field 'answer' (mapped to output) is missing (alpaca rows need instruction and output); row skipped")
    ]


def test_bad_column_mapping_is_a_user_error():
    with pytest.raises(UserError, match="'instrucion' is not a standard field name; did you mean 'instruction'"):
        parse_columns("instrucion=question")
    with pytest.raises(UserError, match="not standard=yours"):
        parse_columns("instruction")


def test_json_array_keeps_the_line_each_record_starts_on(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"instruction": "a",\n   "output": "b"},\n  {"instruction": "c", "output": "d"},\n  7\n]\n')
    data = load_examples(path)
    assert [e.line for e in data.examples] == [2, 4]
    assert [(p.line, p.message) for p in data.problems] == [(5, "expected a JSON object {...} for each record, got a number; row skipped")]


def test_json_object_layouts(tmp_path):
    one_list = tmp_path / "wrapped.json"
    one_list.write_text(json.dumps({"version": 1, "data": [{"text": "x"}, {"text": "y"}]}, indent=1))
    assert [e.text for e in load_examples(one_list).examples] == ["x", "y"]
    keyed = tmp_path / "keyed.json"
    keyed.write_text(json.dumps({"a": {"prompt": "p", "completion": "c"}, "b": {"prompt": "q", "completion": "d"}}))
    assert len(load_examples(keyed).examples) == 2
    single = tmp_path / "single.json"
    single.write_text(json.dumps({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}))
    assert load_examples(single).format == "messages"


def test_json_file_that_is_really_jsonl(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert [e.line for e in load_examples(path).examples] == [1, 2]


def test_broken_json_document_says_where(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n {"text": "a"},\n {"text": "b"\n')
    data = load_examples(path)
    assert [e.text for e in data.examples] == ["a"]
    assert data.problems[0].line == 4 and "the rest of the file was not read" in data.problems[0].message
    path.write_text('{"text": ')
    with pytest.raises(UserError, match=r"d.json: invalid JSON at line 1 column 10"):
        load_examples(path)


def test_max_samples_stops_early(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": f"row {i}"} for i in range(100)])
    data = load_examples(path, max_samples=7)
    assert [e.text for e in data.examples] == [f"row {i}" for i in range(7)]
