"""Batches for the Trainer: dynamic padding for separate examples, padding-free rows for packed ones.

transformers' DataCollatorForSeq2Seq would pad, but it pads labels and inputs from the tokenizer and
does not know packed rows; DataCollatorWithFlattening flattens a whole batch into one row, which is
what flash-attention wants but makes sdpa/eager attend over (batch x length)^2 positions. These two
small collators cover both cases on top of the data layer's rows.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE = -100
# Non-padding tokens in the batch; the trainer pops it before the forward pass (see trainer.py).
NUM_TOKENS = "num_tokens"


def features(item: Any) -> dict[str, list[int]]:
    """A data-layer row (Encoded, Packed or a dict) as plain lists for the dataset."""
    get = item.get if isinstance(item, dict) else (lambda k, d=None: getattr(item, k, d))
    row = {"input_ids": list(get("input_ids")), "labels": list(get("labels"))}
    position_ids = get("position_ids", None)
    if position_ids is not None:
        row["position_ids"] = list(position_ids)
    return row


def right_padded(rows: list[dict[str, list[int]]], width: int, pad_token_id: int, labels_of: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, labels) of `rows`, each right-padded to `width` (labels with IGNORE)."""
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(labels_of(r))
    return ids, labels


class PaddedCollator:
    """Right-pads each batch to its longest row (to a multiple of 8 on GPU, for tensor cores)."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        ids, labels = right_padded(rows, width, self.pad_token_id, lambda r: r["labels"])
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            mask[i, : len(r["input_ids"])] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask, NUM_TOKENS: mask.sum()}


class PackedCollator:
    """Packed rows without an attention mask: position ids that restart at 0 mark where each example
    begins, and transformers turns them into a block-diagonal causal mask (sdpa/eager) or varlen
    boundaries (flash-attention), so packed examples never see each other.

    `flatten=True` concatenates the batch into one row (no padding at all; best with flash-attention).
    Otherwise rows stay separate and a short row is filled with a dummy segment of its own (position
    ids from 0, labels ignored), which attends only to itself.

    use_cache=False goes with every batch: with a KV cache, transformers skips the packed-sequence
    detection and the examples of a row would attend to each other.
    """

    def __init__(self, pad_token_id: int, flatten: bool = False) -> None:
        self.pad_token_id = pad_token_id
        self.flatten = flatten

    @staticmethod
    def _labels(row: dict[str, list[int]]) -> list[int]:
        # The label at an example's first token is the target of the previous example's last token
        # (the loss shifts labels by one): ignore it so no loss crosses an example boundary.
        return [IGNORE if p == 0 else lab for lab, p in zip(row["labels"], row["position_ids"], strict=True)]

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        if self.flatten:
            ids = [t for r in rows for t in r["input_ids"]]
            labels = [t for r in rows for t in self._labels(r)]
            pos = [p for r in rows for p in r["position_ids"]]
            as_row = lambda xs: torch.tensor([xs], dtype=torch.long)  # noqa: E731
            batch = {"input_ids": as_row(ids), "labels": as_row(labels), "position_ids": as_row(pos)}
            return batch | {NUM_TOKENS: torch.tensor(len(ids)), "use_cache": False}
        width = max(len(r["input_ids"]) for r in rows)
        ids, labels = right_padded(rows, width, self.pad_token_id, self._labels)
        pos = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            pos[i, :n] = torch.tensor(r["position_ids"])
            pos[i, n:] = torch.arange(width - n)
        real = torch.tensor(sum(len(r["input_ids"]) for r in rows))
        return {"input_ids": ids, "labels": labels, "position_ids": pos, NUM_TOKENS: real, "use_cache": False}


def batching(
    recipe: Any, model: Any, pad_token_id: int, train_rows: list[dict], eval_rows: list[dict], device: str
) -> tuple[Any, bool, list[dict]]:
    """(collator, packed, eval rows) for the Trainer, as `tuitune train` and `estimate --measure` use them.

    Packed rows go to PackedCollator (flattened into one row under flash-attention); evaluation rows
    are single examples and get position ids so the same collator takes them. Otherwise padding.
    """
    from tuitune.core.engine.build import uses_packing

    packed = uses_packing(recipe) and bool(train_rows) and all("position_ids" in r for r in train_rows)
    if packed:
        eval_rows = [r | {"position_ids": list(range(len(r["input_ids"])))} for r in eval_rows]
        flatten = getattr(model.config, "_attn_implementation", "") == "flash_attention_2"
        return PackedCollator(pad_token_id, flatten=flatten), True, eval_rows
    return PaddedCollator(pad_token_id, pad_to_multiple_of=8 if device == "cuda" else None), False, eval_rows
