"""The chunked output head + cross-entropy (core/engine/head_loss.py) against the plain head.

Exact-loss and exact-gradient checks (max abs difference < 1e-5 in fp32) for every method the engine
trains on the tiny Llama, for model types whose heads transform their logits (Gemma-2 soft-capping,
Cohere and Granite scaling) or tie them to the embeddings, and for the function itself with chunks
smaller than the vocabulary. Memory: no tensor of trained rows x vocabulary is ever alive.
"""

from __future__ import annotations

import pytest
import torch
from engine_support import FACTS

from tuitune.core.data import Example, encode_example, pack
from tuitune.core.engine import head_loss as hl
from tuitune.core.engine.collate import NUM_TOKENS, PackedCollator, PaddedCollator, features
from tuitune.core.models import load_tokenizer

TOL = 1e-5


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks much smaller than the tiny vocabulary (~500), so every path crosses chunk borders."""
    monkeypatch.setattr(hl, "CHUNK_COLUMNS", 96)
    monkeypatch.setattr(hl, "CHUNK_ELEMENTS", 96 * 7)


def plain_loss(h, weight, bias, targets, transform):
    z = torch.nn.functional.linear(h, weight, bias) * transform.scale
    if transform.softcap:
        z = torch.tanh(z / transform.softcap) * transform.softcap
    return torch.nn.functional.cross_entropy(z, targets, reduction="sum")


@pytest.mark.parametrize("transform", [hl.LogitTransform(), hl.LogitTransform(scale=0.0625), hl.LogitTransform(softcap=5.0)],
                         ids=["plain", "scaled", "softcapped"])
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
def test_chunked_function_equals_the_plain_head(transform, bias, small_chunks):
    torch.manual_seed(0)
    rows, hidden, vocab = 45, 24, 701  # 8 column chunks, 7 row blocks, a ragged last chunk of each
    h = torch.randn(rows, hidden, dtype=torch.float64).float().requires_grad_()
    weight = (torch.randn(vocab, hidden) * 0.3).requires_grad_()
    b = torch.randn(vocab).requires_grad_() if bias else None
    targets = torch.randint(0, vocab, (rows,))
    targets[:3] = torch.tensor([0, vocab - 1, 96])  # the first and last column, a chunk border
    params = [p for p in (h, weight, b) if p is not None]

    got = hl.chunked_head_loss(h, weight, b, targets, transform) / rows
    got_grads = torch.autograd.grad(got, params)
    want = plain_loss(h, weight, b, targets, transform) / rows
    want_grads = torch.autograd.grad(want, params)
    assert abs(float(got.detach()) - float(want.detach())) < TOL
    for g, w in zip(got_grads, want_grads, strict=True):
        assert float((g - w).abs().max()) < TOL


def test_frozen_head_keeps_no_second_copy_and_trainable_head_recomputes(small_chunks):
    """A frozen head: only the input gradient is kept (no rows x hidden input saved, no weight);
    a trainable head saves what its weight gradient needs."""
    torch.manual_seed(1)
    h = torch.randn(10, 8, requires_grad=True)
    frozen = torch.randn(300, 8)
    loss = hl.chunked_head_loss(h, frozen, None, torch.randint(0, 300, (10,)))
    saved = [t for t in loss.grad_fn.saved_tensors if t is not None]
    assert len(saved) == 1 and saved[0].shape == h.shape  # the input gradient, nothing else
    trainable = frozen.clone().requires_grad_()
    loss = hl.chunked_head_loss(h, trainable, None, torch.randint(0, 300, (10,)))
    assert any(t is not None and t.shape == trainable.shape for t in loss.grad_fn.saved_tensors)


def test_no_logits_for_all_rows_and_the_whole_vocabulary_are_ever_alive(small_chunks):
    """Live tensor bytes while the loss is formed and differentiated stay near one chunk, far below
    the rows x vocabulary logits (and their fp32 softmax) of the plain head."""
    from tuitune.core.memory.probe import LiveTensorBytes

    torch.manual_seed(2)
    rows, hidden, vocab = 200, 16, 5000
    h = torch.randn(rows, hidden, requires_grad=True)
    weight = torch.randn(vocab, hidden)
    targets = torch.randint(0, vocab, (rows,))

    def peak(fn) -> int:
        tracker = LiveTensorBytes()
        tracker.add_existing([h, weight, targets])
        start = tracker.current
        with tracker:
            fn().backward()
        h.grad = None
        return tracker.peak - start

    chunked = peak(lambda: hl.chunked_head_loss(h, weight, None, targets))
    plain = peak(lambda: plain_loss(h, weight, None, targets, hl.LogitTransform()))
    rows_block, cols = hl.chunk_shape(rows, vocab)
    one_chunk = rows_block * cols * 4
    full_logits = rows * vocab * 4
    assert plain >= 2 * full_logits  # the plain head: logits and their log-softmax at once
    assert chunked < full_logits / 4
    assert chunked <= 4 * one_chunk + 4 * rows * hidden * 4  # a few chunk-sized temporaries + the gradients


# ----------------------------------------------------------------------------- on real models


def batch_for(tokenizer, layout: str) -> dict:
    encoded = [encode_example(Example(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                      text=None, line=i), tokenizer, 128) for i, (q, a) in enumerate(FACTS, 1)]
    if layout == "packed":
        batch = PackedCollator(tokenizer.pad_token_id)([features(r) for r in pack(encoded, 48)])
    else:
        batch = PaddedCollator(tokenizer.pad_token_id)([features(e) for e in encoded])
    batch.pop(NUM_TOKENS)
    return batch


def compare_with_model_loss(model, batch) -> None:
    """HeadLoss vs the model's own loss: the value, and every trainable parameter's gradient."""
    model.eval()  # no dropout, so both passes see the same network; gradients still flow
    head = hl.HeadLoss.for_model(model)
    assert head is not None and head.usable(batch), head.note if head else "no head"
    params = [p for p in model.parameters() if p.requires_grad]
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    got = head(model, batch, n_items)
    got_grads = torch.autograd.grad(got, params, allow_unused=True)
    want = model(**batch, num_items_in_batch=n_items).loss
    want_grads = torch.autograd.grad(want, params, allow_unused=True)
    assert abs(float(got.detach()) - float(want.detach())) < TOL
    compared = 0
    for p, g, w in zip(params, got_grads, want_grads, strict=True):
        assert (g is None) == (w is None), p.shape
        if g is not None:
            assert float((g - w).abs().max()) < TOL, p.shape
            compared += 1
    assert compared > 0


METHODS = {  # case: (method, recipe sections)
    "lora": ("lora", {"lora": {"r": 4, "target_modules": "all-linear"}}),
    "dora": ("lora", {"lora": {"r": 4, "target_modules": "all-linear", "use_dora": True}}),
    "qlora": ("qlora", {"lora": {"r": 4, "target_modules": "all-linear"}, "quantization": {"bits": 4}}),
    "ia3": ("ia3", {}),
    "prefix": ("prefix", {"prompt": {"num_virtual_tokens": 4}}),
    "prompt": ("prompt", {"prompt": {"num_virtual_tokens": 4}}),
    "p-tuning": ("p-tuning", {"prompt": {"num_virtual_tokens": 4, "encoder_hidden_size": 32}}),
    "llama-adapter": ("llama-adapter", {"prompt": {"num_virtual_tokens": 4, "adapter_layers": 1}}),
    "full": ("full", {}),
    "freeze": ("freeze", {"freeze": {"trainable_layers": 1}}),
}


@pytest.mark.parametrize("case", list(METHODS))
def test_every_method_gets_the_models_own_loss_and_gradients(case, tiny_model_dir, small_chunks):
    """The engine's model for each method (build_model), padded rows (packed ones: the next test)."""
    from tuitune.core.engine.build import build_model
    from tuitune.core.recipe import new_recipe

    method, sections = METHODS[case]
    recipe = new_recipe(method, str(tiny_model_dir))
    for section, values in sections.items():
        for key, value in values.items():
            recipe.set(f"{section}.{key}", value)
    torch.manual_seed(0)
    built = build_model(recipe, "cpu")
    if method in ("lora", "ia3"):  # make the adapters non-trivial (B starts at zero)
        with torch.no_grad():
            for p in built.model.parameters():
                if p.requires_grad:
                    p.add_(torch.randn_like(p) * 0.05)
    compare_with_model_loss(built.model, batch_for(built.tokenizer, "padded"))


def test_packed_rows_and_gradient_checkpointing(tiny_model_dir, small_chunks):
    import peft
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model = peft.get_peft_model(base, peft.LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear",
                                                      init_lora_weights=False))
    compare_with_model_loss(model, batch_for(load_tokenizer(str(tiny_model_dir)), "packed"))


def tiny_of_type(model_type: str, vocab: int, **extra):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256,
                                  **extra)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("model_type,extra,transform", [
    ("gemma2", {"final_logit_softcapping": 2.0}, hl.LogitTransform(softcap=2.0)),
    ("cohere", {"logit_scale": 0.5}, hl.LogitTransform(scale=0.5)),
    ("granite", {"logits_scaling": 4.0}, hl.LogitTransform(scale=0.25)),
    ("qwen2", {"tie_word_embeddings": True}, hl.LogitTransform()),
    ("mistral", {}, hl.LogitTransform()),
], ids=["gemma2-softcap", "cohere-scale", "granite-scaling", "qwen2-tied", "mistral"])
@pytest.mark.parametrize("method", ["full", "lora"])
def test_model_types_with_transformed_or_tied_heads(model_type, extra, transform, method, tiny_model_dir, small_chunks):
    import peft

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = tiny_of_type(model_type, len(tokenizer), **extra)
    if model_type == "gemma2":  # its soft-capping is what is tested: make the logits large enough to bend
        with torch.no_grad():
            model.get_output_embeddings().weight.mul_(40)
    assert hl.HeadLoss.for_model(model).transform == transform
    if method == "lora":
        model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear",
                                                           init_lora_weights=False))
    compare_with_model_loss(model, batch_for(tokenizer, "padded"))


def test_a_head_that_does_something_else_keeps_the_plain_loss(tiny_model_dir):
    """The one-off check: when lm_head + the transform does not give the model's logits, HeadLoss
    declines (the trainer then uses the model's own loss and warns)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    head = hl.HeadLoss.for_model(model)
    head.transform = hl.LogitTransform(scale=0.5)  # what a model with an unknown logit scaling would look like
    batch = batch_for(load_tokenizer(str(tiny_model_dir)), "padded")
    assert head(model, batch) is None and "full logits" in head.note
    assert hl.HeadLoss.for_model(model).usable(batch)  # the true transform passes


def test_a_lora_on_the_head_itself_keeps_the_plain_loss(tiny_model_dir):
    import peft
    from transformers import AutoModelForCausalLM

    model = peft.get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                peft.LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "lm_head"]))
    assert hl.HeadLoss.for_model(model) is None


def test_the_trainer_uses_it_in_training_and_evaluation(tiny_model_dir, tmp_path):
    """A real run with an eval split: the loss of both goes through the chunked head (counted), and
    the reported eval loss equals the model's own loss on the eval rows."""
    from engine_support import events, write_jsonl, write_recipe

    from tuitune.core.engine.prepare import prepare_run
    from tuitune.core.engine.session import train_run
    from tuitune.core.recipe import load_recipe

    calls = {"n": 0}
    original = hl.ChunkedHeadLoss.forward

    def counted(*args):
        calls["n"] += 1
        return original(*args)

    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=6)
    recipe_path = write_recipe(tmp_path / "r.toml", tiny_model_dir, data, tmp_path / "runs", "h",
                               data={"val_size": 0.25}, train={"max_steps": 3, "eval_steps": 3})
    recipe, problems = load_recipe(recipe_path)
    assert not problems
    with pytest.MonkeyPatch.context() as m:
        m.setattr(hl.ChunkedHeadLoss, "forward", staticmethod(counted))
        assert train_run(prepare_run(recipe).path) == 0
    run_dir = tmp_path / "runs" / "h"
    assert calls["n"] >= 3 + 1  # three training steps and at least one evaluation batch
    assert events(run_dir, "eval") and not [e for e in events(run_dir, "warning") if "full logits" in e["message"]]


def test_the_check_leaves_4bit_weights_in_their_layout(tiny_model_dir):
    """bitsandbytes repacks 4-bit weights for another CPU kernel on an eval forward without gradients;
    the check must not, or the run's numbers change (and a group job's save would change them back)."""
    from bitsandbytes.functional import has_avx512bf16

    from tuitune.core.engine.build import build_model
    from tuitune.core.recipe import new_recipe

    if not has_avx512bf16():
        pytest.skip("bitsandbytes repacks 4-bit weights only on CPUs with AVX512-BF16")
    method, sections = METHODS["qlora"]
    recipe = new_recipe(method, str(tiny_model_dir))
    for section, values in sections.items():
        for key, value in values.items():
            recipe.set(f"{section}.{key}", value)
    model = build_model(recipe, "cpu").model
    batch = batch_for(load_tokenizer(str(tiny_model_dir)), "padded")

    def packed() -> list[bool]:
        return [hl._packed_for_cpu(m.weight) for m in model.modules() if hl._packed_for_cpu(getattr(m, "weight", None)) is not None]

    assert packed() and not any(packed())
    head = hl.HeadLoss.for_model(model)
    assert head.usable(batch)
    assert not any(packed())
    model.eval()  # what the check would have left behind without restoring the layout
    with torch.no_grad():
        model(**{k: v[:1] for k, v in batch.items() if k in ("input_ids", "attention_mask")})
    assert all(packed())
