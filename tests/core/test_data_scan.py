"""Whole-file checks that keep only a sample (scan_examples), and problem lines turned into rows."""

from __future__ import annotations

import json
import threading

import pytest

from tuitune.core.data import load_examples, read_page, row_at_line, scan_examples


def test_scan_reports_what_load_examples_reports_but_keeps_only_the_sample(repo_root):
    path = repo_root / "tests/data/broken.jsonl"
    full = load_examples(path)
    scan = scan_examples(path, sample=2)
    assert [str(p) for p in scan.problems] == [str(p) for p in full.problems]
    assert scan.rows == full.total_rows == 13 and scan.usable == len(full.examples) == 4
    assert [e.line for e in scan.sample] == [1, 7]  # the first two usable rows only
    assert scan.format == "alpaca" and not scan.cancelled


@pytest.fixture(scope="module")
def long_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "long.jsonl"
    with open(path, "w") as f:
        for i in range(20_000):
            if i == 12_345:
                f.write("\n\n{not json\n")
            f.write(json.dumps({"instruction": f"Q{i}?", "output": f"A{i}."}) + "\n")
    return path


def test_scan_reports_progress_and_can_be_cancelled(long_jsonl):
    seen: list[int] = []
    scan = scan_examples(long_jsonl, sample=10, progress=seen.append)
    assert scan.rows == 20_001 and scan.usable == 20_000 and len(scan.sample) == 10
    assert seen == [4096, 8192, 12288, 16384]
    assert [p.line for p in scan.problems] == [12_348]

    stop = threading.Event()
    stopped = scan_examples(long_jsonl, cancel=stop, progress=lambda n: stop.set())
    assert stopped.cancelled and stopped.rows < 20_000


def test_row_at_line_matches_the_rows_read_page_shows(repo_root, long_jsonl):
    broken = repo_root / "tests/data/broken.jsonl"
    for line in (1, 2, 4, 9, 14):  # line 3 is blank: every later row is one line further down
        row = row_at_line(broken, line)
        assert read_page(broken, offset=row, limit=1).rows[0].line == line
    assert row_at_line(broken, 3) == 2  # a blank line: the next row
    assert row_at_line(broken, 99) is None

    row = row_at_line(long_jsonl, 12_348)
    assert row == 12_345
    page = read_page(long_jsonl, offset=row, limit=2)
    assert page.rows[0].line == 12_348 and page.rows[0].record is None
    assert read_page(long_jsonl, offset=row_at_line(long_jsonl, 19_000), limit=1).rows[0].line == 19_000


def test_row_at_line_in_other_kinds_and_folders(repo_root, tmp_path):
    csv = repo_root / "tests/data/alpaca.csv"
    page = read_page(csv, limit=50)
    for r, row in enumerate(page.rows):
        assert row_at_line(csv, row.line) == r

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    (folder / "b.jsonl").write_text('{"text": "three"}\n\n{"text": "four"}\n')
    assert row_at_line(folder, 3, file="b.jsonl") == 3
    assert read_page(folder, offset=3, limit=1).rows[0].example.text == "four"
