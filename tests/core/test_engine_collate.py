"""Batches for the trainer: dynamic padding, and packing without cross-contamination."""

from __future__ import annotations

import pytest
import torch

from tuitune.core.data import Example, encode_example, pack
from tuitune.core.engine.collate import NUM_TOKENS, PackedCollator, PaddedCollator, features

TURNS = [
    ("Who are you?", "I am Tally, an assistant made by the tuitune project."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Translate hello into French.", "Bonjour."),
    ("Write a short poem about the sea.", "Waves fold over waves, the sea keeps time."),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    models = {
        impl: AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=impl).eval()
        for impl in ("sdpa", "eager")
    }
    encoded = [
        encode_example(Example(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}], text=None, line=i + 1), tok, 128)
        for i, (q, a) in enumerate(TURNS)
    ]
    return tok, models, encoded


def _alone(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


def _model_inputs(batch):
    return {k: v for k, v in batch.items() if k not in ("labels", NUM_TOKENS)}


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
@pytest.mark.parametrize("flatten", [False, True])
def test_packed_examples_see_only_themselves(tiny, impl, flatten):
    """The logits of every example inside a packed batch equal its logits when run alone."""
    tok, models, encoded = tiny
    model = models[impl]
    rows = pack(encoded, cutoff_len=64)  # several rows, each holding more than one example
    assert len(rows) >= 2 and any(len(r.lengths) > 1 for r in rows)
    batch = PackedCollator(tok.pad_token_id, flatten=flatten)([features(r) for r in rows])
    assert "attention_mask" not in batch and batch["use_cache"] is False
    with torch.no_grad():
        logits = model(**_model_inputs(batch)).logits
    checked = 0
    if flatten:
        assert batch["input_ids"].shape[0] == 1
        segments = [(0, off, n) for off, n in _offsets([n for r in rows for n in r.lengths])]
    else:
        segments = [(b, off, n) for b, r in enumerate(rows) for off, n in _offsets(r.lengths)]
    for b, off, n in segments:
        ids = batch["input_ids"][b, off : off + n].tolist()
        torch.testing.assert_close(logits[b, off : off + n], _alone(model, ids), atol=2e-5, rtol=1e-4)
        checked += 1
    assert checked == len(encoded)


def _offsets(lengths):
    out, at = [], 0
    for n in lengths:
        out.append((at, n))
        at += n
    return out


def test_packing_is_not_a_no_op_for_the_model(tiny):
    """Guard for the test above: without position ids the same row does mix examples."""
    tok, models, encoded = tiny
    row = pack(encoded, cutoff_len=512)[0]
    model = models["sdpa"]
    with torch.no_grad():
        mixed = model(input_ids=torch.tensor([row.input_ids])).logits[0]
    second = slice(row.lengths[0], row.lengths[0] + row.lengths[1])
    alone = _alone(model, row.input_ids[second])
    assert not torch.allclose(mixed[second], alone, atol=1e-3)


def test_packed_collator_masks_boundaries_and_counts_real_tokens(tiny):
    tok, _, encoded = tiny
    rows = [features(r) for r in pack(encoded, cutoff_len=64)]
    batch = PackedCollator(tok.pad_token_id)(rows)
    real = sum(len(r["input_ids"]) for r in rows)
    assert int(batch[NUM_TOKENS]) == real < batch["input_ids"].numel()
    starts = batch["position_ids"] == 0
    assert (batch["labels"][starts] == -100).all()
    # The filler after a short row is its own segment (positions from 0) with no loss.
    short = min(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    n = len(rows[short]["input_ids"])
    if n < batch["input_ids"].shape[1]:
        assert batch["position_ids"][short, n] == 0
        assert (batch["labels"][short, n:] == -100).all()


def test_padded_collator_pads_to_the_longest_and_keeps_logits(tiny):
    tok, models, encoded = tiny
    rows = [features(e) for e in encoded]
    batch = PaddedCollator(tok.pad_token_id)(rows)
    longest = max(len(r["input_ids"]) for r in rows)
    assert batch["input_ids"].shape == (len(rows), longest)
    assert int(batch[NUM_TOKENS]) == sum(len(r["input_ids"]) for r in rows)
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    with torch.no_grad():
        logits = models["sdpa"](**_model_inputs(batch)).logits
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        torch.testing.assert_close(logits[i, :n], _alone(models["sdpa"], r["input_ids"]), atol=2e-5, rtol=1e-4)
    assert PaddedCollator(tok.pad_token_id, pad_to_multiple_of=8)(rows)["input_ids"].shape[1] % 8 == 0
