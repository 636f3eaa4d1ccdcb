"""The estimator follows what the training engine does (see docs/architecture.md, memory section)."""

from __future__ import annotations

from tuitune.core import memory
from tuitune.core.memory.fit_plan import plan
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import new_recipe

GiB = 2**30


def recipe(method="lora", **values):
    r = new_recipe(method)
    for key, value in values.items():
        r.set(key.replace("__", "."), value)
    return r


def test_the_head_follows_the_trained_positions():
    spec = model_spec("llama-3-8b")
    rec = recipe(data__cutoff_len=2048, train__batch_size=2)
    every = memory.estimate(spec, rec)
    third = memory.estimate(spec, rec, trained_fraction=1 / 3)
    # The chunked head projects only labelled positions: the loss's moments shrink with them.
    for phase in ("forward", "loss backward"):
        assert third.phases[phase] < every.phases[phase]
    assert third.components["weights"] == every.components["weights"]
    # The model's own loss (chunked_head=False) covers every position, whatever the labels.
    plain = memory.estimate(spec, rec, chunked_head=False)
    assert memory.estimate(spec, rec, trained_fraction=1 / 3, chunked_head=False).phases == plain.phases
    assert plain.phases["loss backward"] > every.phases["loss backward"] + 10 * spec.vocab_size * 2 * 2048


def test_virtual_token_methods_use_the_chunked_head_too():
    spec = model_spec("llama-3-8b")
    rec = recipe("prompt", data__cutoff_len=1024)
    # The engine's head drops the virtual tokens' positions (they have no label) and masked ones.
    assert memory.estimate(spec, rec, trained_fraction=0.2).phases["forward"] < memory.estimate(spec, rec).phases["forward"]
    plain = memory.estimate(spec, rec, chunked_head=False)
    assert memory.estimate(spec, rec).phases["loss backward"] < plain.phases["loss backward"]


def test_eval_peak_is_reported_and_grows_with_the_batch():
    spec = model_spec("qwen2.5-0.5b")
    small = memory.estimate(spec, recipe(train__batch_size=1))
    big = memory.estimate(spec, recipe(train__batch_size=8))
    assert 0 < small.eval_peak_bytes < big.eval_peak_bytes
    assert small.to_dict()["eval_peak_bytes"] == small.eval_peak_bytes


def test_fused_adamw_on_cuda_makes_no_step_temporaries():
    spec = model_spec("llama-3.2-1b")
    n = spec.total_params
    cuda = memory.resolve_setup(recipe("full"), device="cuda")
    cpu = memory.resolve_setup(recipe("full"), device="cpu")
    assert memory.optimizer_temporaries(spec, cuda, n) == 0  # engine: optim="adamw_torch_fused"
    assert memory.optimizer_temporaries(spec, cpu, n) > 0  # torch's single-tensor AdamW loop
    e = memory.estimate(spec, recipe("full"))
    static = e.components["weights"] + e.components["optimizer"]
    assert abs(e.phases["optimizer step"] - static - spec.total_params * 2) < 2**20  # + bf16 gradients only


def test_qlora_norms_are_fp32_and_head_follows_autocast():
    spec = model_spec("llama-3-8b")
    auto = memory.estimate(spec, recipe("qlora"))
    no_autocast = memory.estimate(spec, recipe("qlora", train__mixed_precision="no"))
    head = (spec.embedding_params + spec.lm_head_params) * 2  # the extra 2 bytes per element in fp32
    assert no_autocast.components["weights"] - auto.components["weights"] == head


def test_cpu_autocast_only_with_native_bf16():
    rec = recipe(train__mixed_precision="bf16")
    assert memory.resolve_setup(rec, device="cpu", bf16=False).autocast is False
    assert memory.resolve_setup(rec, device="cpu", bf16=True).autocast is True
    assert memory.resolve_setup(recipe(), device="cpu", bf16=True).autocast is False  # auto means fp32 on CPU


def test_8bit_inputs_are_kept_on_cuda_only():
    spec = model_spec("qwen2.5-0.5b")
    rec = recipe("qlora", quantization__bits=8, data__cutoff_len=2048)
    cuda = memory.estimate(spec, rec)
    cpu = memory.estimate(spec, rec, device="cpu")
    lora_cpu = memory.estimate(spec, recipe("lora", data__cutoff_len=2048), device="cpu")
    assert any("8-bit QLoRA" in n for n in cuda.notes)
    assert not any("8-bit QLoRA" in n for n in cpu.notes)
    # On CPU (MatMul8bitFp keeps no input) 8-bit QLoRA never needs more than LoRA.
    assert cpu.allocated_peak_bytes <= lora_cpu.allocated_peak_bytes


def test_suggestions_that_save_nothing_are_left_out():
    spec = model_spec("llama-3-8b")
    p = plan(spec, recipe("lora"), 16 * GiB)
    texts = [s.text for s in p.suggestions]
    assert texts and not any("8-bit AdamW" in t for t in texts)
    assert all(s.total_bytes <= 0.98 * p.estimate.train_peak_bytes for s in p.suggestions)
    # For full fine-tuning the 8-bit optimizer is a real saving and stays.
    full = plan(spec, recipe("full"), 80 * GiB)
    assert any("8-bit AdamW" in s.text for s in full.suggestions)
