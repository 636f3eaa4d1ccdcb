"""The transformers Trainer, plus per-step bookkeeping the events need.

Why the plain Trainer and not TRL's SFTTrainer: the data layer already renders chat templates,
masks prompts and packs (with the line numbers the Dataset screen shows), so SFTTrainer's own
dataset preparation would be redone or bypassed; what is left of it is this Trainer.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from tuitune.core.engine.collate import NUM_TOKENS
from tuitune.core.memory import PLAIN_HEAD_MODEL_TYPES

# PLAIN_HEAD_MODEL_TYPES: model types whose logits are exactly lm_head(last hidden state), no
# soft-capping or logit scaling, so the loss can be computed from the trained positions only (see
# trained_positions_loss). It lives with the memory estimator, which counts logits the same way.

# Test-only hook: raise a CUDA out-of-memory error inside this training step, to exercise the OOM
# path on machines without a GPU. Never set in normal use.
FAKE_OOM_ENV = "TUITUNE_TEST_FAKE_OOM_AT_STEP"


class StepCounters:
    """Token and non-finite-loss counts since the last optimizer step, kept on the device so
    counting costs no synchronisation; the control callback reads them once per step."""

    def __init__(self) -> None:
        self.tokens: torch.Tensor | int = 0
        self.nonfinite: torch.Tensor | int = 0
        self.fake_oom_step = int(os.environ.get(FAKE_OOM_ENV, "0") or 0)

    def take(self) -> tuple[int, int]:
        tokens, bad = int(self.tokens), int(self.nonfinite)
        self.tokens, self.nonfinite = 0, 0
        return tokens, bad


def plain_causal_lm(model: Any) -> Any | None:
    """The causal LM under a LoRA/IA3 wrapper (or the model itself) when the fast loss applies to it.

    Not for virtual-token methods (their forward prepends tokens) nor under DDP/FSDP wrappers (their
    forward must run for gradients to be synchronised)."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel) or type(model).__name__.startswith("FullySharded"):
        return None
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        config = next(iter(peft_config.values()))
        kind = getattr(config.peft_type, "value", config.peft_type)
        if getattr(config, "is_prompt_learning", False) or kind not in ("LORA", "IA3"):
            return None
        model = model.get_base_model()
    if getattr(model.config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    if not hasattr(model, "lm_head") or not hasattr(model, "get_decoder"):
        return None
    return model


def trained_positions_loss(causal_lm: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
    """The causal-LM loss with the output head applied only where a label is trained.

    The vocabulary projection is a fifth of a small model's compute per token (49k x 576 for the
    demo) and its logits the largest activation; prompt tokens (system prompt, question) have no
    label, so projecting them is wasted work. Same value as the model's own loss: shifted labels,
    summed cross-entropy divided by the trained tokens of the whole (accumulated) batch.
    """
    model_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
    hidden = causal_lm.get_decoder()(**model_inputs, use_cache=False).last_hidden_state
    return head_loss(causal_lm, hidden, inputs["labels"], num_items_in_batch)


def head_loss(causal_lm: Any, hidden: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
    """trained_positions_loss from the decoder's last hidden states (a fused group step has them)."""
    targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)  # position t predicts label t+1
    keep = targets != -100
    logits = causal_lm.lm_head(hidden[keep]).float()
    loss = torch.nn.functional.cross_entropy(logits, targets[keep], reduction="sum")
    if num_items_in_batch is None:
        return loss / keep.sum().clamp(min=1)
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


class SeededLengthGroupedSampler(LengthGroupedSampler):
    """Batches of similar length (little padding), in an order fixed by seed and epoch.

    transformers' LengthGroupedSampler draws from the global RNG when the epoch starts, so a run
    resumed mid-epoch would see that epoch's batches in another order; seeding per epoch (accelerate
    calls set_epoch, also after skipping the batches already trained) repeats it exactly.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


class TuituneTrainer(Trainer):
    def __init__(self, *args: Any, counters: StepCounters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counters = counters

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy == "group_by_length" and isinstance(dataset, list):
            lengths = [len(row["input_ids"]) for row in dataset]
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return SeededLengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths, seed)
        return super()._get_train_sampler(train_dataset)

    def count_batch(self, inputs: dict[str, Any]) -> None:
        """Before a training batch's loss: take its token count out of the inputs (the test OOM hook too)."""
        tokens = inputs.pop(NUM_TOKENS, None)
        step = self.state.global_step + 1
        if self.counters.fake_oom_step and step == self.counters.fake_oom_step:
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB "
                "of which 1.12 GiB is free. Of the allocated memory 20.10 GiB is allocated by PyTorch, "
                "and 1.90 GiB is reserved by PyTorch but unallocated."
            )
        if tokens is not None:
            self.counters.tokens = self.counters.tokens + tokens

    def note_loss(self, loss: torch.Tensor) -> None:
        """After a training batch's loss: count a NaN/inf (the control callback stops the run on it)."""
        self.counters.nonfinite = self.counters.nonfinite + (~torch.isfinite(loss.detach())).sum()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        training = model.training
        if training:
            self.count_batch(inputs)
        else:
            inputs.pop(NUM_TOKENS, None)
        causal_lm = plain_causal_lm(model) if training and not return_outputs and "labels" in inputs else None
        if causal_lm is not None and self.label_smoother is None and self.compute_loss_func is None:
            # accelerate applies mixed precision by wrapping model.forward, which this path goes around.
            with self.accelerator.autocast():
                result = trained_positions_loss(causal_lm, inputs, num_items_in_batch)
        else:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if training:
            self.note_loss(result[0] if return_outputs else result)
        return result
