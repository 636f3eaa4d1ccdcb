"""train.offload_activations: the checkpointed layers' inputs go through the offload hooks (moved to
pinned host memory on CUDA; counted, not moved, on a CPU), training is unchanged, the estimator and
the fit planner account for it. What it saves on a GPU is measured by bench/gpu_check.py."""

from __future__ import annotations

import pytest
import torch
from engine_support import FACTS, events, write_jsonl, write_recipe

from tuitune.core import memory
from tuitune.core.engine.offload import ActivationOffload
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.errors import UserError
from tuitune.core.memory.fit_plan import plan
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import load_recipe, new_recipe, validate

GiB = 2**30


def _lora_model(model_dir, checkpointing: bool):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def _step(model, ids, offload: ActivationOffload | None):
    def forward():
        # The decoder's last hidden state squared: no head, so what the hooks see is the layers' saves.
        return model.base_model.model.model(input_ids=ids).last_hidden_state.square().mean()

    if offload is None:
        loss = forward()
    else:
        with offload:
            loss = forward()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def test_the_hooks_see_the_checkpoints_and_change_nothing(model_dir):
    batch, seq = 4, 128
    ids = torch.randint(3, 500, (batch, seq), generator=torch.Generator().manual_seed(1))
    plain = _lora_model(model_dir, checkpointing=True)
    loss_plain, grads_plain = _step(plain, ids, None)

    model = _lora_model(model_dir, checkpointing=True)
    offload = ActivationOffload(model)
    loss, grads = _step(model, ids, offload)
    assert torch.equal(loss, loss_plain)
    assert grads.keys() == grads_plain.keys() and all(torch.equal(grads[k], grads_plain[k]) for k in grads)

    config = model.config
    layer_inputs = config.num_hidden_layers * batch * seq * config.hidden_size * 4  # fp32 residual stream
    # The checkpoints, plus what the final norm and the squared loss save outside the layers.
    assert layer_inputs <= offload.offloaded_bytes <= layer_inputs + 4 * batch * seq * config.hidden_size * 4
    # Without checkpointing every saved activation of every layer goes through the hooks: many times more.
    eager = _lora_model(model_dir, checkpointing=False)
    everything = ActivationOffload(eager)
    _step(eager, ids, everything)
    assert everything.offloaded_bytes > 3 * offload.offloaded_bytes


def test_weights_and_small_tensors_are_never_moved(model_dir):
    model = _lora_model(model_dir, checkpointing=True)
    offload = ActivationOffload(model)
    weight = next(p for p in model.parameters() if p.numel() * p.element_size() >= offload.min_bytes)
    view = weight.view(-1)
    assert offload._pack(weight) is weight and offload._pack(view) is view
    assert offload.offloaded_bytes == 0  # a parameter, or a view of one, is not counted
    small = torch.zeros(16)
    assert offload._pack(small) is small and offload.offloaded_bytes == 0
    big = torch.zeros(offload.min_bytes // 4)
    assert offload._unpack(offload._pack(big)) is big and offload.offloaded_bytes == offload.min_bytes


def _train(tmp_path, model_dir, name, **train):
    data = write_jsonl(tmp_path / f"{name}.jsonl", FACTS, repeat=2)
    sections = {"train": {"max_steps": 4, "logging_steps": 1, "save_steps": 0, "gradient_checkpointing": True, **train}}
    recipe_file = write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, "lora", **sections)
    recipe, problems = load_recipe(recipe_file)
    assert not problems, problems
    run = prepare_run(recipe)
    assert train_run(run.path) == 0
    return run


def test_a_run_with_offload_trains_the_same_and_says_what_it_moves(model_dir, tmp_path):
    plain = _train(tmp_path, model_dir, "plain")
    offloaded = _train(tmp_path, model_dir, "offloaded", offload_activations=True)
    assert [e["loss"] for e in events(offloaded.path, "step")] == [e["loss"] for e in events(plain.path, "step")]
    logs = [e["message"] for e in events(offloaded.path, "log") if "activation offload" in e["message"]]
    assert len(logs) == 1 and "MiB of saved activations per micro-batch" in logs[0] and "nothing moves" in logs[0]
    assert not any("activation offload" in e["message"] for e in events(plain.path, "log"))


def test_the_recipe_needs_checkpointing_for_offload():
    recipe = new_recipe("lora")
    recipe.set("train.offload_activations", True)
    problems = [p for p in validate(recipe) if p.key == "train.offload_activations"]
    assert problems and "checkpointing is off" in problems[0].message
    assert "train.gradient_checkpointing = true" in problems[0].allowed
    recipe.set("train.gradient_checkpointing", True)
    assert not [p for p in validate(recipe) if p.key == "train.offload_activations"]


def test_recipes_trained_together_refuse_offload():
    from tuitune.core.engine.together.plan import check_together

    a, b = new_recipe("lora"), new_recipe("lora")
    b.name = "b"
    for r in (a, b):
        r.set("train.gradient_checkpointing", True)
    b.set("train.offload_activations", True)
    with pytest.raises(UserError, match="offload_activations"):
        check_together([a, b], distinct_runs=False)


def _recipe(**values):
    r = new_recipe("qlora")
    for key, value in values.items():
        r.set(key.replace("__", "."), value)
    return r


def test_the_estimate_moves_the_checkpoints_off_the_gpu_only():
    spec = model_spec("llama-3-8b")
    ckpt = _recipe(data__cutoff_len=32768, train__batch_size=1, train__gradient_checkpointing=True)
    off = _recipe(data__cutoff_len=32768, train__batch_size=1, train__gradient_checkpointing=True,
                  train__offload_activations=True)
    on_gpu, offloaded = memory.estimate(spec, ckpt), memory.estimate(spec, off)
    # 32 layers x 32768 tokens x 4096 x 2 bytes of checkpoints = 8 GiB, of which 2 layers stay.
    saved = 32 * 32768 * 4096 * 2
    assert on_gpu.train_peak_bytes - offloaded.train_peak_bytes == pytest.approx(saved * 30 / 32, rel=0.15)
    assert any("pinned host RAM" in n for n in offloaded.notes)
    on_cpu = memory.estimate(spec, off, device="cpu")
    assert on_cpu.train_peak_bytes == memory.estimate(spec, ckpt, device="cpu").train_peak_bytes
    assert any("changes nothing on a CPU" in n for n in on_cpu.notes)


def test_the_planner_suggests_offload_only_when_checkpointing_is_not_enough():
    spec = model_spec("llama-3-8b")
    long = _recipe(data__cutoff_len=40960, train__batch_size=1)
    fit = plan(spec, long, available_bytes=24 * GiB)
    offload = [s for s in fit.suggestions if s.changes.get("train.offload_activations") is True]
    assert offload and offload[0].verdict == "fits" and offload[0].changes["train.gradient_checkpointing"] is True
    assert not any(s.verdict == "fits" and s.changes == {"train.gradient_checkpointing": True} for s in fit.suggestions)
    # Where checkpointing alone fits, offloading is not offered.
    short = _recipe(data__cutoff_len=8192, train__batch_size=1)
    assert not [s for s in plan(spec, short, available_bytes=24 * GiB).suggestions
                if "train.offload_activations" in s.changes]

