"""The estimator's model of the chunked output head (tuitune.core.memory.head) against the live tensor
bytes of the engine's head (tuitune.core.engine.head_loss) on CPU, within 2%.

Each case runs the real chunked loss, forward and backward, under the same live-bytes counter that
`estimate --measure` uses, on shapes where the head's tensors are not lost in the rounding: a
vocabulary of several chunks, a few hundred trained positions out of more in the batch.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tuitune.core import memory
from tuitune.core.engine.head_loss import LogitTransform, chunked_head_loss
from tuitune.core.memory.head import head_chunk_shape, head_memory, hidden_bytes
from tuitune.core.memory.parameters import trainable_bytes_per_param
from tuitune.core.memory.probe import LiveTensorBytes
from tuitune.core.models.spec import model_spec
from tuitune.core.recipe import new_recipe

DTYPES = {4: torch.float32, 2: torch.bfloat16}


def setup_for(method: str, weight_bytes: int, act_bytes: int, tokens: int, trained: int):
    s = memory.resolve_setup(new_recipe(method), device="cpu", bf16=False, batch_size=1, seq_len=tokens)
    return dataclasses.replace(s, weight_bytes=weight_bytes, act_bytes=act_bytes, autocast=act_bytes < weight_bytes,
                               trained_fraction=trained / tokens)


def measure(spec, s, tokens: int, trained: int) -> dict[str, int]:
    """Peak live bytes beyond the inputs while the loss forms, during its backward, and without gradients."""
    torch.manual_seed(0)
    h, V = spec.hidden_size, spec.vocab_size
    hb = DTYPES[hidden_bytes(s)]
    trainable_head = s.method == "full"
    transform = LogitTransform(softcap=30.0) if spec.model_type == "gemma2" else LogitTransform()
    weight = (torch.randn(V, h) * 0.05).to(DTYPES[s.weight_bytes]).requires_grad_(trainable_head)
    hidden = torch.randn(tokens, h).to(hb).requires_grad_(True)  # the final norm's output
    targets = torch.randint(0, V, (tokens,))
    keep = torch.zeros(tokens, dtype=torch.bool)
    keep[torch.randperm(tokens)[:trained]] = True

    def loss_of(x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=s.autocast):
            return chunked_head_loss(x[keep], weight, None, targets[keep], transform)

    out = {}
    tracker = LiveTensorBytes()
    tracker.add_existing([weight, hidden, targets, keep])
    base = tracker.current
    with tracker:
        loss = loss_of(hidden)
        # The norm's output is an input here (in `base`); in a step it is created by the forward.
        out["forming"] = tracker.peak - base + hidden.numel() * hidden.element_size()
        tracker.peak = tracker.current
        loss.backward()
        out["backward"] = tracker.peak - base
    tracker = LiveTensorBytes()
    tracker.add_existing([weight, hidden, targets, keep])
    base = tracker.current
    with tracker, torch.no_grad():
        loss_of(hidden)
        out["evaluation"] = tracker.peak - base + hidden.numel() * hidden.element_size()
    return out


CASES = {
    # name: (method, model type, weight bytes, compute bytes)
    "lora fp32": ("lora", "llama", 4, 4),
    "lora bf16 autocast over fp32 weights": ("lora", "llama", 4, 2),
    "lora bf16 weights": ("lora", "llama", 2, 2),
    "qlora (fp32 norm output, bf16 compute)": ("qlora", "llama", 2, 2),
    "gemma-2 soft-capping": ("lora", "gemma2", 4, 4),
    "full fine-tuning (trainable head)": ("full", "llama", 4, 4),
    "full fine-tuning bf16": ("full", "llama", 2, 2),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(("tokens", "trained"), [(1200, 500), (2400, 2300)])
def test_head_memory_matches_the_engine_within_2_percent(case, tokens, trained):
    method, model_type, wb, ab = CASES[case]
    spec = dataclasses.replace(model_spec("smollm2-135m"), vocab_size=12000, hidden_size=96, model_type=model_type)
    s = setup_for(method, wb, ab, tokens, trained)
    assert head_chunk_shape(trained, spec.vocab_size)[1] < spec.vocab_size  # several chunks
    model = head_memory(spec, s, tokens, trained)
    got = measure(spec, s, tokens, trained)
    want = {"forming": model.forming, "evaluation": model.evaluation, "backward": model.backward}
    if method == "full":
        # The weight gradient (estimator: the "gradients" term) exists by the end of the head's backward.
        head_grad = spec.vocab_size * spec.hidden_size * trainable_bytes_per_param(s)
        want["backward"] = max(model.backward, model.head_backward + head_grad)
    errors = {k: (want[k] - got[k]) / got[k] for k in want}
    assert all(abs(e) <= 0.02 for e in errors.values()), {k: (got[k], int(want[k]), f"{100 * e:+.2f}%") for k, e in errors.items()}


def test_chunked_head_needs_a_fraction_of_the_plain_heads_memory():
    spec = model_spec("llama-3-8b")
    s = memory.resolve_setup(new_recipe("qlora"), batch_size=1, seq_len=8192)
    chunked = head_memory(spec, s, 8192, 8192)
    plain = head_memory(spec, dataclasses.replace(s, chunked_head=False), 8192, 8192)
    # plain: fp32 log-probs and two vocab-wide gradients per token (12 x 128k x 8k = 12 GiB)
    assert plain.backward == 12 * spec.vocab_size * 8192
    assert chunked.backward < plain.backward / 20 and chunked.forming < plain.forming / 10
    # Masked prompt tokens cost the chunked head (almost) nothing beyond the hidden states.
    third = head_memory(spec, s, 8192, 8192 / 3)
    assert third.forming < chunked.forming and third.backward < chunked.backward
    # FSDP keeps the model's own loss (its head weight is sharded outside the forward).
    fsdp = memory.resolve_setup(new_recipe("qlora"), batch_size=1, seq_len=8192, n_gpus=2)
    fsdp = dataclasses.replace(fsdp, strategy="fsdp")
    assert head_memory(spec, fsdp, 8192, 8192) == plain
