"""Core work run in a child process: the same answer as in-process, progress, errors, cancelling."""

from __future__ import annotations

import json
import threading
import time

import pytest
from conftest import REPO

from tuitune.core.data import scan_examples
from tuitune.core.errors import UserError
from tuitune.tui.child_process import run_in_child


def test_the_answer_and_progress_come_back(tmp_path):
    broken = REPO / "tests/data/broken.jsonl"
    assert run_in_child(scan_examples, broken, sample=2) == scan_examples(broken, sample=2)

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(10_000)))
    seen: list[int] = []
    scan = run_in_child(scan_examples, path, progress=seen.append)
    assert scan.rows == 10_000 and seen == [4096, 8192]


def test_a_user_error_is_raised_here_with_its_hint(tmp_path):
    with pytest.raises(UserError) as e:
        run_in_child(scan_examples, tmp_path / "missing.jsonl")
    assert "no such file" in e.value.message and e.value.hint


def test_cancel_ends_the_child(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"text": f"{i}"}) + "\n" for i in range(2_000_000)))  # seconds to check
    stop = threading.Event()
    answers: list[object] = []
    worker = threading.Thread(target=lambda: answers.append(run_in_child(scan_examples, path, cancel=stop)))
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive() and answers == [None]
    assert time.monotonic() - started < 2
