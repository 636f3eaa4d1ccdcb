"""Two "machines" on 127.0.0.1 (gloo, one process each) train the tiny model together through
`tuitune train --nnodes 2`, and their losses equal a single-machine `--nproc 2` run's, under DDP
and under FSDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_support import (
    FACTS,
    REPO,
    events,
    status,
    tuitune,
    write_jsonl,
    write_recipe,
)

from tuitune.core.engine.launch_plan import free_port

pytestmark = pytest.mark.slow
CPU_ONLY = {"TUITUNE_FAKE_GPU": "none"}  # whatever this machine has: two CPU processes per job
TRAIN = {"max_steps": 6, "logging_steps": 1, "save_steps": 3, "learning_rate": 3e-3}


def recipe(tmp_path: Path, model_dir: Path, name: str, strategy: str = "ddp") -> Path:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    return write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, "lora",
                        lora={"r": 8, "target_modules": "all-linear"}, train=TRAIN, distributed={"strategy": strategy})


def node(r: Path, rank: int, port: int, cwd: Path) -> subprocess.Popen:
    args = ["train", str(r), "--nnodes", "2", "--node-rank", str(rank), "--main-address", "127.0.0.1", "--main-port", str(port)]
    return subprocess.Popen([sys.executable, "-m", "tuitune", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO), **CPU_ONLY})


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_machines_train_like_one_machine_with_two_processes(model_dir, tmp_path, strategy):
    single = tuitune("train", str(recipe(tmp_path, model_dir, "single", strategy)), "--nproc", "2", cwd=tmp_path, env=CPU_ONLY,
                     timeout=600)
    single_run = tmp_path / "runs" / "single"
    assert single.returncode == 0, single.stderr + (single_run / "train.log").read_text()

    r = recipe(tmp_path, model_dir, "multi", strategy)
    port = free_port()
    # Machine 1 first: it waits for machine 0 to prepare the run folder they share.
    second = node(r, 1, port, tmp_path)
    first = node(r, 0, port, tmp_path)
    out0, err0 = first.communicate(timeout=600)
    out1, err1 = second.communicate(timeout=120)
    run = tmp_path / "runs" / "multi"
    logs = {p.name: p.read_text() for p in run.glob("train*.log")}
    assert first.returncode == 0 and second.returncode == 0, (out0, err0, out1, err1, logs)

    # Each machine's log is its own; nothing else wrote train.log.
    assert sorted(logs) == ["train.node-0.log", "train.node-1.log"]
    assert "machine 1 of 2" in out1 and "done:" in out0
    # Only the global rank 0 wrote events and the result: each step, checkpoint and the end once.
    (start,) = events(run, "start")
    assert start["world_size"] == 2 and start["nnodes"] == 2
    assert [e["step"] for e in events(run, "step")] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in events(run, "checkpoint")] == [3, 6]
    assert len(events(run, "done")) == 1 and status(run)["status"] == "done"
    assert (run / "adapter" / "adapter_config.json").is_file()
    # Every step event carries both ranks' memory (gathered over the two machines).
    assert [d["rank"] for d in events(run, "step")[-1]["memory"]["devices"]] == [0, 1]

    # Same data order, same seeds, same all-reduce: the same losses as one machine with two processes.
    want = [e["loss"] for e in events(single_run, "step")]
    got = [e["loss"] for e in events(run, "step")]
    assert got == pytest.approx(want, rel=1e-3, abs=1e-4)
    assert want[-1] < want[0]  # and they trained


def test_a_second_machine_refuses_a_folder_holding_another_recipe(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, "other")
    run = tmp_path / "runs" / "other"
    run.mkdir(parents=True)
    (run / "recipe.toml").write_text(r.read_text().replace("max_steps = 6", "max_steps = 9"))
    res = tuitune("train", str(r), "--nnodes", "2", "--node-rank", "1", "--main-address", "127.0.0.1",
                  "--main-port", "29999", cwd=tmp_path, env=CPU_ONLY)
    assert res.returncode == 2 and "holds another recipe (train.max_steps differ)" in res.stderr


def test_node_arguments_are_checked(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, "args")
    res = tuitune("train", str(r), "--nnodes", "2", "--dry-run", cwd=tmp_path, env=CPU_ONLY)
    assert res.returncode == 2 and "--main-address HOST and --main-port PORT" in res.stderr
    res = tuitune("train", str(r), "--nnodes", "2", "--node-rank", "2", "--main-address", "h", "--main-port", "1",
                  "--dry-run", cwd=tmp_path, env=CPU_ONLY)
    assert res.returncode == 2 and "--node-rank 2: must be 0..1" in res.stderr
