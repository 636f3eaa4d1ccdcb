"""Choosing GPUs for `tuitune train`: the launch plan (--dry-run --json), auto, wrong indices, runs
that do not fit, and the environment and sockets of real trainer processes. The GPUs are fake
(TUITUNE_FAKE_GPU, behind core's GpuProbe); the trainers are real and train on the CPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psutil
from engine_support import (
    FACTS,
    events,
    status,
    tuitune,
    wait_for,
    write_jsonl,
    write_recipe,
)

from tuitune.core.memory import estimate
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import load_recipe
from tuitune.core.runs import RunDirectory

FOUR_ONE_BUSY = {"TUITUNE_FAKE_GPU": "4xA100,busy=0:38GB"}  # GPU 0: python3, pid 40000, 38 GiB


def recipe(tmp_path: Path, model_dir: Path | str, name: str = "g", **sections) -> Path:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    sections.setdefault("lora", {"r": 8, "target_modules": "all-linear"})
    return write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, "lora", **sections)


def plan(tmp_path: Path, r: Path, *args: str, env: dict | None = None) -> dict:
    res = tuitune("train", str(r), *args, "--dry-run", "--json", cwd=tmp_path, env=env or FOUR_ONE_BUSY)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_dry_run_prints_the_launch_plan_and_starts_nothing(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir)
    got = plan(tmp_path, r, "--gpus", "0,2")
    assert got["gpus"] == [0, 2] and got["nproc"] == 2
    assert got["env"]["CUDA_VISIBLE_DEVICES"] == "0,2" and got["env"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    command = got["command"]
    assert command[command.index("--num_processes") + 1] == "2" and "tuitune.core.engine.worker" in command
    assert command[-1] == str(tmp_path / "runs" / "g")
    # The estimator's own figure for this recipe on two GPUs (DDP: the same on each).
    rec, _ = load_recipe(r)
    assert got["estimate_bytes"] == estimate(model_spec(str(model_dir)), rec, n_gpus=2).train_peak_bytes
    # The busy GPU is named with its process before anything starts.
    assert got["warnings"] == ["GPU 0 is in use by python3 (pid 40000, 38.0 GiB): this run shares it"]
    assert not (tmp_path / "runs").exists()

    # The recipe's train.gpus is the default; one GPU means one process and no launcher.
    one = plan(tmp_path, recipe(tmp_path, model_dir, train={"gpus": [3]}))
    assert (one["gpus"], one["nproc"], one["env"]["CUDA_VISIBLE_DEVICES"]) == ([3], 1, "3")
    assert one["command"][1:3] == ["-m", "tuitune.core.engine.worker"] and one["warnings"] == []


def test_auto_takes_the_idle_gpus_with_the_most_free_memory_and_says_why(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir)
    got = plan(tmp_path, r, "--gpus", "auto", "--nproc", "2")
    assert got["gpus"] == [1, 2] and got["env"]["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert got["reason"].startswith("auto chose GPU 1, 2: the most free memory (79.6 GiB, 79.6 GiB), idle")
    assert "passed over GPU 0 (used by python3 (pid 40000, 38.0 GiB))" in got["reason"]
    assert got["warnings"] == []
    # Without --nproc, auto takes one GPU; the text output says which and why.
    res = tuitune("train", str(r), "--dry-run", cwd=tmp_path, env={"TUITUNE_FAKE_GPU": "2x24GB,busy=0:2GB"})
    assert res.returncode == 0, res.stderr
    assert "training on GPU 1 with 1 process" in res.stdout and "auto chose GPU 1" in res.stdout
    assert "CUDA_VISIBLE_DEVICES=1" in res.stdout


def test_a_wrong_gpu_index_is_one_message_naming_it_and_the_gpus_there(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir)
    res = tuitune("train", str(r), "--gpus", "5", cwd=tmp_path, env={"TUITUNE_FAKE_GPU": "2xA100"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--gpus: GPU 5 does not exist; this machine has GPU 0 (NVIDIA A100-SXM4-80GB), GPU 1 (NVIDIA A100-SXM4-80GB)" in res.stderr
    in_recipe = recipe(tmp_path, model_dir, "bad", train={"gpus": [0, 7]})
    res = tuitune("train", str(in_recipe), cwd=tmp_path, env={"TUITUNE_FAKE_GPU": "2xA100"})
    assert res.returncode == 2 and "train.gpus: GPU 7 does not exist" in res.stderr
    res = tuitune("train", str(r), "--gpus", "0", cwd=tmp_path, env={"TUITUNE_FAKE_GPU": "none"})
    assert res.returncode == 2 and "GPU 0 does not exist: no GPU was found on this machine" in res.stderr
    res = tuitune("train", str(r), "--gpus", "0,x", cwd=tmp_path)
    assert res.returncode == 2 and "'x' is not a GPU index" in res.stderr
    res = tuitune("train", str(r), "--gpus", "0,2", "--nproc", "3", cwd=tmp_path, env=FOUR_ONE_BUSY)
    assert res.returncode == 2 and "--nproc 3 but 2 GPU(s) chosen (0,2): one process per GPU" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_that_does_not_fit_is_refused_with_what_would_fit(tmp_path):
    # Llama-3-8B LoRA, batch 4 x 2048 tokens, needs ~77 GiB: far more than either 24 GB GPU has free.
    r = recipe(tmp_path, "meta-llama/Meta-Llama-3-8B", "big", data={"cutoff_len": 2048}, train={"batch_size": 4})
    env = {"TUITUNE_FAKE_GPU": "2x24GB,busy=0:10GB", "HF_HUB_OFFLINE": "1"}
    res = tuitune("train", str(r), "--gpus", "1", cwd=tmp_path, env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr and not (tmp_path / "runs").exists()
    assert "the run needs about " in res.stderr and "per GPU (estimate) but GPU 1 has 23.6 GiB free" in res.stderr
    # What would fit: the planner's changes that fit the GPU, with their estimates.
    assert re.search(r"hint: turn on gradient checkpointing .*\(\d+\.\d GiB\)", res.stderr)
    assert re.search(r"checkpoints offloaded to CPU RAM .*\(\d+\.\d GiB\); or --force to start anyway", res.stderr)
    forced = plan(tmp_path, r, "--gpus", "1", "--force", env=env)
    assert forced["gpus"] == [1] and "(started anyway: --force)" in forced["warnings"][-1]
    # QLoRA on Qwen2.5-7B (~10 GiB) fits GPU 1 but not the busy GPU 0: the refusal names the GPU with room.
    small = recipe(tmp_path, "Qwen/Qwen2.5-7B", "small", method={"type": "qlora"}, data={"cutoff_len": 512},
                   train={"batch_size": 1})
    res = tuitune("train", str(small), "--gpus", "0", cwd=tmp_path, env={**env, "TUITUNE_FAKE_GPU": "2x24GB,busy=0:20GB"})
    assert res.returncode == 2 and "GPUs with room: 1 (--gpus 1)" in res.stderr


def _tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def test_real_trainers_receive_the_gpus_and_listen_on_loopback_only(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, train={"max_steps": 5000, "logging_steps": 1, "save_steps": 0})
    res = tuitune("train", str(r), "--gpus", "0,2", "--detach", cwd=tmp_path, env=FOUR_ONE_BUSY)
    assert res.returncode == 0, res.stderr
    assert "warning: GPU 0 is in use by python3 (pid 40000, 38.0 GiB)" in res.stderr
    run = tmp_path / "runs" / "g"
    try:
        wait_for(lambda: len(events(run, "step")) >= 2, timeout=300)
        procs = _tree(RunDirectory(run).holder_pid())  # the launcher (it holds the lock) and its workers
        workers = [p for p in procs if "RANK" in p.environ()]  # torchrun's workers
        assert len(workers) == 2
        for p in procs:
            environ = p.environ()  # what the process was started with: set before anything touched CUDA
            assert (environ["CUDA_VISIBLE_DEVICES"], environ["CUDA_DEVICE_ORDER"]) == ("0,2", "PCI_BUS_ID"), p.cmdline()
        listening = [c.laddr for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening, "the launcher's store listens somewhere"
        assert all(addr.ip in ("127.0.0.1", "::1") for addr in listening), listening
        (start,) = events(run, "start")
        assert start["cuda_visible_devices"] == "0,2" and start["world_size"] == 2
        # The launch's warning is the run's first event: the Train screen and `runs watch` show it too.
        assert events(run)[0] == {**events(run)[0], "type": "warning",
                                  "message": "GPU 0 is in use by python3 (pid 40000, 38.0 GiB): this run shares it"}
        devices = events(run, "step")[-1]["memory"]["devices"]
        assert [d["rank"] for d in devices] == [0, 1] and all(d["rss"] > 0 for d in devices)
    finally:
        tuitune("stop", "g", "--runs-dir", str(tmp_path / "runs"), "--wait", cwd=tmp_path)
    assert status(run)["status"] == "stopped"


def test_one_gpu_one_process_gets_its_environment(model_dir, tmp_path):
    r = recipe(tmp_path, model_dir, train={"max_steps": 2, "logging_steps": 1})
    res = tuitune("train", str(r), "--gpus", "0", cwd=tmp_path, env=FOUR_ONE_BUSY)
    assert res.returncode == 0, res.stderr
    # Followed here: where it trains on stderr, the busy GPU once, from the run's events.
    assert "training on GPU 0 with 1 process" in res.stderr
    assert res.stdout.count("GPU 0 is in use by python3 (pid 40000, 38.0 GiB)") == 1
    run = tmp_path / "runs" / "g"
    (start,) = events(run, "start")
    assert start["cuda_visible_devices"] == "0" and start["world_size"] == 1
    assert start["gpus"] is None and start["device"] == "cpu"  # the GPUs are fake: the CPU trained
    assert "(nproc 1, GPUs 0)" in (run / "train.log").read_text()
