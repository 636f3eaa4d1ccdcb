"""Memory of recipes trained together: the arithmetic (base once, per-job states, the schedule's
activations) and, on CPU, the group engine's measured live tensor peak within 10% of the estimate."""

from __future__ import annotations

import json

import pytest
from engine_support import FACTS, tuitune, write_jsonl, write_recipe

from tuitune.core.memory import estimate
from tuitune.core.memory.together import estimate_together
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import load_recipe, new_recipe

REPO_RECIPE = "recipes/llama3-8b-qlora-24gb.toml"


def llama_jobs(n: int, **changes):
    recipe = new_recipe("qlora", "meta-llama/Meta-Llama-3-8B-Instruct")
    recipe.train.gradient_checkpointing = True
    for key, value in changes.items():
        section, name = key.split("__")
        setattr(getattr(recipe, section), name, value)
    return model_spec("llama-3-8b"), [recipe.copy() for _ in range(n)]


@pytest.mark.parametrize("schedule", ["fused", "round-robin"])
def test_the_base_is_counted_once_and_each_job_adds_its_states(schedule):
    spec, jobs = llama_jobs(4)
    one = estimate(spec, jobs[0])
    group = estimate_together(spec, jobs, schedule=schedule)
    c = group.components
    assert c["weights"] == one.components["weights"]
    assert c["adapter"] == 4 * one.components["adapter"] and c["optimizer"] == 4 * one.components["optimizer"]
    assert c["cuda_context"] == one.components["cuda_context"]  # one process
    assert group.separate_bytes == 4 * one.train_peak_bytes
    assert one.train_peak_bytes < group.train_peak_bytes < group.separate_bytes
    assert sum(c.values()) == group.train_peak_bytes
    assert [j.alone_bytes for j in group.jobs] == [one.train_peak_bytes] * 4


def test_fused_holds_every_jobs_activations_round_robin_only_one():
    from tuitune.core.memory import resolve_setup
    from tuitune.core.memory.estimator import activation_memory

    spec, jobs = llama_jobs(4, train__gradient_checkpointing=False)
    fused = estimate_together(spec, jobs, schedule="fused")
    rr = estimate_together(spec, jobs, schedule="round-robin")
    one = estimate(spec, jobs[0])
    static = sum(fused.components[k] for k in ("weights", "adapter", "optimizer", "master_weights"))
    act = activation_memory(spec, resolve_setup(jobs[0]))
    assert fused.phases["forward"] == pytest.approx(static + 4 * act.saved + act.transient, rel=1e-6)
    # Round-robin: one job's step on top of every job's states.
    assert rr.allocated_peak_bytes == pytest.approx(
        one.allocated_peak_bytes + 3 * (one.components["adapter"] + one.components["optimizer"]), rel=1e-6)
    assert fused.allocated_peak_bytes > rr.allocated_peak_bytes


def test_fused_pads_every_job_to_the_widest_cutoff():
    spec, jobs = llama_jobs(2)
    jobs[1].data.cutoff_len = jobs[0].data.cutoff_len // 4
    padded = estimate_together(spec, jobs, schedule="fused")
    jobs[1].data.cutoff_len = jobs[0].data.cutoff_len
    same = estimate_together(spec, jobs, schedule="fused")
    assert padded.allocated_peak_bytes == same.allocated_peak_bytes
    assert any("padded" in n for n in padded.notes)


def test_cli_four_llama_qlora_jobs_fit_24gb_together_but_not_separately(repo_root):
    res = tuitune("estimate", "--together", *[REPO_RECIPE] * 4, "--gpu-memory", "24GB", "--json", cwd=repo_root)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["jobs_count"] == 4 and len(d["jobs"]) == 4 and d["schedule"] == "fused"
    assert d["verdict"] in ("fits", "tight") and d["separate_verdict"] == "does not fit"
    assert d["total_bytes"] < d["separate_total_bytes"] and 0.5 < d["saved_fraction"] < 0.8
    res = tuitune("estimate", "--together", REPO_RECIPE, "recipes/quickstart.toml", cwd=repo_root)
    assert res.returncode == 2 and "quickstart.toml" in res.stderr and "must agree" in res.stderr


@pytest.mark.parametrize("schedule", ["fused", "round-robin"])
def test_measured_peak_of_two_jobs_together_is_within_ten_percent(schedule, model_dir, tmp_path):
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=3)
    paths = [
        write_recipe(tmp_path / "a.toml", model_dir, data, tmp_path / "runs", "a", lora={"r": 4},
                     train={"batch_size": 2, "gradient_accumulation": 2}),
        write_recipe(tmp_path / "b.toml", model_dir, data, tmp_path / "runs", "b",
                     lora={"r": 16, "target_modules": "all-linear"}, train={"batch_size": 3}),
    ]
    res = tuitune("estimate", "--together", *map(str, paths), "--measure", "--schedule", schedule, "--json",
                  cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)["measured"]
    assert m["fits"] and m["schedule"] == schedule and [s[0] for s in m["shapes"]] == [2, 3]
    for phase in ("after_load", "train_step"):
        row = m["comparison"][phase]
        assert row["measured_bytes"] > 0 and abs(row["error"]) < 0.10, (phase, row)
    # The group's own runs were temporary: nothing is left in the recipes' runs folder.
    assert not (tmp_path / "runs").exists()
    assert [load_recipe(p)[1] for p in paths] == [[], []]
