"""Tool-calling rows: a `tools` column (list or JSON string), OpenAI tool_calls + role tool, sharegpt
function_call / observation, in every file kind; rendered by a template that knows tools (native,
tools=...) or in the documented fallback; tool calls trained, tool results never."""

from __future__ import annotations

import copy
import json

import pytest
from data_files import KINDS, row_lines, write_rows
from tiny_model import build_tokenizer

from tuitune.core.data import Example, encode_example, label_mask_preview, load_examples
from tuitune.core.data.tool_rendering import FALLBACK_NOTE, NATIVE_NOTE, renders_tools, tools_note

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
OPENAI_ROW = {
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
        {"role": "assistant", "content": "Sunny and 21 C in Paris."},
    ],
    "tools": [{"type": "function", "function": WEATHER}],
}
SHAREGPT_ROW = {
    "conversations": [
        {"from": "human", "value": "Weather in Rome?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Rome"}})},
        {"from": "observation", "value": "rainy"},
        {"from": "gpt", "value": "Rainy in Rome."},
    ],
    "tools": json.dumps([WEATHER]),  # LLaMA-Factory writes the tools as a JSON string of bare functions
}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}

# A ChatML template that renders tools, tool calls and tool results (written for these tests; small
# models rarely ship one): tools in the system turn, each call as <call>{...}</call>.
TOOLS_CHATML = (
    "{%- if tools %}"
    "{{ '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{ 'Tools:\\n' }}{%- for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{%- endfor %}{{ '<|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{%- elif message['role'] == 'assistant' and message.tool_calls is defined %}"
    "{{ '<|im_start|>assistant\\n' + message['content'] }}"
    "{%- for call in message.tool_calls %}{{ '<call>' }}{{ call.function | tojson }}{{ '</call>' }}{%- endfor %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.fixture(scope="module")
def plain_tok():
    return build_tokenizer()  # ChatML without tools: the fallback path


@pytest.fixture(scope="module")
def tools_tok():
    tok = build_tokenizer()
    tok.chat_template = TOOLS_CHATML
    return tok


def trained_text(preview) -> str:
    return "".join(p.text for p in preview.pieces if p.trained)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("row", [OPENAI_ROW, SHAREGPT_ROW], ids=["openai", "sharegpt"])
def test_tool_rows_read_the_same_from_every_file_kind(tmp_path, kind, row):
    other = copy.deepcopy(row)
    key = "messages" if "messages" in row else "conversations"
    other[key][0]["content" if key == "messages" else "value"] += " Today."
    path = write_rows(tmp_path / f"tools.{kind}", [row, other])
    data = load_examples(path)
    assert data.problems == [] and data.format == ("messages" if key == "messages" else "sharegpt")
    assert [e.line for e in data.examples] == row_lines(path, 2)
    ex = data.examples[0]
    assert ex.tools == [{"type": "function", "function": WEATHER}]
    assert [m["role"] for m in ex.messages] == ["user", "assistant", "tool", "assistant"]
    call = ex.messages[1]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": {"city": "Paris" if key == "messages" else "Rome"}}
    assert ex.messages[1]["content"] == "" and ex.messages[2]["content"] in ("sunny, 21 C", "rainy")


def test_the_tools_column_as_a_json_string_or_a_list_is_the_same(tmp_path):
    as_list = dict(OPENAI_ROW)
    as_text = dict(OPENAI_ROW, tools=json.dumps(OPENAI_ROW["tools"]))
    bare = dict(OPENAI_ROW, tools=[WEATHER])
    a, b, c = (load_examples(write_rows(tmp_path / f"{n}.jsonl", [r])).examples[0] for n, r in
               (("list", as_list), ("text", as_text), ("bare", bare)))
    assert a.tools == b.tools == c.tools == [{"type": "function", "function": WEATHER}]


def test_tools_are_rendered_by_a_template_that_knows_them(tools_tok):
    assert renders_tools(tools_tok, None)
    ex = load_examples_from([OPENAI_ROW])[0]
    preview = label_mask_preview(ex, tools_tok, 1024)
    text = "".join(p.text for p in preview.pieces)
    assert 'Tools:\n{"type": "function", "function": {"name": "get_weather"' in text  # the tools= argument reached it
    assert '<call>{"name": "get_weather", "arguments": {"city": "Paris"}}</call>' in text
    # the call and the reply are trained with their end token; the tool's result and the prompt are not
    assert trained_text(preview) == (
        '<call>{"name": "get_weather", "arguments": {"city": "Paris"}}</call><|im_end|>Sunny and 21 C in Paris.<|im_end|>'
    )
    assert preview.notes == []  # native: nothing to warn about
    assert tools_note([ex], tools_tok, None) == NATIVE_NOTE


def test_the_fallback_writes_tools_calls_and_results_in_tags(plain_tok):
    assert not renders_tools(plain_tok, None)
    ex = load_examples_from([SHAREGPT_ROW])[0]
    preview = label_mask_preview(ex, plain_tok, 2048)
    text = "".join(p.text for p in preview.pieces)
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert "<|im_start|>user\n<tool_response>\nrainy\n</tool_response><|im_end|>" in text  # results: a user turn
    assert trained_text(preview) == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>Rainy in Rome.<|im_end|>'
    )
    assert preview.notes == [FALLBACK_NOTE]
    assert tools_note([ex], plain_tok, None) == FALLBACK_NOTE
    assert tools_note(load_examples_from([{"instruction": "a", "output": "b"}]), plain_tok, None) is None


def test_train_on_prompt_trains_tool_results_too(plain_tok):
    ex = load_examples_from([OPENAI_ROW])[0]
    enc = encode_example(ex, plain_tok, 2048, train_on_prompt=True)
    assert enc.labels == enc.input_ids


def test_consecutive_tool_results_join_one_turn_and_a_system_prompt_keeps_its_text(plain_tok):
    row = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
        ]},
        {"role": "tool", "content": "sunny"},
        {"role": "tool", "content": "rainy"},
        {"role": "assistant", "content": "Paris sunny, Rome rainy."},
    ], "tools": [WEATHER]}
    ex = load_examples_from([row])[0]
    preview = label_mask_preview(ex, plain_tok, 2048)
    text = "".join(p.text for p in preview.pieces)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert "<tool_response>\nsunny\n</tool_response>\n<tool_response>\nrainy\n</tool_response><|im_end|>" in text
    trained = trained_text(preview)
    assert trained.startswith("Checking.\n<tool_call>\n") and trained.count("<tool_call>") == 2
    assert "sunny" not in trained.split("</tool_call>")[-1].split("Paris sunny")[0]


def test_broken_tool_calls_are_reported_with_their_line_and_field(tmp_path):
    bad_args = copy.deepcopy(OPENAI_ROW)
    bad_args["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{city: Paris"
    no_name = copy.deepcopy(OPENAI_ROW)
    del no_name["messages"][1]["tool_calls"][0]["function"]["name"]
    bad_call = copy.deepcopy(SHAREGPT_ROW)
    bad_call["conversations"][1]["value"] = "get_weather(Rome)"
    bad_tools = dict(SHAREGPT_ROW, tools="[{\"description\": \"no name\"}]")
    path = write_rows(tmp_path / "bad.jsonl", [OPENAI_ROW, bad_args, no_name, bad_call, bad_tools])
    data = load_examples(path)
    assert [e.line for e in data.examples] == [1]
    assert [(p.line, p.message) for p in data.problems] == [
        (2, "'messages' turn 2 tool_calls (get_weather) arguments are not valid JSON (Expecting property name "
            "enclosed in double quotes at character 2); row skipped"),
        (3, "'messages' turn 2 tool_calls has no function name (expected a tool call {\"name\": ..., \"arguments\": {...}}); row skipped"),
        (4, "'conversations' turn 2 (function_call) is a string, expected a tool call {\"name\": ..., \"arguments\": {...}}; row skipped"),
        (5, "field 'tools' item 1 is not a function schema (expected an object with a \"name\"); row skipped"),
    ]


def test_a_dataset_own_speaker_names_through_columns(tmp_path):
    row = {"dialog": [
        {"speaker": "USER", "text": "Weather?"},
        {"speaker": "CALL", "text": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
        {"speaker": "RESULT", "text": "snow"},
        {"speaker": "BOT", "text": "Snow in Oslo."},
    ]}
    path = write_rows(tmp_path / "own.jsonl", [row])
    columns = {"conversations": "dialog", "role": "speaker", "content": "text", "user_tag": "USER",
               "assistant_tag": "BOT", "function_tag": "CALL", "observation_tag": "RESULT"}
    data = load_examples(path, columns=columns)
    assert data.problems == [] and data.format == "sharegpt"
    assert [m["role"] for m in data.examples[0].messages] == ["user", "assistant", "tool", "assistant"]
    assert data.examples[0].messages[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}


def test_duplicates_compare_the_tool_calls_too(tmp_path):
    other_city = copy.deepcopy(OPENAI_ROW)
    other_city["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{\"city\": \"Lyon\"}"
    data = load_examples(write_rows(tmp_path / "d.jsonl", [OPENAI_ROW, other_city, OPENAI_ROW]))
    assert [(p.line, p.message) for p in data.problems] == [(3, "duplicate of line 1 (same turns)")]


def load_examples_from(rows) -> list[Example]:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        return load_examples(write_rows(Path(d) / "rows.jsonl", rows)).examples


def test_an_assistant_turn_that_only_calls_is_found_when_prefixes_do_not_line_up(tools_tok):
    """Templates that rewrite earlier turns fall back to searching the rendering: a call-only turn is
    found by its function name and trained to its end marker."""
    tok = build_tokenizer()
    # The same template, but the generation prompt differs from how a written turn starts.
    tok.chat_template = TOOLS_CHATML.replace(
        "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}", "{%- if add_generation_prompt %}{{ '<|im_start|>assistant:\\n' }}"
    )
    ex = Example([{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [CALL]},
                  {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}], None, 1,
                 tools=[{"type": "function", "function": WEATHER}])
    trained = trained_text(label_mask_preview(ex, tok, 1024))
    assert trained.startswith('get_weather", "arguments": {"city": "Paris"}}</call><|im_end|>')
    assert trained.endswith("Sunny.<|im_end|>") and "sunny" not in trained.replace("Sunny", "")
