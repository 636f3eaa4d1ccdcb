"""The estimator's terms, the planner and `tuitune estimate`."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuitune.core import memory
from tuitune.core.memory.fit_plan import max_batch_size, max_seq_len, plan
from tuitune.core.models.spec import model_spec, spec_from_config
from tuitune.core.recipe import FIELDS, new_recipe, parse_text

GiB = 2**30


def recipe(method="lora", **values):
    r = new_recipe(method)
    for key, value in values.items():
        key = key.replace("__", ".")
        if isinstance(value, str) and FIELDS[key].kind != "str" and FIELDS[key].kind != "choice":
            value, _ = parse_text(FIELDS[key], value)
        r.set(key, value)
    return r


# --------------------------------------------------------------------------- weights


def test_nf4_bytes_follow_the_block_layout():
    from tuitune.core.models.spec import LinearModule

    lin = LinearModule("q_proj", 4096, 4096)
    n = 4096 * 4096
    # 4-bit codes, one 8-bit absmax per 64 weights, one fp32 absmax per 256 blocks
    assert memory.quantized_linear_bytes(lin, 4, True, 2) == n / 2 + n / 64 + n / 64 / 256 * 4
    # without double quantization: an fp32 absmax per 64 weights
    assert memory.quantized_linear_bytes(lin, 4, False, 2) == n / 2 + n / 64 * 4
    # LLM.int8: a byte per weight and an fp32 scale per output row
    assert memory.quantized_linear_bytes(lin, 8, True, 2) == n + 4096 * 4


def test_quantized_model_keeps_embeddings_and_head_in_16_bit():
    spec = model_spec("llama-2-7b")
    w16 = memory.weight_bytes(spec, memory.resolve_setup(recipe("lora")))
    w4 = memory.weight_bytes(spec, memory.resolve_setup(recipe("qlora")))
    w8 = memory.weight_bytes(spec, memory.resolve_setup(recipe("qlora", quantization__bits=8)))
    assert w16 == spec.total_params * 2
    embed_and_head = 2 * 32000 * 4096 * 2
    linears = spec.num_layers * spec.linear_params_per_layer
    assert w4 == pytest.approx(embed_and_head + linears * (0.5 + 1 / 64 + 4 / 64 / 256), rel=1e-3)
    assert 3.6e9 < w4 < 3.9e9  # "a 7B model in 4 bits is about 3.8 GB"
    assert w4 < w8 < w16


# --------------------------------------------------------------------------- adapters


def _peft_trainable(tiny_model_dir, config):
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    model = peft.get_peft_model(model, config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("method", "values"),
    [
        ("lora", {"lora__r": 4, "lora__target_modules": ["q_proj", "v_proj"]}),
        ("lora", {"lora__r": 8, "lora__target_modules": "all-linear"}),
        ("lora", {"lora__r": 4, "lora__target_modules": ["q_proj", "down_proj"], "lora__use_dora": True}),
        ("ia3", {}),
        ("prefix", {"prompt__num_virtual_tokens": 10}),
        ("prompt", {"prompt__num_virtual_tokens": 12}),
        ("p-tuning", {"prompt__num_virtual_tokens": 8, "prompt__encoder_hidden_size": 32}),
        ("llama-adapter", {"prompt__num_virtual_tokens": 6, "prompt__adapter_layers": 1}),
    ],
)
def test_adapter_size_matches_peft(tiny_model_dir, method, values):
    import peft

    from tuitune.core.engine.build import peft_config  # the configs training uses

    rec = recipe(method, **values)
    spec = model_spec(str(tiny_model_dir))
    expected = memory.adapter_params(spec, memory.resolve_setup(rec))
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    model = peft.get_peft_model(model, peft_config(rec, model, tiny_model_dir, []))
    assert expected == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_ia3_targets_follow_peft_for_each_model_type():
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as peft_targets

    from tuitune.core.memory.parameters import IA3_QUERY_MODEL_TYPES

    assert {k for k, v in peft_targets.items() if "q_proj" in v} == IA3_QUERY_MODEL_TYPES


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B"])
def test_ia3_size_matches_peft_on_catalog_architectures(model):
    """Built on the meta device from the catalog's config (no weights): Qwen scales q and v, Llama k and v."""
    import peft
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tuitune.core.engine.build import peft_config
    from tuitune.core.models.catalog import CATALOG

    values = dict(CATALOG[model])
    values.pop("torch_dtype")
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    with torch.device("meta"):
        net = AutoModelForCausalLM.from_config(config)
        net = peft.get_peft_model(net, peft_config(recipe("ia3"), net, None, []))
    expected = memory.adapter_params(model_spec(model), memory.resolve_setup(recipe("ia3")))
    assert expected == net.get_nb_trainable_parameters()[0]


def test_freeze_trains_the_last_layers():
    spec = model_spec("llama-2-7b")
    s = memory.resolve_setup(recipe("freeze", freeze__trainable_layers=3))
    assert memory.trainable_params(spec, s) == 3 * spec.params_per_layer


# --------------------------------------------------------------------------- optimizer, activations


def test_optimizer_state_bytes():
    spec = model_spec("llama-2-7b")
    n = 1_000_000
    s = memory.resolve_setup(recipe("lora"))
    assert memory.optimizer_state_bytes(spec, s, n) == 8 * n  # two fp32 states for fp32 adapters
    s8 = memory.resolve_setup(recipe("lora", train__optimizer="adamw_8bit"))
    assert memory.optimizer_state_bytes(spec, s8, n) == pytest.approx(2 * n, rel=0.02)
    assert memory.optimizer_state_bytes(spec, memory.resolve_setup(recipe("lora", train__optimizer="sgd")), n) == 0
    full = memory.resolve_setup(recipe("full", model__dtype="bfloat16"))
    assert memory.optimizer_state_bytes(spec, full, n) == 4 * n  # pure bf16: states like the params
    ada = memory.resolve_setup(recipe("full", train__optimizer="adafactor"))
    assert memory.optimizer_state_bytes(spec, ada, spec.total_params) < 0.01 * 4 * spec.total_params


def test_activation_terms_react_to_their_inputs():
    spec = model_spec("llama-3-8b")

    def peak(**values):
        return memory.estimate(spec, recipe("lora", **values)).allocated_peak_bytes

    def saved(**values):
        return memory.estimate(spec, recipe("lora", **values)).components["activations"]

    base = dict(train__batch_size=2, data__cutoff_len=2048, data__packing=True)
    assert saved(**base, train__gradient_checkpointing=True) < 0.2 * saved(**base)
    assert peak(**base, train__gradient_checkpointing=True) < peak(**base)
    assert peak(**base, model__attn_implementation="eager") > peak(**base, model__attn_implementation="sdpa")
    assert peak(**dict(base, train__batch_size=4)) > peak(**base)
    # any mask (padding, or the block-diagonal one of packed rows) makes sdpa repeat k/v for
    # grouped-query attention; flash-attention never does
    assert peak(**base, model__attn_implementation="flash_attention_2") < peak(**base)
    assert peak(**dict(base, data__packing=False)) == peak(**base)
    # The model's own loss (full logits): the fp32 logits, their gradient and log-softmax, 12 bytes x
    # vocab x tokens during the loss backward, are the peak.
    plain = memory.estimate(spec, recipe("lora", **base), chunked_head=False)
    assert plain.peak_phase == "loss backward"
    assert plain.components["logits"] == 12 * spec.vocab_size * 2 * 2048
    # The engine's chunked head: the loss is no longer the peak, and it is a small share of the step.
    e = memory.estimate(spec, recipe("lora", **base))
    assert e.peak_phase != "loss backward" and e.allocated_peak_bytes < plain.allocated_peak_bytes
    assert e.phases["loss backward"] < plain.phases["loss backward"] - 10 * spec.vocab_size * 2 * 2048


def test_gradient_accumulation_keeps_gradients_during_forward():
    spec = model_spec("qwen2.5-0.5b")
    one = memory.estimate(spec, recipe("full", train__gradient_accumulation=1))
    four = memory.estimate(spec, recipe("full", train__gradient_accumulation=4))
    # bf16 gradients of every parameter exist through the forward and the loss with accumulation
    assert four.phases["loss backward"] - one.phases["loss backward"] == pytest.approx(spec.total_params * 2, rel=1e-6)


def test_cpu_estimate_has_no_cuda_context_and_uses_fp32():
    spec = model_spec("smollm2-135m")
    e = memory.estimate(spec, recipe("lora"), device="cpu")
    assert e.components["cuda_context"] == 0
    assert e.components["weights"] == spec.total_params * 4
    assert memory.estimate(spec, recipe("lora")).components["cuda_context"] == memory.CUDA_CONTEXT_BYTES


def test_components_add_up_and_json_shape():
    e = memory.estimate(model_spec("mistral-7b"), recipe("qlora"), available_bytes=24 * GiB)
    assert sum(e.components.values()) == e.train_peak_bytes
    d = e.to_dict()
    assert {"total_bytes", "components", "verdict", "inference_bytes", "peak_phase", "trainable_params"} <= set(d)
    assert set(d["components"]) == set(memory.COMPONENT_LABELS)
    assert d["inference_bytes"] == sum(d["inference_components"].values())
    assert json.loads(json.dumps(d)) == d


def test_verdicts():
    assert memory.verdict_for(80, 100) == "fits"
    assert memory.verdict_for(90, 100) == "fits"
    assert memory.verdict_for(95, 100) == "tight"
    assert memory.verdict_for(100, 100) == "tight"
    assert memory.verdict_for(101, 100) == "does not fit"
    assert memory.verdict_for(1, None) == "unknown"


def test_several_gpus():
    spec = model_spec("llama-3-8b")
    r = recipe("full", distributed__strategy="fsdp")
    one = memory.estimate(spec, r)
    four = memory.estimate(spec, r, n_gpus=4)
    assert four.components["optimizer"] == pytest.approx(one.components["optimizer"] / 4)
    assert four.train_peak_bytes < one.train_peak_bytes
    ddp = memory.estimate(spec, recipe("full"), n_gpus=2)
    assert ddp.train_peak_bytes >= memory.estimate(spec, recipe("full")).train_peak_bytes


# --------------------------------------------------------------------------- planner

SMALL = spec_from_config(
    {"model_type": "llama", "vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632,
     "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4, "tie_word_embeddings": False},
    "tinyllama-like", "config",
)


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["full", "freeze", "lora", "qlora", "prefix", "ia3"]),
    a=st.integers(1, 64),
    b=st.integers(1, 64),
    seq=st.sampled_from([64, 256, 1000, 4096]),
    gc=st.booleans(),
    attn=st.sampled_from(["sdpa", "eager", "flash_attention_2"]),
    packing=st.booleans(),
    avail_gib=st.integers(4, 96),
)
def test_bigger_batch_never_fits_where_smaller_did_not(method, a, b, seq, gc, attn, packing, avail_gib):
    r = recipe(method, train__gradient_checkpointing=gc, model__attn_implementation=attn, data__packing=packing)
    small, big = sorted((a, b))
    e_small = memory.estimate(SMALL, r, batch_size=small, seq_len=seq)
    e_big = memory.estimate(SMALL, r, batch_size=big, seq_len=seq)
    assert e_small.train_peak_bytes <= e_big.train_peak_bytes
    avail = avail_gib * GiB
    if e_big.train_peak_bytes <= avail:
        assert e_small.train_peak_bytes <= avail
    # and longer sequences, likewise
    assert memory.estimate(SMALL, r, batch_size=small, seq_len=seq).train_peak_bytes <= memory.estimate(
        SMALL, r, batch_size=small, seq_len=seq * 2
    ).train_peak_bytes


@pytest.mark.parametrize("method", ["full", "lora", "qlora"])
def test_limits_are_the_edge_of_fitting(method):
    r = recipe(method, data__packing=True)
    s = memory.resolve_setup(r)
    avail = 40 * GiB
    mb = max_batch_size(SMALL, s, avail)
    from dataclasses import replace

    total = lambda **kw: memory.estimate_setup(SMALL, replace(s, **kw)).train_peak_bytes  # noqa: E731
    if mb:
        assert total(batch_size=mb) <= avail < total(batch_size=mb + 1)
    ms = max_seq_len(SMALL, s, avail)
    assert ms % 64 == 0 and total(seq_len=ms) <= avail < total(seq_len=ms + 64)


def test_plan_for_a_setup_that_does_not_fit():
    spec = model_spec("llama-3-8b")
    r = recipe("full", train__batch_size=4, data__cutoff_len=4096)
    p = plan(spec, r, 24 * GiB)
    assert p.estimate.verdict == "does not fit"
    assert [m.label for m in p.methods] == ["full", "freeze", "lora", "qlora-8bit", "qlora-4bit"]
    peaks = {m.label: m.total_bytes for m in p.methods}
    assert peaks["qlora-4bit"] < peaks["lora"] < peaks["full"]
    fitting = [s for s in p.suggestions if s.verdict != "does not fit"]
    assert fitting, [s.text for s in p.suggestions]
    # Every suggestion is real recipe keys: applying them gives the total it announced.
    for sug in p.suggestions:
        if not sug.changes:
            continue
        changed = r.copy()
        for key, value in sug.changes.items():
            assert key in FIELDS
            changed.set(key, value)
        assert memory.estimate(spec, changed).train_peak_bytes == sug.total_bytes, sug.text
    d = p.to_dict()
    assert {"total_bytes", "components", "verdict", "methods", "max_batch_size", "max_seq_len", "suggestions"} <= set(d)


def test_plan_that_fits_has_no_suggestions_and_real_limits():
    spec = model_spec("qwen2.5-0.5b")
    p = plan(spec, recipe("lora", train__batch_size=2, data__cutoff_len=512), 80 * GiB)
    assert p.estimate.verdict == "fits" and p.suggestions == []
    assert p.max_batch > 2 and p.max_seq > 512


# --------------------------------------------------------------------------- CLI


def _cli(*args, env=None):
    import os

    full_env = dict(os.environ, HF_HUB_OFFLINE="1", TUITUNE_FAKE_GPU="none", **(env or {}))
    return subprocess.run([sys.executable, "-m", "tuitune", "estimate", *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_cli_estimate_json():
    res = _cli("mistral-7b", "--method", "qlora", "--gpu-memory", "24GB", "--seq-len", "2048", "--gradient-checkpointing", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["verdict"] in ("fits", "tight") and d["available_bytes"] == 24 * GiB
    assert d["total_bytes"] == sum(d["components"].values())
    assert [m["method"] for m in d["methods"]] == ["full", "freeze", "lora", "qlora-8bit", "qlora-4bit"]
    assert d["max_batch_size"] >= 4 and d["max_seq_len"] >= 2048
    assert d["model"]["params"] == 7_241_732_096


def test_cli_estimate_table_without_gpu_compares_common_cards():
    res = _cli("llama-3-8b", "--method", "full")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "No GPU here" in out and "24GB" in out and "80GB" in out and "qlora-4bit" in out


def test_cli_estimate_suggests_fixes():
    res = _cli("llama-3-8b", "--method", "lora", "--gpu-memory", "24GB", "--batch-size", "8", "--seq-len", "4096")
    assert res.returncode == 0, res.stderr
    assert "does not fit" in res.stdout and "To make it fit" in res.stdout and "checkpointing" in res.stdout


def test_cli_estimate_from_a_recipe(repo_root):
    res = _cli("--recipe", str(repo_root / "recipes" / "mistral-7b-qlora-12gb.toml"), "--gpu-memory", "12GB", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["method"] == "qlora" and d["verdict"] in ("fits", "tight")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nobody/nothing"], "catalog"),
        (["llama-3-8b", "--gpu-memory", "lots"], "--gpu-memory"),
        (["llama-3-8b", "--batch-size", "0"], "train.batch_size"),
        ([], "no model given"),
    ],
)
def test_cli_estimate_bad_input_is_one_clear_error(args, needle):
    res = _cli(*args)
    assert res.returncode == 2
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_estimator_is_pure_arithmetic():
    """No torch: the estimate works in a process that never imports it."""
    code = (
        "import sys; from tuitune.core.models.spec import model_spec; from tuitune.core.memory import estimate;"
        "from tuitune.core.recipe import new_recipe;"
        "e = estimate(model_spec('llama-3-8b'), new_recipe('qlora')); assert e.train_peak_bytes > 0;"
        "print('torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr


def test_math_sanity_for_full_fine_tuning():
    """Full fine-tuning with AdamW in pure bf16 needs 8 bytes per parameter before activations."""
    spec = model_spec("llama-3.2-1b")
    e = memory.estimate(spec, recipe("full", model__dtype="bfloat16", train__batch_size=1, data__cutoff_len=16))
    static = e.components["weights"] + e.components["optimizer"] + e.components["gradients"]
    assert math.isclose(static, 8 * spec.total_params, rel_tol=0.02)


def test_cli_estimate_for_cpu_training_of_the_demo_model():
    res = _cli("HuggingFaceTB/SmolLM2-135M-Instruct", "--device", "cpu", "--seq-len", "256", "--json")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["components"]["cuda_context"] == 0 and d["available_from"] == "free RAM here"
    assert d["components"]["weights"] == 134_515_008 * 4  # fp32 on CPU
    assert d["verdict"] == "fits"
