"""Plain text: one example per line or per block (data.text_split), long rows reported with what is
trained, data.chunk_long_text, and the work per row bounded however long the row is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tiny_model import build_tokenizer

from tuitune.core.data import (
    count_rows,
    encode_examples,
    label_mask_preview,
    load_examples,
    read_page,
    row_at_line,
)
from tuitune.core.data.long_rows import long_row_problems, long_rows_summary
from tuitune.core.data.text_rows import TEXT_SPLITS
from tuitune.core.errors import UserError
from tuitune.core.recipe import FIELDS


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_text_split_names_match_the_recipe_choices():
    assert FIELDS["data.text_split"].choices == TEXT_SPLITS


def test_a_file_without_blank_lines_is_one_example_per_line(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first line\nsecond line\nthird line\n\n")  # trailing blank lines only: still lines
    data = load_examples(path)
    assert [(e.line, e.text) for e in data.examples] == [(1, "first line"), (2, "second line"), (3, "third line")]
    assert data.notes == ["plain text: one example per line (data.text_split = auto)"]
    assert count_rows(path) == 3 and row_at_line(path, 3) == 2


def test_blank_line_separated_blocks_are_one_example_each(repo_root):
    data = load_examples(repo_root / "tests/data/text.txt")
    assert [e.line for e in data.examples] == [1, 3, 7]
    assert data.examples[1].text == "The second document\nspans two lines."
    assert data.notes == ["plain text: one example per blank-line-separated block (data.text_split = auto)"]


@pytest.mark.parametrize(
    ("split", "texts"),
    [
        ("line", ["a one", "a two", "b one"]),
        ("paragraph", ["a one\na two", "b one"]),
        ("file", ["a one\na two\n\nb one"]),
    ],
)
def test_text_split_overrides(tmp_path, split, texts):
    path = tmp_path / "t.txt"
    path.write_text("a one\na two\n\nb one\n")
    assert [e.text for e in load_examples(path, text_split=split).examples] == texts
    assert count_rows(path, text_split=split) == len(texts)
    page = read_page(path, text_split=split, limit=10)
    assert [r.example.text for r in page.rows] == texts and page.total_rows == len(texts)
    with pytest.raises(UserError, match="unknown text split 'lines'"):
        load_examples(path, text_split="lines")


def test_line_split_pages_deep_and_finds_lines(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"line {i}\n" for i in range(3000)))
    assert count_rows(path) == 3000
    page = read_page(path, offset=2500, limit=3)
    assert [(r.line, r.example.text) for r in page.rows] == [(2501, "line 2500"), (2502, "line 2501"), (2503, "line 2502")]


def test_a_long_row_is_reported_with_what_is_trained(tmp_path, tok):
    path = tmp_path / "doc.jsonl"
    words = " ".join(["fox"] * 1500)  # under the character budget: counted exactly
    path.write_text(json.dumps({"text": "short one"}) + "\n" + json.dumps({"text": words}) + "\n")
    examples = load_examples(path).examples
    encoded, _ = encode_examples(examples, tok, 256)
    long = encoded[1]
    assert long.truncated and len(long.input_ids) == 256 and long.trained_tokens == 256
    problems = long_row_problems(encoded, 256)
    assert [(p.line, p.message) for p in problems] == [
        (2, f"{long.full_length:,} tokens, far longer than cutoff_len 256: 256 trained, the rest cut "
            "(data.chunk_long_text = true trains all of it)")
    ]
    assert long_rows_summary(encoded, 256) == f"1 row longer than cutoff_len (256): {long.full_length:,} tokens, 256 trained"


def test_chunk_long_text_trains_every_token_in_cutoff_sized_pieces(tmp_path, tok):
    words = " ".join(f"fox{i % 10}" for i in range(2000))
    examples = load_examples(_jsonl(tmp_path, [{"text": words}, {"text": "short one"}])).examples
    whole, _ = encode_examples(examples[:1], tok, 100_000)
    chunks, _ = encode_examples(examples, tok, 300, chunk_long_text=True)
    pieces = [c for c in chunks if c.line == 1]
    assert [c.chunk for c in pieces] == list(range(len(pieces))) and len(pieces) > 1
    assert all(len(c.input_ids) <= 300 and c.labels == c.input_ids and not c.truncated for c in pieces)
    assert [t for c in pieces for t in c.input_ids] == whole[0].input_ids  # nothing lost, nothing changed
    assert chunks[-1].chunk is None and chunks[-1].line == 2  # a short text is not split
    summary = long_rows_summary(chunks, 300)
    assert summary == f"1 long text split into {len(pieces)} chunks of up to 300 tokens ({len(whole[0].input_ids):,} tokens, all trained)"
    assert long_row_problems(chunks, 300) == []


def test_a_huge_row_is_tokenized_only_as_far_as_cutoff_len(tmp_path, tok):
    """The work per row is bounded: the tokenizer sees at most 64 KiB of a 2 MB row when cutoff_len
    is 256, and the full length is estimated from that prefix."""
    text = " ".join(["fox"] * 500_000)
    seen: list[int] = []
    real_call = type(tok).__call__

    class Counting(type(tok)):
        def __call__(self, texts, *a, **kw):
            seen.extend(len(t) for t in (texts if isinstance(texts, list) else [texts]))
            return real_call(self, texts, *a, **kw)

    tok.__class__ = Counting
    try:
        examples = load_examples(_jsonl(tmp_path, [{"text": text}])).examples
        encoded, _ = encode_examples(examples, tok, 256)
        preview = label_mask_preview(examples[0], tok, 256)
    finally:
        tok.__class__ = Counting.__bases__[0]
    from tuitune.core.data.tokens import MIN_CHARS

    assert max(seen) <= MIN_CHARS
    exact = len(tok(text[:100_000])["input_ids"]) * len(text) / 100_000
    assert encoded[0].estimated and abs(encoded[0].full_length - exact) / exact < 0.05
    assert len(encoded[0].input_ids) == 256 and encoded[0].trained_tokens == 256
    assert preview.estimated and preview.truncated and preview.trained_tokens == 256
    assert preview.pieces[-1].text.startswith("… ") and preview.pieces[-1].text.endswith(" more characters")


def test_preview_of_a_50_mb_row_stays_small(tmp_path, repo_root):
    """`tuitune data preview` of a file with one 50 MB row: bounded memory (it used to take ~4 GB
    and minutes). Runs in a child process so its peak memory is its own."""
    path = tmp_path / "huge.jsonl"
    with open(path, "w") as f:
        f.write(json.dumps({"text": "short"}) + "\n")
        f.write('{"text": "' + "lorem ipsum dolor " * 3_000_000 + '"}\n')
    tok_dir = tmp_path / "tok"
    build_tokenizer().save_pretrained(tok_dir)
    code = (
        "import re, sys, json\n"
        "from tuitune.cli import main\n"
        f"rc = main(['data', 'preview', {str(path)!r}, '--model', {str(tok_dir)!r}, '--row', '2', '--json'])\n"
        # VmHWM, not ru_maxrss: that one keeps the pytest worker's own peak across fork and exec
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=repo_root,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo_root)})
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    out = json.loads(done.stdout)
    assert out["rendered"]["tokens_estimated"] and out["rendered"]["trained_tokens"] == 1024
    assert any(p["line"] == 2 and "far longer than cutoff_len 1,024" in p["message"] for p in out["problems"])
    assert peak_mib < 1000, f"peak RSS {peak_mib:.0f} MiB"


def _jsonl(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
