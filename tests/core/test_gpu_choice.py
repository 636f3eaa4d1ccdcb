"""Choosing GPUs (core.gpu_choice) and `--gpus` on estimate, chat, eval and export. GPUs are fake
(core.hardware.FakeGpuProbe, the same reader `TUITUNE_FAKE_GPU` selects)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from engine_support import tuitune

from tuitune.core.errors import UserError
from tuitune.core.gpu_choice import AUTO, apply_to_environ, choose_gpus, parse_gpus
from tuitune.core.hardware import FakeGpuProbe
from tuitune.core.recipe import FIELDS, load_recipe, parse_text, save_recipe, validate

GiB = 2**30
FINISHED = Path(__file__).resolve().parents[1] / "data" / "runs" / "finished-demo"


def gpus(spec: str):
    reading = FakeGpuProbe(spec).read()
    assert not reading.problems, reading.problems
    return reading.gpus


@pytest.mark.parametrize(("text", "want"), [("auto", AUTO), ("0,2", [0, 2]), ("[3, 1]", [3, 1]), (" 1 ", [1]), ("0 2", [0, 2])])
def test_gpu_lists_are_read_in_the_order_given(text, want):
    assert parse_gpus(text) == want


@pytest.mark.parametrize(("text", "message"), [("", "no GPU given"), ("0,a", "'a' is not a GPU index"),
                                               ("1,1", "GPU 1 is listed twice"), ("-1", "'-1' is not a GPU index")])
def test_bad_gpu_lists_say_what_is_wrong(text, message):
    with pytest.raises(UserError, match=message):
        parse_gpus(text)


def test_fake_busy_gpus_hold_a_named_process():
    g = gpus("3xA100,busy=1:38GB")[1]
    assert (g.free_bytes, g.utilization_pct) == (80 * GiB - 400 * 2**20 - 38 * GiB, 97)
    assert [(p.pid, p.name, p.used_bytes) for p in g.processes] == [(40001, "python3", 38 * GiB)]
    assert FakeGpuProbe("2xA100,busy=5:1GB").read().problems  # no GPU 5: said, not ignored


def test_auto_prefers_gpus_that_fit_then_idle_ones_then_free_memory():
    machine = gpus("4x48GB,busy=0:1GB,busy=2:30GB")  # 0: busy, nearly empty; 2: busy and full-ish
    choice = choose_gpus(machine, AUTO, count=2, need_for=lambda n: 20 * GiB)
    assert choice.indices == [1, 3]  # idle ones first, even though GPU 0 has as much free
    assert choice.env() == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "1,3"}
    assert choice.warnings == [] and "passed over GPU 0 (used by python3 (pid 40000, 1.0 GiB)); GPU 2" in choice.reason
    # When only busy GPUs have the room, the room wins, and the user is told who else is there.
    crowded = gpus("3x48GB,busy=0:2GB,busy=1:40GB,busy=2:45GB")
    choice = choose_gpus(crowded, AUTO, need_for=lambda n: 30 * GiB)
    assert choice.indices == [0] and choice.warnings == ["GPU 0 is in use by python3 (pid 40000, 2.0 GiB): this run shares it"]
    with pytest.raises(UserError, match="3 processes need 3 GPUs but this machine has 2"):
        choose_gpus(gpus("2xA100"), AUTO, count=3)


def test_auto_takes_more_gpus_when_sharding_makes_it_fit():
    machine = gpus("4x24GB")
    need = {1: 40 * GiB, 2: 21 * GiB, 3: 15 * GiB, 4: 12 * GiB}  # what FSDP needs per GPU over n GPUs
    assert choose_gpus(machine, AUTO, need_for=need.get, grow=True).indices == [0, 1]
    assert choose_gpus(machine, AUTO, need_for=need.get).indices == [0]  # DDP: more GPUs do not help
    too_big = {n: 100 * GiB for n in range(1, 5)}
    assert choose_gpus(machine, AUTO, need_for=too_big.get, grow=True).indices == [0]  # refused later


def test_chosen_gpus_use_the_physical_numbers_in_the_child():
    # This process sees physical GPUs 2 and 3 as 0 and 1 (its own CUDA_VISIBLE_DEVICES): a child gets 3.
    from tuitune.core.hardware import NvmlGpuProbe

    class Nvml:  # a stand-in NVML with four GPUs, for a machine without one
        def nvmlInit(self): ...
        def nvmlSystemGetDriverVersion(self): return "550.1"
        def nvmlSystemGetCudaDriverVersion_v2(self): return 12040
        def nvmlDeviceGetCount(self): return 4
        def nvmlDeviceGetHandleByIndex(self, i): return i
        def nvmlDeviceGetUUID(self, h): return f"GPU-{h}"
        def nvmlDeviceGetName(self, h): return "NVIDIA L4"
        def nvmlDeviceGetCudaComputeCapability(self, h): return (8, 9)
        def nvmlDeviceGetMemoryInfo(self, h): return type("M", (), {"total": 24 * GiB, "free": 20 * GiB})()
        def nvmlDeviceGetUtilizationRates(self, h): return type("U", (), {"gpu": 0})()
        def nvmlDeviceGetTemperature(self, h, what): return 40
        def nvmlDeviceGetComputeRunningProcesses(self, h): return []
        def nvmlDeviceGetGraphicsRunningProcesses(self, h): return []
        NVML_TEMPERATURE_GPU = 0

    reading = NvmlGpuProbe({"CUDA_VISIBLE_DEVICES": "2,3", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=Nvml()).read()
    choice = choose_gpus(reading.gpus, [1])
    assert choice.indices == [1] and choice.env()["CUDA_VISIBLE_DEVICES"] == "3"
    environ: dict[str, str] = {}
    apply_to_environ(choice, environ)
    assert environ == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "3"}


def test_the_recipe_field_takes_auto_or_indices_and_round_trips(tmp_path):
    spec = FIELDS["train.gpus"]
    assert spec.default == "auto" and spec.help["zh"] and spec.label["zh"] == "使用的 GPU"
    assert parse_text(spec, "0, 2") == ([0, 2], None)
    for bad in ("[]", "1,1", "x", "-1"):
        assert parse_text(spec, bad)[1] is not None, bad
    recipe, _ = load_recipe(tmp_path / "missing.toml")
    recipe.train.gpus = [2, 0]
    again, problems = load_recipe(save_recipe(recipe, tmp_path / "r.toml"))
    assert problems == [] and again.train.gpus == [2, 0]
    (tmp_path / "bad.toml").write_text('[train]\ngpus = [0, "a"]\n')
    _, problems = load_recipe(tmp_path / "bad.toml")
    assert [p.format() for p in problems] == [
        'train.gpus: "a" is not a GPU index (a list of GPU indices such as [0, 2] or "auto")']
    recipe.train.gpus = True
    assert [p.key for p in validate(recipe)] == ["train.gpus"]


def test_estimate_plans_for_the_chosen_gpus(tmp_path):
    env = {"TUITUNE_FAKE_GPU": "4xA100,busy=1:60GB"}
    res = tuitune("estimate", "llama-3-8b", "--method", "lora", "--gpus", "1", "--json", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["available_from"] == "free on GPU 1 (NVIDIA A100-SXM4-80GB)" and got["verdict"] == "does not fit"
    assert "GPU 1 is in use by python3 (pid 40001, 60.0 GiB)" in res.stderr
    res = tuitune("estimate", "llama-3-8b", "--method", "full", "--set", "distributed.strategy=fsdp", "--gpus", "auto",
                  "--json", env=env, cwd=tmp_path)
    got = json.loads(res.stdout)
    assert "auto chose GPU 0, 2" in res.stderr and got["verdict"] == "fits"
    assert "FSDP over 2 GPUs" in " ".join(got["notes"])
    res = tuitune("estimate", "llama-3-8b", "--gpus", "9", env=env, cwd=tmp_path)
    assert res.returncode == 2 and "--gpus: GPU 9 does not exist; this machine has GPU 0" in res.stderr


@pytest.mark.parametrize("command", [["eval", str(FINISHED)], ["export", str(FINISHED), "--adapter", "out"]])
def test_eval_and_export_name_a_wrong_gpu_before_loading(command, tmp_path):
    res = tuitune(*command, "--gpus", "4", env={"TUITUNE_FAKE_GPU": "2xL4"}, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--gpus: GPU 4 does not exist; this machine has GPU 0 (NVIDIA L4), GPU 1 (NVIDIA L4)" in res.stderr


def test_chat_loads_on_the_gpu_chosen(tiny_model_dir, tmp_path):
    env = {"TUITUNE_FAKE_GPU": "2xL4,busy=0:20GB"}
    res = tuitune("chat", str(tiny_model_dir), "--gpus", "auto", "--prompt", "hi", "--max-new-tokens", "2",
                  "--temperature", "0", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "using GPU 1 (NVIDIA L4)" in res.stderr and "auto chose GPU 1" in res.stderr


def test_use_gpus_sets_this_process_environment(monkeypatch):
    import argparse

    from tuitune.commands._gpus import use_gpus

    monkeypatch.setenv("TUITUNE_FAKE_GPU", "4xL4")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # restored after the test, whatever use_gpus writes
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")
    assert use_gpus(argparse.Namespace(gpus="2,0")) == [2, 0]
    assert (os.environ["CUDA_VISIBLE_DEVICES"], os.environ["CUDA_DEVICE_ORDER"]) == ("2,0", "PCI_BUS_ID")
