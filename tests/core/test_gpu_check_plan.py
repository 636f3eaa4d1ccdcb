"""bench/gpu_check.py cannot rot between GPU sessions: its dry run (every planned model built on the
meta device, every recipe checked, the whole measuring code rehearsed on the CPU with tiny models of
the same architectures) passes, and its plan covers what the GPU check promises."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_plan_covers_every_method_both_ways_on_three_real_architectures(gpu_check):
    cases = gpu_check.plan_cases()
    assert {c.size for c in cases} == {"0.5B", "1B", "8B"}
    for method in ("full", "freeze", "lora", "dora", "qlora-4bit", "qlora-8bit", "prefix", "prompt", "ia3"):
        ways = {c.checkpointing for c in cases if c.method == method}
        assert ways == ({False} if method == "prefix" else {False, True}), method
    assert len({(c.batch, c.seq) for c in cases}) >= 3
    assert {c.method for c in cases if c.baseline} == {"full", "lora", "qlora-4bit"}
    # The recipe each case trains is what `tuitune train` would accept.
    from tuitune.core.recipe import validate

    for case in cases:
        recipe = gpu_check.recipe_for(case, "/models/x")
        assert validate(recipe) == [], case.name
        assert (recipe.train.batch_size, recipe.data.cutoff_len) == (case.batch, case.seq)
        assert recipe.train.gradient_checkpointing is case.checkpointing


@pytest.mark.slow
def test_dry_run_passes_and_writes_the_table(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=1200)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "0 problem(s)" in res.stdout and "plan: " in res.stdout
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = report["rows"]
    assert rows and all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"]
    methods = {(r["case"]["method"], r["case"]["checkpointing"]) for r in rows}
    assert len(methods) == 17  # nine methods, both ways but prefix
    assert {r["case"]["size"] for r in rows} == {"0.5B", "8B"}  # tiny Qwen2 and Llama-3 architectures
    assert all(r["tokens_per_s"] for r in rows)
    assert sum(1 for r in rows if r["baseline_tokens_per_s"]) >= 3
    table = (tmp_path / "gpu_check.md").read_text()
    assert "| model | method | ckpt | batch x seq | allocated | estimate |" in table and table.count("\n| ") >= len(rows)
