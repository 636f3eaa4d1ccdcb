"""The run directory contract: events (append, tail, partial lines), status.json, the lock, listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tuitune.core.errors import UserError
from tuitune.core.runs import RunDirectory, find_run, list_runs, read_events

REPO = Path(__file__).resolve().parents[2]


def test_events_round_trip_and_resume_from_offset(tmp_path):
    run = RunDirectory(tmp_path / "r")
    with run.event_writer() as w:
        w.write("status", status="training", message="go")
        w.write("step", step=1, loss=2.5, memory={"device": "cpu"})
    first, offset = run.read_events()
    assert [e["type"] for e in first] == ["status", "step"]
    assert first[1]["loss"] == 2.5 and isinstance(first[0]["time"], float)
    with run.event_writer() as w:
        w.write("step", step=2, loss=2.0)
    more, offset2 = run.read_events(offset)
    assert [e["step"] for e in more] == [2]
    assert run.read_events(offset2) == ([], offset2)


def test_partial_last_line_is_left_until_complete(tmp_path):
    path = tmp_path / "events.jsonl"
    line = json.dumps({"time": 1.0, "type": "step", "step": 3}) + "\n"
    path.write_bytes(line.encode() + line[:10].encode())
    events, offset = read_events(path)
    assert [e["step"] for e in events] == [3]
    assert offset == len(line)
    with open(path, "ab") as f:  # the writer finishes the line
        f.write(line[10:].encode())
    events, offset = read_events(path, offset)
    assert [e["step"] for e in events] == [3] and offset == 2 * len(line)


def test_garbage_line_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"time": 1, "type": "log", "message": "a"}\nnot json\n{"time": 2, "type": "log", "message": "b"}\n')
    assert [e["message"] for e in read_events(path)[0]] == ["a", "b"]


def test_non_finite_numbers_are_written_as_null(tmp_path):
    run = RunDirectory(tmp_path / "r")
    with run.event_writer() as w:
        w.write("step", step=1, loss=float("nan"), grad_norm=float("inf"))
    raw = run.events_path.read_text()
    assert "NaN" not in raw and "Infinity" not in raw
    assert run.events()[0]["loss"] is None


def test_status_is_merged_and_rewritten_atomically(tmp_path):
    run = RunDirectory(tmp_path / "r")
    run.create()
    run.update_status(status="training", step=1)
    run.update_status(step=2, loss=1.5)
    assert run.read_status()["status"] == "training" and run.read_status()["step"] == 2
    # Readers racing a writer never see a half-written file.
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            text = run.status_path.read_text()
            try:
                json.loads(text)
            except json.JSONDecodeError:
                bad.append(text)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(300):
        run.update_status(step=i, message="x" * (i % 50))
    stop.set()
    t.join()
    assert not bad
    assert not list(run.path.glob(".*.tmp"))


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    code = (
        "import sys, time; from tuitune.core.runs import RunDirectory; "
        f"lock = RunDirectory({str(run_dir)!r}).acquire_lock(); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_refuses_a_second_owner_and_names_the_holder(tmp_path):
    run = RunDirectory(tmp_path / "r")
    holder = _hold_lock(run.path)
    try:
        assert run.is_locked()
        with pytest.raises(UserError) as err:
            run.acquire_lock(wait_s=0.2)
        assert f"pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    assert not run.is_locked()  # the kernel drops the lock with the dead process
    run.acquire_lock().release()


def test_probing_the_lock_does_not_block_a_trainer(tmp_path):
    run = RunDirectory(tmp_path / "r")
    run.acquire_lock().release()
    stop = threading.Event()

    def probe():
        while not stop.is_set():
            run.is_locked()

    t = threading.Thread(target=probe)
    t.start()
    try:
        for _ in range(50):
            run.acquire_lock().release()
    finally:
        stop.set()
        t.join()


def _fake_run(root: Path, name: str, status: dict, recipe: str = 'name = "x"\n[method]\ntype = "lora"\n') -> RunDirectory:
    run = RunDirectory(root / name)
    run.create()
    run.recipe_path.write_text(recipe)
    run.update_status(**status)
    return run


def test_list_runs_marks_a_dead_trainer_as_crashed(tmp_path):
    now = time.time()
    _fake_run(tmp_path, "finished", {"status": "done", "step": 30, "max_steps": 30, "best_eval_loss": 1.25,
                                     "started": now - 100, "finished": now - 40, "method": "lora", "model": "m"})
    _fake_run(tmp_path, "died", {"status": "training", "step": 12, "max_steps": 30, "pid": 999999, "started": now - 50})
    _fake_run(tmp_path, "died-stopping", {"status": "stopping", "pid": 999999, "started": now - 10})
    live = _fake_run(tmp_path, "live", {"status": "training", "started": now})
    (tmp_path / "not-a-run").mkdir()
    lock = live.acquire_lock()
    try:
        runs = {r.name: r for r in list_runs(tmp_path)}
    finally:
        lock.release()
    assert set(runs) == {"finished", "died", "died-stopping", "live"}
    assert runs["finished"].status == "done" and runs["finished"].best_eval_loss == 1.25
    assert runs["finished"].duration_s == pytest.approx(60, abs=1)
    assert runs["died"].status == "crashed" and runs["died"].step == 12
    assert runs["died"].method == "lora"  # read from the frozen recipe when status.json lacks it
    assert runs["died-stopping"].status == "interrupted"
    assert runs["live"].status == "training" and runs["live"].live
    assert [r.name for r in list_runs(tmp_path)][0] == "live"  # newest first


def test_find_run_by_name_or_path_and_a_clear_miss(tmp_path):
    run = _fake_run(tmp_path, "alpha", {"status": "done"})
    assert find_run("alpha", tmp_path).path == run.path
    assert find_run(str(run.path), "elsewhere").path == run.path
    with pytest.raises(UserError) as err:
        find_run("beta", tmp_path)
    assert "beta" in err.value.message and "alpha" in err.value.hint


def test_result_path_prefers_the_final_result_then_the_last_complete_checkpoint(tmp_path):
    run = RunDirectory(tmp_path / "r")
    for step, complete in ((10, True), (20, True), (30, False)):
        d = run.checkpoints_dir / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert run.last_checkpoint().name == "checkpoint-20"  # 30 was cut off while saving
    assert run.result_path().name == "checkpoint-20"
    run.adapter_dir.mkdir()
    (run.adapter_dir / "adapter_config.json").write_text("{}")
    assert run.result_path() == run.adapter_dir


def test_follow_replays_history_and_stops_when_the_trainer_is_gone(tmp_path):
    run = RunDirectory(tmp_path / "r")
    lock = run.acquire_lock()
    with run.event_writer() as w:
        w.write("status", status="training")
    seen = []

    def trainer():
        time.sleep(0.3)
        with run.event_writer() as w:
            w.write("step", step=1)
            w.write("done", steps=1)
        lock.release()

    t = threading.Thread(target=trainer)
    t.start()
    for event in run.follow(poll_s=0.05):
        seen.append(event["type"])
    t.join()
    assert seen == ["status", "step", "done"]


def test_request_stop_only_when_a_trainer_holds_the_run(tmp_path):
    run = _fake_run(tmp_path, "r", {"status": "done"})
    assert run.request_stop() is False and not run.stop_requested()
