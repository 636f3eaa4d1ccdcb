"""Rendered text to token ids and labels, with the work per row bounded.

A row only ever contributes its first cutoff_len tokens, so a rendering longer than a generous
character budget (CHARS_PER_TOKEN per token of cutoff_len) is tokenized only up to that budget
(widened until it yields more than cutoff_len tokens) and its full length is estimated from the
prefix: one 50 MB row costs a few milliseconds and megabytes, not minutes and gigabytes. With
data.chunk_long_text a plain-text row is instead tokenized whole, in pieces, and cut into
cutoff_len-sized chunks, each trained as its own example.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuitune.core.data.records import IGNORE_INDEX
from tuitune.core.errors import UserError

BATCH = 512  # examples tokenized per tokenizer call (the fast tokenizer batches in Rust)
CHARS_PER_TOKEN = 8  # first character budget per token of cutoff_len (text averages ~4)
MIN_CHARS = 1 << 16  # rows up to this many characters are counted exactly
MARGIN = 16  # tokens beyond cutoff_len a prefix must reach: its last tokens may split differently
PIECE_CHARS = 1 << 20  # a whole long text is tokenized this many characters at a time


@dataclass
class Rendering:
    """An example as the model will read it, and which characters are trained."""

    text: str
    spans: list[tuple[int, int]]  # trained character ranges (assistant replies with their end marker)
    add_special_tokens: bool  # True for plain text (the tokenizer adds BOS where it does)
    last_is_reply: bool  # an appended EOS ends a reply and is trained
    template: str  # "tokenizer", a fallback template name, or "text"
    tools_fallback: bool = False  # tool calls written in the fallback format (tool_rendering.py)


@dataclass
class Tokens:
    ids: list[int]
    labels: list[int]
    offsets: list[tuple[int, int]]
    text: str  # what was tokenized: the rendering, or its first characters when it was bounded
    eos_appended: bool
    template: str
    full_length: int  # tokens of the whole rendering (estimated when `estimated`)
    estimated: bool = False
    untokenized_chars: int = 0  # characters of the rendering past the bounded prefix


def _tokenize(texts: list[str], tokenizer: Any, add_special_tokens: bool) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Token ids and character offsets. Tokenizers without offsets (slow ones) are not supported
    for label masking: say so instead of guessing."""
    try:
        enc = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True, verbose=False)
    except NotImplementedError:
        raise UserError(
            "this tokenizer cannot report character offsets (a slow tokenizer)", "use a model with a fast tokenizer (tokenizer.json)"
        ) from None
    return list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))


def _labels(ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: list[tuple[int, int]], train_all: bool) -> list[int]:
    """Labels: the token id where the token overlaps a trained span, else IGNORE_INDEX. Offsets of
    a text tokenized without added special tokens never go backwards, so spans are found by bisection."""
    if train_all:
        return list(ids)
    labels = [IGNORE_INDEX] * len(ids)
    if not spans:
        return labels
    ends = [e for _, e in offsets]
    starts = [s for s, _ in offsets]
    for lo, hi in spans:
        # first token ending after the span starts .. last token starting before it ends
        first = bisect.bisect_right(ends, lo)
        last = bisect.bisect_left(starts, hi)
        if first < last:
            labels[first:last] = ids[first:last]
    return labels


def _strip_final_eos(rendering: Rendering, eos: str | None) -> Rendering:
    """When the rendering ends with EOS plus layout whitespace, drop the whitespace: the example
    then ends with EOS itself and nothing needs appending."""
    stripped = rendering.text.rstrip()
    if eos and stripped.endswith(eos) and len(stripped) < len(rendering.text):
        spans = [(s, min(e, len(stripped))) for s, e in rendering.spans if s < len(stripped)]
        return Rendering(stripped, spans, rendering.add_special_tokens, rendering.last_is_reply, rendering.template, rendering.tools_fallback)
    return rendering


def tokens_batch(renderings: list[Rendering], tokenizer: Any, train_on_prompt: bool, cutoff_len: int | None = None) -> list[Tokens]:
    """Tokens and labels of each rendering. With `cutoff_len`, a long rendering is tokenized only
    far enough to fill cutoff_len (its full length then estimated)."""
    eos = getattr(tokenizer, "eos_token", None)
    renderings = [_strip_final_eos(r, eos) for r in renderings]
    budget = max(MIN_CHARS, cutoff_len * CHARS_PER_TOKEN) if cutoff_len else None
    out: list[Tokens | None] = [None] * len(renderings)
    for special in (False, True):
        idx = [i for i, r in enumerate(renderings) if r.add_special_tokens == special]
        for k in range(0, len(idx), BATCH):
            chunk = idx[k : k + BATCH]
            texts = [renderings[i].text if budget is None else renderings[i].text[:budget] for i in chunk]
            for i, (ids, offsets) in zip(chunk, _tokenize(texts, tokenizer, special), strict=True):
                out[i] = _finish(renderings[i], list(ids), list(offsets), tokenizer, train_on_prompt, budget, cutoff_len)
    return [t for t in out if t is not None]


def _finish(r: Rendering, ids: list[int], offsets: list, tokenizer: Any, train_on_prompt: bool, budget: int | None, cutoff_len: int | None) -> Tokens:
    text = r.text
    if budget is not None and cutoff_len is not None:
        while len(text) > budget and len(ids) <= cutoff_len + MARGIN:
            budget *= 4  # unusually long tokens: take more of the text
            (ids, offsets), = _tokenize([text[:budget]], tokenizer, r.add_special_tokens)
            ids, offsets = list(ids), list(offsets)
        if len(text) > budget:
            shown = text[:budget]
            labels = _labels(ids, offsets, r.spans, train_on_prompt or r.template == "text")
            estimate = round(len(ids) * len(text) / budget) + 1
            return Tokens(ids, labels, offsets, shown, False, r.template, estimate, True, len(text) - budget)
    eos, eos_id = getattr(tokenizer, "eos_token", None), getattr(tokenizer, "eos_token_id", None)
    labels = _labels(ids, offsets, r.spans, train_on_prompt or r.template == "text")
    appended = False
    if eos_id is not None and not (eos and text.endswith(eos)):
        appended = True
        ids.append(eos_id)
        labels.append(eos_id if (train_on_prompt or r.last_is_reply) else IGNORE_INDEX)
        offsets.append((len(text), len(text)))
    return Tokens(ids, labels, offsets, text, appended, r.template, len(ids))


def text_chunks(text: str, tokenizer: Any, cutoff_len: int) -> list[list[int]]:
    """A plain text as token ids (BOS where the tokenizer adds one, EOS at the end), tokenized a
    piece at a time (cut at whitespace) and split into chunks of at most cutoff_len tokens."""
    ids: list[int] = []
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + PIECE_CHARS)
        if end < len(text):  # cut before a space or newline, so no word is split in two
            space = max(text.rfind(" ", pos, end), text.rfind("\n", pos, end))
            end = space if space > pos else end
        piece = text[pos:end]
        ids += tokenizer(piece, add_special_tokens=pos == 0, verbose=False)["input_ids"]
        pos = end
    eos, eos_id = getattr(tokenizer, "eos_token", None), getattr(tokenizer, "eos_token_id", None)
    if eos_id is not None and not (eos and text.endswith(eos)):
        ids.append(eos_id)
    return [ids[k : k + cutoff_len] for k in range(0, len(ids), cutoff_len)]
