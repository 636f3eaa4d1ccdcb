"""Reading every kind of source: problems with exact line numbers, BOM/CRLF, CSV/TSV, Parquet, TXT,
folders, hub names, and paging through a big file."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from tuitune.core.data import count_rows, estimate_rows, load_examples, read_page
from tuitune.core.errors import UserError

BROKEN = [
    (2, "invalid JSON: Expecting ',' delimiter (column 52); row skipped"),
    (4, "field 'output' is missing (alpaca rows need instruction and output); row skipped"),
    (5, "field 'output' is empty (alpaca rows need instruction and output); row skipped"),
    (6, "field 'instruction' is a list, expected a string; row skipped"),
    (7, "duplicate of line 1 (same turns)"),
    (8, "not valid UTF-8 (byte 0xe9 at byte 21 of the line); save the file as UTF-8; row skipped"),
    (9, "expected a JSON object {...} on each line, got a list; row skipped"),
    (10, "field 'history' must be a list of [question, answer] string pairs; row skipped"),
    (12, "invalid JSON: Expecting value (column 1); row skipped"),
    (13, 'field \'output\' is a boolean (true), kept as the text "true"'),
    (14, "field 'instruction' is missing (alpaca rows need instruction and output); row skipped"),
]


def test_a_file_full_of_broken_lines_reports_each_by_number(repo_root):
    data = load_examples(repo_root / "tests/data/broken.jsonl")
    assert [(p.line, p.message) for p in data.problems] == BROKEN
    assert [e.line for e in data.examples] == [1, 7, 11, 13]  # a duplicate is reported, not dropped
    assert data.total_rows == 13 and data.format == "alpaca"  # the blank line 3 is not a row


def test_roles_out_of_order_are_reported(repo_root):
    data = load_examples(repo_root / "tests/data/messages_order.jsonl")
    got = [(p.line, p.message.split(";")[0]) for p in data.problems]
    assert got == [
        (2, "the conversation starts with the assistant (turn 1)"),
        (3, "two user turns in a row (turns 1 and 2)"),
        (4, "the conversation ends on a user turn (turn 3)"),
        (5, "'messages' turn 1 has role 'narrator', expected one of user/human, assistant/gpt, system, tool/observation, function_call"),
        (6, "system message at turn 2"),
        (7, "'messages' turn 2 (assistant) has no 'content' (or 'value')"),
        (8, "no assistant turn: nothing to train on"),
        (9, "field 'messages' is a string, expected a list of turns"),
    ]
    assert [e.line for e in data.examples] == [1, 2, 3, 4, 6, 8]  # order problems warn, unusable rows are skipped


def test_bom_and_crlf_are_accepted_silently(repo_root, tmp_path):
    plain = load_examples(repo_root / "tests/data/plain.jsonl")
    for name in ("bom_crlf.jsonl",):
        data = load_examples(repo_root / "tests/data" / name)
        assert data.problems == [] and data.examples == plain.examples
    as_json = tmp_path / "d.json"
    as_json.write_bytes(b"\xef\xbb\xbf[\r\n" + b",\r\n".join(json.dumps(r).encode() for r in _rows(repo_root)) + b"\r\n]\r\n")
    data = load_examples(as_json)
    assert data.problems == [] and [e.messages for e in data.examples] == [e.messages for e in plain.examples]
    txt = tmp_path / "t.txt"
    txt.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n\r\nthree\r\n")
    assert [e.text for e in load_examples(txt).examples] == ["one\ntwo", "three"]


def _rows(repo_root):
    return [json.loads(line) for line in (repo_root / "tests/data/plain.jsonl").read_text().splitlines()]


def test_csv_with_bom_crlf_quoted_newlines_and_a_bad_row(repo_root):
    data = load_examples(repo_root / "tests/data/alpaca.csv")
    assert data.format == "alpaca"
    assert [e.line for e in data.examples] == [2, 3, 6]  # line 3's cell spans two lines
    assert data.examples[1].messages[1]["content"] == "line one\nline two"
    assert data.examples[0].messages[1]["content"] == "I am Tally, made by the tuitune project."
    assert [(p.line, p.message) for p in data.problems] == [
        (5, "has 4 cells but the header has 3 (instruction, input, output); row skipped")
    ]


def test_tsv_prompt_completion_and_json_strings_in_csv(repo_root, tmp_path):
    data = load_examples(repo_root / "tests/data/prompt_completion.tsv")
    assert data.format == "prompt-completion" and [e.line for e in data.examples] == [2, 3]
    csv_path = tmp_path / "m.csv"
    turns = json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]).replace('"', '""')
    csv_path.write_text(f'messages\n"{turns}"\n"[not json"\n')
    data = load_examples(csv_path)
    assert data.examples[0].messages[1] == {"role": "assistant", "content": "Yo"}
    assert data.problems[0].line == 3 and "field 'messages' holds invalid JSON" in data.problems[0].message


def test_sharegpt_and_messages_files(repo_root):
    share = load_examples(repo_root / "tests/data/sharegpt.jsonl")
    assert share.format == "sharegpt" and share.problems == []
    assert [m["role"] for m in share.examples[2].messages] == ["user", "assistant", "tool", "assistant"]
    msgs = load_examples(repo_root / "tests/data/messages.jsonl")
    assert msgs.format == "messages" and msgs.examples[1].messages[0]["content"] == "Say hi"


def test_txt_is_one_example_per_blank_line_separated_block(repo_root):
    data = load_examples(repo_root / "tests/data/text.txt")
    assert data.format == "text"
    assert [(e.line, e.text) for e in data.examples] == [
        (1, "The first document is one line."),
        (3, "The second document\nspans two lines."),
        (7, "The third one."),
    ]
    page = read_page(repo_root / "tests/data/text.txt", offset=1, limit=1)
    assert [r.line for r in page.rows] == [3] and page.next_offset == 2 and not page.at_end


def test_parquet_rows_and_pages_across_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"instruction": [f"q{i}" for i in range(25)], "output": [f"a{i}" for i in range(25)]})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=10)
    data = load_examples(path)
    assert data.format == "alpaca" and len(data.examples) == 25 and data.examples[-1].line == 25
    page = read_page(path, offset=13, limit=5)
    assert [r.line for r in page.rows] == [14, 15, 16, 17, 18]
    assert page.rows[0].example.messages[0]["content"] == "q13"
    assert page.total_rows == 25 and page.total_exact
    assert count_rows(path) == 25
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="bad.parquet: not a readable Parquet file"):
        load_examples(bad)


def test_folder_detects_each_file_and_names_it_in_problems(repo_root, tmp_path):
    for name in ("sharegpt.jsonl", "broken.jsonl", "text.txt", "unknown.jsonl"):
        shutil.copy(repo_root / "tests/data" / name, tmp_path / name)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.jsonl").write_text("{not read}\n")
    (tmp_path / "notes.md").write_text("ignored")
    data = load_examples(tmp_path)
    assert len(data.examples) == 4 + 3 + 3
    files = {e.file for e in data.examples}
    assert files == {"broken.jsonl", "sharegpt.jsonl", "text.txt"}
    assert data.format == "alpaca+sharegpt+text"
    first = data.problems[0]
    assert (first.file, first.line) == ("broken.jsonl", 2) and str(first).startswith("broken.jsonl:2: invalid JSON")
    assert any(p.file == "unknown.jsonl" and p.line is None and "cannot tell the format" in p.message for p in data.problems)
    page = read_page(tmp_path, offset=12, limit=4)  # broken.jsonl has 13 rows: the page spans two files
    assert [(r.file, r.line) for r in page.rows] == [("broken.jsonl", 14), ("sharegpt.jsonl", 1), ("sharegpt.jsonl", 2), ("sharegpt.jsonl", 3)]


def test_unreadable_sources_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="nope.jsonl: no such file or folder"):
        load_examples(tmp_path / "nope.jsonl")
    odd = tmp_path / "d.xlsx"
    odd.write_bytes(b"PK\x03\x04")
    with pytest.raises(UserError, match="unsupported file type '.xlsx'"):
        load_examples(odd)
    utf16 = tmp_path / "d.jsonl"
    utf16.write_bytes('{"text": "x"}\n'.encode("utf-16"))
    with pytest.raises(UserError, match="UTF-16"):
        load_examples(utf16)
    with pytest.raises(UserError, match="unknown data format 'alpacca'"):
        load_examples(utf16, format="alpacca")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="the folder has no data files"):
        load_examples(tmp_path / "empty")


def test_hub_name_offline_is_one_line_naming_the_dataset(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserError) as err:
        load_examples("tuitune-test/no-such-dataset")
    assert str(err.value).startswith("dataset 'tuitune-test/no-such-dataset' could not be loaded")
    assert "offline" in str(err.value) and "\n  hint:" in str(err.value)


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory):
    """50,000 rows (the 1M-row speed figure comes from bench/data_preview.py), a blank line and a
    broken one somewhere in the middle."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(path, "w") as f:
        for i in range(50_000):
            if i == 30_000:
                f.write("\n{broken\n")
            f.write(json.dumps({"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."}) + "\n")
    return path


def test_pages_of_a_big_jsonl(big_jsonl):
    first = read_page(big_jsonl, limit=50)
    assert [r.line for r in first.rows] == list(range(1, 51)) and first.next_offset == 50
    assert first.format == "alpaca" and not first.total_exact and not first.at_end
    assert 45_000 <= first.total_rows <= 55_000  # estimated from the first megabyte
    assert first.columns == ["instruction", "input", "output"]

    # Rows after the blank line (line 30001) and the broken one (line 30002) are one line further down.
    deep = read_page(big_jsonl, offset=29_999, limit=4)
    assert [r.line for r in deep.rows] == [30_000, 30_002, 30_003, 30_004]
    assert deep.rows[1].record is None and "invalid JSON" in deep.rows[1].problems[0].message
    assert deep.rows[2].example.messages[0]["content"] == "Question 30000?"

    assert count_rows(big_jsonl) == 50_001  # every non-blank line is a row, broken or not
    again = read_page(big_jsonl, offset=29_999, limit=4)  # now served from remembered offsets
    assert [r.line for r in again.rows] == [30_000, 30_002, 30_003, 30_004]
    last = read_page(big_jsonl, offset=49_998, limit=50)
    assert [r.line for r in last.rows] == [50_000, 50_001, 50_002] and last.at_end and last.total_exact
    assert last.total_rows == 50_001


def test_full_load_of_a_big_jsonl(big_jsonl):
    data = load_examples(big_jsonl)
    assert len(data.examples) == 50_000 and data.total_rows == 50_001
    assert [(p.line, p.message.split(":")[0]) for p in data.problems] == [(30_002, "invalid JSON")]
    assert estimate_rows(big_jsonl)[0] > 40_000


def test_count_rows_can_be_cancelled(big_jsonl):
    stop = threading.Event()
    stop.set()
    assert count_rows(big_jsonl, cancel=stop) is None


def test_problems_are_capped_but_counted(tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text('{"text": "ok"}\n' + "junk\n" * 1500)
    data = load_examples(path)
    assert len(data.problems) == 1001
    assert data.problems[-1].message == "... and 500 more problems not listed"
    assert data.problems[999].line == 1001


def test_hub_dataset_rows_are_normalized_and_paged(monkeypatch):
    """A real `datasets.Dataset`, put where a hub download lands, so no network is needed."""
    import datasets

    from tuitune.core.data import readers

    rows = [{"conversations": [{"from": "human", "value": f"q{i}"}, {"from": "gpt", "value": f"a{i}"}]} for i in range(30)]
    rows[4] = {"conversations": []}
    monkeypatch.setitem(readers._HUB_CACHE, ("tuitune-test/local", "train"), datasets.Dataset.from_list(rows))
    data = load_examples("tuitune-test/local")
    assert data.format == "sharegpt" and len(data.examples) == 29 and data.examples[-1].line == 30
    assert [(p.line, p.message) for p in data.problems] == [(5, "field 'conversations' is empty (expected a list of turns); row skipped")]
    page = read_page("tuitune-test/local", offset=10, limit=3)
    assert [r.line for r in page.rows] == [11, 12, 13] and page.total_rows == 30 and page.total_exact
    assert page.rows[0].example.messages[1] == {"role": "assistant", "content": "a10"}
