"""Memory of the output head and its loss: the engine's chunked head, or the model's plain one.

The engine (tuitune.core.engine.head_loss) projects only the trained positions, one vocabulary
chunk at a time, and keeps the input gradient instead of logits: its memory grows with
trained tokens x hidden size plus one chunk. The plain head (the model's own loss: FSDP, a head the
engine cannot reproduce, or the published figures of other tools) holds vocabulary-wide fp32
tensors for every position. The chunk rule lives here so the engine and the estimator share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuitune.core.memory.setup import Setup

if TYPE_CHECKING:
    from tuitune.core.models.spec import ModelSpec

HEAD_CHUNK_COLUMNS = 8192  # vocabulary columns projected at once
HEAD_CHUNK_ELEMENTS = 2**24  # logits per chunk (rows x columns): 64 MiB in fp32
# Model types whose head the engine soft-caps per chunk (Gemma 2/3: final_logit_softcapping).
SOFTCAP_MODEL_TYPES = ("gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text")


def head_chunk_shape(rows: int, vocab: int, columns: int = HEAD_CHUNK_COLUMNS, elements: int = HEAD_CHUNK_ELEMENTS) -> tuple[int, int]:
    """(rows, columns) of one chunk of logits."""
    cols = min(vocab, columns)
    return min(rows, max(1, elements // cols)), cols


def uses_chunked_head(s: Setup) -> bool:
    """Whether the engine forms this setup's loss with the chunked head (not under FSDP, whose
    head weight is sharded outside the model's forward)."""
    return s.chunked_head and not (s.n_gpus > 1 and s.strategy == "fsdp")


@dataclass(frozen=True)
class HeadMemory:
    """Bytes beyond the saved activations at the moments the head and its loss matter."""

    forming: float  # the forward pass of the loss
    backward: float  # the loss's backward, until the decoder's own backward starts
    head_backward: float  # a trainable head forming its weight gradient (beyond the gradient itself)
    evaluation: float  # one evaluation batch (no gradients)


def head_memory(spec: ModelSpec, s: Setup, tokens: float, trained: float) -> HeadMemory:
    """`tokens` positions run through the model, `trained` of them carry a label."""
    if uses_chunked_head(s):
        return _chunked(spec, s, tokens, trained)
    return _plain(spec, s, tokens, trained)


def hidden_bytes(s: Setup) -> int:
    """Bytes per element of the final norm's output: the weights' dtype, fp32 when the norms are
    fp32 (QLoRA's prepared base) or the weights are."""
    return 4 if s.method == "qlora" else s.weight_bytes


def _chunked(spec: ModelSpec, s: Setup, tokens: float, trained: float) -> HeadMemory:
    """Live tensors of engine.head_loss.ChunkedHeadLoss, by the moment (traced op by op on CPU;
    tests/core/test_memory_head.py holds the engine to these figures within 2%).

    Forming: the final norm's output (all positions, held while the loss forms), the trained rows'
    hidden states (a gather) and the input gradient allocated up front; for the current row block
    its copy in the compute dtype, the accumulated gradient (fp32) and the product with one chunk of
    the head; one chunk of logits in fp32 (plus the compute-dtype original or the probabilities cast
    back, when that is 16-bit, and Gemma's tanh slope); the head's chunk cast to the compute dtype
    (fp32 weights under autocast). Backward: the saved input gradient and its scaled copy; then
    (the saved one freed) the scatter into the whole (positions x hidden) gradient, built out of
    place (zeros + index_put).
    A trainable head recomputes each chunk into an fp32 weight gradient (which is the gradient
    itself for fp32 weights, and is cast to the weights' dtype at the end otherwise).
    """
    h, V = spec.hidden_size, spec.vocab_size
    a, hb, wb = s.act_bytes, hidden_bytes(s), s.weight_bytes
    rows, cols = head_chunk_shape(max(1, int(trained)), V)
    half = a < 4
    softcap = spec.model_type in SOFTCAP_MODEL_TYPES
    logits = rows * cols * (4 + (a if half else 0) + (4 if softcap else 0))
    chunk_weight = cols * h * a if wb != a else 0
    rows_copy = rows * h * a if hb != a else 0
    block = rows * h * (4 + a) + rows_copy
    forming = tokens * h * hb + 2 * trained * h * hb + block + logits + chunk_weight
    backward = trained * h * hb + max(trained * h * hb, 2 * tokens * h * hb)
    # Trainable head, beyond its gradient (V x h x wb, the estimator's "gradients"): the saved rows,
    # the input gradient and its scaled copy; while the chunks run, the fp32 accumulator (in place
    # of the gradient) and one chunk with its product; at the end the accumulator and its cast.
    during_chunks = V * h * (4 - wb) + logits + cols * h * a + chunk_weight
    at_end = V * h * 4 if wb < 4 else 0
    head_backward = 3 * trained * h * hb + max(during_chunks, at_end)
    evaluation = tokens * h * hb + trained * h * hb + rows_copy + logits + chunk_weight
    return HeadMemory(forming, backward, head_backward, evaluation)


def _plain(spec: ModelSpec, s: Setup, tokens: float, trained: float) -> HeadMemory:
    """transformers' ForCausalLMLoss: the head at every position, fp32 upcast, cross_entropy.

    Forming holds the lm_head output, its fp32 copy (16-bit only) and log_softmax's fp32 output;
    the backward holds the saved log-probs, nll_loss's dense gradient and log_softmax's: 3 x 4 bytes
    x vocab per token. The Trainer drops the model outputs before backward. Gemma-2's soft-capping
    (tanh) saves one more vocab-sized tensor. A trainable head then forms its weight gradient while
    the logits' gradient (compute dtype) is alive. Evaluation: logits, fp32 copy, log-softmax.
    """
    V, a = spec.vocab_size, s.act_bytes
    extra = a * V if spec.model_type in SOFTCAP_MODEL_TYPES else 0
    forming = a * V + (4 * V if a < 4 else 0) + 4 * V + extra
    backward = 12 * V + extra
    evaluation = V * (a + (4 if a < 4 else 0) + 4)
    return HeadMemory(tokens * forming, tokens * backward, tokens * a * V, tokens * evaluation)
