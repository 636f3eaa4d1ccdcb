"""The trainer as a real process: detach, lock, stop, SIGKILL and resume, failures, several ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_support import (
    FACTS,
    REPO,
    events,
    status,
    tuitune,
    wait_for,
    write_jsonl,
    write_recipe,
)

from tuitune.core.engine.launch import start_training
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.recipe import load_recipe
from tuitune.core.runs import RunDirectory, list_runs


def recipe(tmp_path: Path, model_dir: Path, name: str = "p", **sections) -> Path:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    sections.setdefault("lora", {"r": 16, "target_modules": "all-linear"})
    return write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, "lora", **sections)


def step_of(run: RunDirectory) -> int:
    steps = events(run.path, "step")
    return steps[-1]["step"] if steps else 0


def test_detach_lock_stop_resume_and_listing(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, train={"max_steps": 5000, "save_steps": 0, "logging_steps": 1})
    t0 = time.monotonic()
    res = tuitune("train", str(r), "--detach", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 < 60  # returns without waiting for torch to load in the trainer
    run = RunDirectory(tmp_path / "runs" / "p")
    assert str(run.path) in res.stdout and "tuitune runs watch p" in res.stdout and "tuitune stop p" in res.stdout
    pid = status(run.path)["pid"]
    # Its own session (no SIGHUP when the terminal goes), stdin from /dev/null, output to train.log.
    assert os.getsid(pid) == pid != os.getsid(0)
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert Path(os.readlink(f"/proc/{pid}/fd/1")) == run.log_path
    assert run.is_locked()

    again = tuitune("train", str(r), cwd=tmp_path)
    assert again.returncode == 2 and "in use" in again.stderr and f"pid {pid}" in again.stderr

    wait_for(lambda: step_of(run) >= 3)
    # `runs watch` on the live run: replays the history, follows, and ends when the trainer stops.
    watcher = subprocess.Popen([sys.executable, "-m", "tuitune", "runs", "watch", "p", "--runs-dir", str(tmp_path / "runs")],
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    res = tuitune("stop", "p", "--runs-dir", str(tmp_path / "runs"), "--wait", cwd=tmp_path)
    assert res.returncode == 0 and "stopped" in res.stdout
    watched, _ = watcher.communicate(timeout=120)
    assert watcher.returncode == 0
    assert "step 1/5000" in watched and "stopping" in watched and watched.rstrip().splitlines()[-1].find("stopped") >= 0
    st = status(run.path)
    assert st["status"] == "stopped" and not run.is_locked()
    stopped_at = st["step"]
    assert run.last_checkpoint().name == f"checkpoint-{stopped_at}"
    assert [e["status"] for e in events(run.path, "status")][-2:] == ["stopping", "stopped"]

    # Train on the finished-or-stopped folder without --resume: refused with the way forward.
    res = tuitune("train", str(r), cwd=tmp_path)
    assert res.returncode == 2 and "--resume p" in res.stderr and "--set name=" in res.stderr

    # Resume in the foreground with fewer total steps left: it finishes.
    run.recipe_path.write_text(run.recipe_path.read_text().replace("max_steps = 5000", f"max_steps = {stopped_at + 4}"))
    res = tuitune("train", "--resume", "p", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"resumed from step {stopped_at}" in res.stdout and "done:" in res.stdout
    assert status(run.path)["status"] == "done" and status(run.path)["step"] == stopped_at + 4
    starts = events(run.path, "start")
    assert [s["resumed_from"] for s in starts] == [None, stopped_at]

    listed = json.loads(tuitune("runs", "--json", "--runs-dir", str(tmp_path / "runs")).stdout)
    assert [(x["name"], x["status"], x["step"]) for x in listed] == [("p", "done", stopped_at + 4)]
    watched = tuitune("runs", "watch", "p", "--runs-dir", str(tmp_path / "runs"))
    assert watched.returncode == 0 and "done:" in watched.stdout and "resumed from step" in watched.stdout
    res = tuitune("train", "--resume", "p", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 2 and "already finished" in res.stderr


def test_sigint_stops_after_the_step_with_a_checkpoint(model_dir, tmp_path):
    rec, _ = load_recipe(recipe(tmp_path, model_dir, train={"max_steps": 5000, "logging_steps": 1}))
    started = start_training(rec)
    run = started.run
    wait_for(lambda: step_of(run) >= 2)
    os.kill(started.pid, signal.SIGINT)
    assert started.process.wait(timeout=120) == 0
    st = status(run.path)
    assert st["status"] == "stopped" and run.last_checkpoint().name == f"checkpoint-{st['step']}"


def test_sigkill_then_resume_matches_an_uninterrupted_run(model_dir, tmp_path):
    """The trainer is killed with SIGKILL mid-run; --resume continues from the last checkpoint with
    the same data order and reaches the same step count and (within noise) the same loss."""
    steps = 60
    train = {"max_steps": steps, "save_steps": 10, "logging_steps": 1, "learning_rate": 3e-3, "lr_scheduler": "cosine"}
    ref_recipe, _ = load_recipe(recipe(tmp_path, model_dir, name="ref", train=train))
    ref = prepare_run(ref_recipe)
    assert train_run(ref.path) == 0
    ref_losses = {e["step"]: e["loss"] for e in events(ref.path, "step")}

    rec, _ = load_recipe(recipe(tmp_path, model_dir, name="killed", train=train))
    started = start_training(rec)
    run = started.run
    # Kill a few steps after the checkpoint at step 20: those steps are lost and must be redone.
    wait_for(lambda: step_of(run) >= 23, every=0.02)
    os.kill(started.pid, signal.SIGKILL)
    started.process.wait()
    killed_at = step_of(run)
    assert 23 <= killed_at < 30, "the run must be killed between two checkpoints"
    assert {s.name: s.status for s in list_runs(tmp_path / "runs")}["killed"] == "crashed"

    res = tuitune("train", "--resume", "killed", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    resumed_from = events(run.path, "start")[-1]["resumed_from"]
    assert resumed_from == 20
    assert status(run.path)["status"] == "done" and events(run.path, "done")[-1]["steps"] == steps
    # Steps after the resume point see the same batches as the reference run: the losses agree.
    after = [e for e in events(run.path, "step") if e["time"] >= events(run.path, "start")[-1]["time"]]
    assert after[0]["step"] == resumed_from + 1
    for e in after:
        assert e["loss"] == pytest.approx(ref_losses[e["step"]], rel=0.02, abs=0.02), e["step"]
    print(f"SIGKILL at step {killed_at}, resumed from {resumed_from}; final loss {after[-1]['loss']:.4f} "
          f"vs uninterrupted {ref_losses[steps]:.4f}")


def test_out_of_memory_becomes_an_error_event_and_the_run_stays_consistent(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUITUNE_TEST_FAKE_OOM_AT_STEP", "5")  # test-only hook: fakes a GPU running out
    rec, _ = load_recipe(recipe(tmp_path, model_dir, train={"max_steps": 20, "save_steps": 2}))
    run = prepare_run(rec)
    assert train_run(run.path) == 1
    (error,) = events(run.path, "error")
    assert error["kind"] == "oom" and "step 5" in error["message"] and "2.00 GiB" in error["message"]
    assert "23.55 GiB" in error["message"]  # the GPU's total from the allocator message
    for word in ("batch_size", "gradient_checkpointing", "qlora"):
        assert word in error["hint"]
    st = status(run.path)
    assert st["status"] == "failed" and "out of GPU memory" in st["error"] and st["step"] == 4
    assert not run.is_locked() and not run.adapter_dir.exists()
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2", "checkpoint-4"]
    assert list_runs(tmp_path / "runs")[0].status == "failed"


def test_nan_loss_stops_the_run_with_a_clear_error(model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken-model"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    weights = load_file(broken / "model.safetensors")
    key = next(k for k in weights if "layers.0.mlp.down_proj" in k)
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    rec, _ = load_recipe(recipe(tmp_path, broken, train={"max_steps": 10}))
    run = prepare_run(rec)
    assert train_run(run.path) == 1
    (error,) = events(run.path, "error")
    assert error["kind"] == "nan" and "loss became nan at step 1" in error["message"]
    assert "learning_rate" in error["hint"]
    assert status(run.path)["status"] == "failed" and not events(run.path, "step")


def test_a_damaged_model_fails_the_run_in_one_line_naming_the_file(model_dir, tmp_path):
    broken = tmp_path / "corrupt-model"
    broken.mkdir()
    for f in model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    r = recipe(tmp_path, broken)
    res = tuitune("train", str(r), cwd=tmp_path)
    run = RunDirectory(tmp_path / "runs" / "p")
    # The weights are checked before they load (core.file_checks): one line naming the file.
    assert res.returncode != 0 and "Traceback" not in res.stdout + res.stderr
    assert "model.safetensors" in res.stdout + res.stderr
    st = status(run.path)
    assert st["status"] == "failed" and st["error"] and not run.is_locked()


def test_recipe_problems_are_reported_with_file_and_key(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir)
    bad = tmp_path / "bad.toml"
    bad.write_text(r.read_text().replace("[lora]", "[lora]\nrank = 3"))
    res = tuitune("train", str(bad), cwd=tmp_path)
    assert res.returncode == 2 and f"{bad}: lora.rank: unknown key" in res.stderr
    res = tuitune("train", str(r), "--set", "train.learning_rate=fast", cwd=tmp_path)
    assert res.returncode == 2 and "--set: train.learning_rate" in res.stderr
    assert not (tmp_path / "runs" / "p").exists()


def test_two_processes_under_accelerate_only_rank0_writes(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, train={"max_steps": 6, "logging_steps": 1, "save_steps": 3})
    res = tuitune("train", str(r), "--nproc", "2", cwd=tmp_path, timeout=600)
    run = RunDirectory(tmp_path / "runs" / "p")
    assert res.returncode == 0, res.stdout + res.stderr + run.log_path.read_text()
    (start,) = events(run.path, "start")
    assert start["world_size"] == 2
    assert [e["step"] for e in events(run.path, "step")] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in events(run.path, "checkpoint")] == [3, 6]
    assert len(events(run.path, "done")) == 1 and status(run.path)["status"] == "done"
    # Both ranks consumed data: 8 rows, 2 per rank and step, so 6 steps are 3 epochs (1.5 with one).
    assert events(run.path, "step")[-1]["epoch"] == pytest.approx(3.0)
    assert (run.adapter_dir / "adapter_config.json").is_file()


def test_run_dir_prepared_by_another_program_is_trained_there(model_dir, tmp_path):
    """The TUI writes runs/NAME/recipe.toml and spawns `tuitune train --run-dir runs/NAME`."""
    r = recipe(tmp_path, model_dir, train={"max_steps": 3})
    # A data path relative to the recipe file, run from another folder: frozen as an absolute path.
    r.write_text(r.read_text().replace(f'"{tmp_path / "facts.jsonl"}"', '"facts.jsonl"'))
    target = tmp_path / "elsewhere" / "my-run"
    target.parent.mkdir()
    res = tuitune("train", str(r), "--run-dir", str(target), "--set", "train.max_steps=2", cwd=target.parent)
    assert res.returncode == 0, res.stderr
    assert status(target)["status"] == "done" and status(target)["step"] == 2
    frozen = (target / "recipe.toml").read_text()
    assert "max_steps = 2" in frozen and f'path = "{tmp_path / "facts.jsonl"}"' in frozen

    prepared = tmp_path / "runs" / "from-tui"
    prepared.mkdir(parents=True)
    (prepared / "recipe.toml").write_text(frozen.replace('name = "p"', 'name = "from-tui"'))
    # The TUI marks the folder as tuitune's (runs.ownership): an unmarked folder is refused.
    refused = tuitune("train", "--run-dir", str(prepared), cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    (prepared / ".tuitune-run").write_bytes((target / ".tuitune-run").read_bytes())
    res = tuitune("train", "--run-dir", str(prepared), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert status(prepared)["status"] == "done" and (prepared / "adapter" / "adapter_config.json").is_file()


def test_a_second_trainer_on_a_live_run_leaves_it_alone(model_dir, tmp_path):
    rec, _ = load_recipe(recipe(tmp_path, model_dir))
    run = prepare_run(rec)
    lock = run.acquire_lock()
    try:
        before = (run.status_path.read_text(), run.events_path.exists())
        assert train_run(run.path) == 2
        assert (run.status_path.read_text(), run.events_path.exists()) == before
    finally:
        lock.release()
