"""Training options reach the Trainer and show in the events: schedulers, optimizers, checkpointing,
accumulation, evaluation, token counts, incremental training. Real (short) runs in this process."""

from __future__ import annotations

import math

import pytest
import torch
from engine_support import FACTS, events, status, write_jsonl, write_recipe

from tuitune.core.data import prepare_training_data
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.models import load_tokenizer
from tuitune.core.recipe import SCHEDULERS, load_recipe

STEP_FIELDS = {"step", "max_steps", "epoch", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s", "eta_s", "memory"}


def train(tmp_path, model_dir, name="t", method="lora", repeat=2, **sections):
    data = write_jsonl(tmp_path / f"{name}.jsonl", FACTS, repeat=repeat)
    recipe_file = write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, method, **sections)
    recipe, problems = load_recipe(recipe_file)
    assert not problems, problems
    run = prepare_run(recipe)
    return train_run(run.path), run, recipe


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_shapes_the_learning_rate(scheduler, model_dir, tmp_path):
    from transformers import get_scheduler

    steps, lr = 8, 1e-3
    code, run, _ = train(tmp_path, model_dir, train={"max_steps": steps, "logging_steps": 1, "lr_scheduler": scheduler,
                                                      "warmup_ratio": 0.25, "learning_rate": lr})
    assert code == 0
    logged = [e["lr"] for e in events(run.path, "step")]
    # What the scheduler should give: transformers' own schedule for the same settings.
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = get_scheduler(scheduler, opt, num_warmup_steps=math.ceil(0.25 * steps), num_training_steps=steps)
    expected = []
    for _ in range(steps):
        expected.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert logged == pytest.approx(expected, rel=1e-6, abs=1e-12)
    if scheduler != "constant":  # the only schedule without warm-up
        assert len({round(x, 12) for x in logged}) > 1


@pytest.mark.parametrize(("optimizer", "state_key"), [("adamw_torch", "betas"), ("sgd", "momentum"), ("adafactor", "scale_parameter")])
def test_optimizers_on_cpu(optimizer, state_key, model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, train={"max_steps": 4, "save_steps": 4, "optimizer": optimizer, "learning_rate": 5e-3})
    assert code == 0
    saved = torch.load(run.last_checkpoint() / "optimizer.pt", weights_only=False)
    assert state_key in saved["param_groups"][0]
    losses = [e["loss"] for e in events(run.path, "step")]
    assert all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize("optimizer", ["adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"])
def test_gpu_only_optimizers_fail_clearly_before_loading_the_model(optimizer, model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, train={"optimizer": optimizer})
    assert code == 2
    (error,) = events(run.path, "error")
    assert error["kind"] == "config" and "needs a CUDA GPU" in error["message"] and optimizer in error["message"]
    assert "adamw_torch" in error["hint"]
    assert not any(e.get("status") == "loading" for e in events(run.path, "status"))
    assert status(run.path)["status"] == "failed"


def test_checkpointing_and_accumulation(model_dir, tmp_path):
    # 8 rows, batch 2, accumulation 2: 2 optimizer steps per epoch.
    code, run, _ = train(tmp_path, model_dir, lora={"r": 16, "target_modules": "all-linear"},
                         train={"max_steps": 0, "epochs": 5, "gradient_accumulation": 2, "gradient_checkpointing": True,
                                "logging_steps": 1})
    assert code == 0
    (start,) = events(run.path, "start")
    assert start["gradient_checkpointing"] is True and start["max_steps"] == 10
    steps = events(run.path, "step")
    assert steps[-1]["step"] == 10 and steps[-1]["epoch"] == pytest.approx(5.0)
    assert steps[-1]["loss"] < 0.7 * steps[0]["loss"]


def test_peak_memory_is_the_trainers_own_not_its_parents():
    """A trainer started by a process holding much memory (the TUI after a chat) reports its own peak:
    on Linux ru_maxrss carries the parent's peak across fork and exec."""
    import subprocess
    import sys

    held = bytearray(600 * 2**20)
    held[:: 4096] = b"\x01" * len(held[:: 4096])  # make the pages resident
    code = "from tuitune.core.engine.resources import _peak_rss_bytes; print(_peak_rss_bytes())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert 1_000_000 < int(done.stdout) < 400 * 2**20, done.stdout
    del held


def test_step_events_carry_every_figure_and_count_real_tokens(model_dir, tmp_path):
    code, run, recipe = train(tmp_path, model_dir, data={"packing": True}, train={"max_steps": 0, "epochs": 1, "logging_steps": 1, "batch_size": 1})
    assert code == 0
    steps = events(run.path, "step")
    assert steps and all(STEP_FIELDS <= set(e) for e in steps)
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    mem = steps[-1]["memory"]
    assert mem["device"] == "cpu" and mem["rss"] > 10_000_000 and mem["peak"] >= mem["rss"] * 0.5
    assert all(e["tokens_per_s"] > 0 and e["elapsed_s"] >= 0 for e in steps)
    assert steps[-1]["eta_s"] == 0
    # One epoch sees every token of the training split once (packing adds no padding).
    prepared = prepare_training_data(recipe, load_tokenizer(recipe.model_path))
    assert steps[-1]["tokens"] == prepared.train_tokens
    assert events(run.path, "start")[0]["packed"] is True


@pytest.mark.parametrize("packing", [False, True])
def test_validation_split_reports_eval_loss_and_perplexity(packing, model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, repeat=3, data={"val_size": 0.25, "packing": packing},
                         train={"max_steps": 12, "eval_steps": 4})
    assert code == 0
    evals = events(run.path, "eval")
    assert [e["step"] for e in evals] == [4, 8, 12]
    for e in evals:
        assert e["perplexity"] == pytest.approx(math.exp(e["eval_loss"]))
    best = min(e["eval_loss"] for e in evals)
    assert events(run.path, "done")[0]["best_eval_loss"] == pytest.approx(best)
    assert status(run.path)["best_eval_loss"] == pytest.approx(best)
    assert events(run.path, "start")[0]["num_eval"] == 3


def test_incremental_training_continues_from_an_adapter(model_dir, tmp_path):
    lora = {"r": 16, "target_modules": "all-linear"}
    code, first, _ = train(tmp_path, model_dir, name="first", lora=lora, train={"max_steps": 15})
    assert code == 0
    code, fresh, _ = train(tmp_path, model_dir, name="fresh", lora=lora, train={"max_steps": 2, "logging_steps": 1})
    # Continue from the run folder (its adapter/ is found), with a tiny learning rate so the start is visible.
    code2, cont, _ = train(tmp_path, model_dir, name="cont", lora=lora, model={"adapter": str(first.path)},
                           train={"max_steps": 2, "logging_steps": 1, "learning_rate": 1e-6})
    assert code == 0 and code2 == 0
    # Same seed and data: the first batch is the same in both runs; the continued adapter knows it.
    start_loss = events(cont.path, "step")[0]["loss"]
    assert start_loss < 0.75 * events(fresh.path, "step")[0]["loss"]
    # Two steps at lr 1e-6 barely move the weights: the saved adapter is the first run's, continued.
    from safetensors.torch import load_file

    before = load_file(first.adapter_dir / "adapter_model.safetensors")
    after = load_file(cont.adapter_dir / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    moved = max(float((after[k] - before[k]).abs().max()) for k in before)
    assert 0 < moved < 1e-4
    fresh_adapter = load_file(fresh.adapter_dir / "adapter_model.safetensors")
    assert max(float((fresh_adapter[k] - before[k]).abs().max()) for k in before) > 100 * moved


def test_incremental_training_refuses_an_adapter_of_another_method(model_dir, tmp_path):
    code, first, _ = train(tmp_path, model_dir, name="first", train={"max_steps": 2})
    assert code == 0
    code, run, _ = train(tmp_path, model_dir, name="second", method="ia3", model={"adapter": str(first.adapter_dir)})
    assert code == 2
    (error,) = events(run.path, "error")
    assert error["kind"] == "config" and "LORA adapter" in error["message"] and "IA3" in error["message"]


def test_prefix_tuning_with_gradient_checkpointing_is_refused(model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, method="prefix", train={"gradient_checkpointing": True})
    assert code == 2
    assert "gradient checkpointing" in events(run.path, "error")[0]["message"]


def test_virtual_token_methods_train_unpacked_with_a_warning(model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, method="prompt", data={"packing": True}, train={"max_steps": 2})
    assert code == 0
    assert events(run.path, "start")[0]["packed"] is False
    assert any("packing is off" in e["message"] for e in events(run.path, "warning"))


def test_bf16_on_cpu_runs_under_autocast_where_the_cpu_has_it(model_dir, tmp_path):
    from tuitune.core.models.precision import cpu_bf16_native

    code, run, _ = train(tmp_path, model_dir, lora={"r": 16, "target_modules": "all-linear"},
                         train={"max_steps": 10, "mixed_precision": "bf16", "logging_steps": 1})
    assert code == 0
    start = events(run.path, "start")[0]
    steps = events(run.path, "step")
    assert all(math.isfinite(e["loss"]) for e in steps) and steps[-1]["loss"] < 0.8 * steps[0]["loss"]
    if cpu_bf16_native():
        assert start["precision"] == "bf16"
        assert not [e for e in events(run.path, "warning") if "mixed_precision" in e["message"]]
    else:
        assert start["precision"] == "fp32"
        assert any("no native bfloat16" in e["message"] for e in events(run.path, "warning"))


def test_fp16_on_cpu_falls_back_to_fp32_with_a_warning(model_dir, tmp_path):
    code, run, _ = train(tmp_path, model_dir, name="h", train={"max_steps": 2, "mixed_precision": "fp16"})
    assert code == 0 and events(run.path, "start")[0]["precision"] == "fp32"
    assert any("fp16 needs a GPU" in e["message"] for e in events(run.path, "warning"))
