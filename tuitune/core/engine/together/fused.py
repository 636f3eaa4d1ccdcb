"""One forward and one backward pass of the base model for every job's micro-batch (m-LoRA's batch fusion).

The jobs' rows are stacked into one batch (right-padded to the widest); the decoder runs once, each
row through its own job's adapter (routing.py), with the output head swapped for a capture of its
input (the engine's `HeadLoss`, as a run trained alone computes its loss). Each job's loss is then the
engine's chunked head + cross-entropy on its own rows (`HeadLoss.loss_from_hidden`: only its labelled
positions, one vocabulary chunk at a time, divided by its own token count), scaled for gradient accumulation as that job's Trainer would, and back-propagated to the
last hidden states one job at a time, so only one job's chunk of logits is alive at once; then one backward
pass through the decoder gives every adapter its gradients. A job's rows only ever meet its own
adapter, so each gradient is the one its job would get alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuitune.core.engine.together.model import GroupModel, put_aside, put_back
from tuitune.core.engine.together.routing import Routing

IGNORE = -100


@dataclass
class Submission:
    """A job's micro-batch handed in for the next fused step."""

    trainer: Any  # its JobTrainer
    inputs: dict[str, Any]  # the collated batch, on the device
    num_items_in_batch: Any
    pad_token_id: int


def merge_batches(parts: list[tuple[str, dict[str, Any], int]]) -> tuple[dict[str, Any], list[tuple[str, int, int]]]:
    """[(adapter, batch, pad id)] -> (one batch, [(adapter, first row, end row)]).

    Padded batches (attention_mask) stay padded. When any batch is packed (position ids restarting at
    0 per example, no mask), every batch is written that way: a padded row's padding becomes a
    segment of its own, which attends only to itself, as the packed collator does.
    """
    import torch
    import torch.nn.functional as F

    width = max(b["input_ids"].shape[1] for _, b, _ in parts)
    packed = any("attention_mask" not in b for _, b, _ in parts)
    ids, labels, masks, positions, spans, row = [], [], [], [], [], 0
    for name, b, pad in parts:
        n_rows, w = b["input_ids"].shape
        extra = width - w
        ids.append(F.pad(b["input_ids"], (0, extra), value=pad))
        labels.append(F.pad(b["labels"], (0, extra), value=IGNORE))
        if not packed:
            masks.append(F.pad(b["attention_mask"], (0, extra), value=0))
        elif "position_ids" in b:
            filler = torch.arange(extra, device=b["position_ids"].device).expand(n_rows, extra)
            positions.append(torch.cat([b["position_ids"], filler], dim=1))
        else:
            t = torch.arange(width, device=b["input_ids"].device).expand(n_rows, width)
            real = b["attention_mask"].sum(dim=1, keepdim=True)
            positions.append(torch.where(t < real, t, t - real))
        spans.append((name, row, row + n_rows))
        row += n_rows
    merged = {"input_ids": torch.cat(ids), "labels": torch.cat(labels)}
    if packed:
        merged["position_ids"] = torch.cat(positions)
    else:
        merged["attention_mask"] = torch.cat(masks)
    return merged, spans


def fused_head(model: Any) -> Any | None:
    """The engine's chunked head + loss (head_loss.HeadLoss) for the group's model, its one-off check
    run on a few tokens; None when the model's logits are not its head's (or the head is not a plain
    Linear): the jobs then take turns, each Trainer with its own loss."""
    import torch

    from tuitune.core.engine.head_loss import HeadLoss

    head = HeadLoss.for_model(model)
    if head is None:
        return None
    weight = head.head.weight
    ids = (torch.arange(16, device=weight.device) % weight.shape[0])[None]
    return head if head.usable({"input_ids": ids, "attention_mask": torch.ones_like(ids)}) else None


def fused_step(group: GroupModel, routing: Routing, head: Any, batch: list[tuple[Any, Submission]]) -> dict[Any, Any]:
    """Forward and backward of every job's batch at once; {job: its loss as its training_step returns it}.

    `head` is fused_head(group.model). `batch` holds (job, submission) with job.adapter (its adapter's
    name) and job.state (its gradients between turns, model.JobState). Gradients are left in job.state.
    """
    for _, sub in batch:
        sub.trainer.count_batch(sub.inputs)
    merged, spans = merge_batches([(job.adapter, sub.inputs, sub.pad_token_id) for job, sub in batch])
    names = [job.adapter for job, _ in batch]
    group.train_all(names)
    for job, _ in batch:
        put_back(group.params[job.adapter], job.state)  # accumulate onto earlier micro-batches
    group.model.train()
    accelerator = batch[0][1].trainer.accelerator  # one precision for the group (plan.SHARED_KEYS)
    inputs = {k: v for k, v in merged.items() if k != "labels"}
    results: dict[Any, Any] = {}
    routing.spans = spans
    try:
        with accelerator.autocast():
            hidden = head.hidden(group.model, inputs)
        last = hidden.detach().requires_grad_(True)
        for (job, sub), (_, start, end) in zip(batch, spans, strict=True):
            with accelerator.autocast():
                loss = head.loss_from_hidden(last[start:end], merged["labels"][start:end], sub.num_items_in_batch)
            sub.trainer.note_loss(loss)
            loss = loss / sub.trainer.loss_divisor(sub.num_items_in_batch)
            sub.trainer.accelerator.backward(loss)  # its own loss scaler (fp16), into last.grad
            results[job] = loss.detach()
            del loss
        hidden.backward(last.grad)
    finally:
        routing.spans = None
    for job, _ in batch:
        put_aside(group.params[job.adapter], job.state)
    return results
