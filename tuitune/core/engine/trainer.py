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

from tuitune.core.engine.checkpointing import AtomicCheckpoints
from tuitune.core.engine.collate import NUM_TOKENS
from tuitune.core.engine.head_loss import HeadLoss
from tuitune.core.engine.offload import ActivationOffload

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


class TuituneTrainer(AtomicCheckpoints, Trainer):
    def __init__(self, *args: Any, counters: StepCounters, warn: Any = None, log: Any = None,
                 offload_activations: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counters = counters
        self.warn = warn  # warn(message): a warning event (the session's reporter)
        self.log_line = log  # log(message): a log event
        self._head_loss: HeadLoss | None | bool = False  # False: not looked at yet
        self.offload: ActivationOffload | None = ActivationOffload(self.model) if offload_activations else None
        self._offload_told = False

    def head_loss(self, model: Any) -> HeadLoss | None:
        """The chunked head + loss for this model (tuitune.core.engine.head_loss), None where the
        model's own loss must be used: a label smoother or custom loss, FSDP (sharded head weight),
        a head that is not a plain Linear."""
        if self._head_loss is False:
            plain = self.label_smoother is not None or self.compute_loss_func is not None or self.is_fsdp_enabled
            self._head_loss = None if plain else HeadLoss.for_model(model)
        return self._head_loss or None

    def _head_loss_or_none(self, model, inputs, num_items_in_batch):  # noqa: ANN001, ANN202
        head = self.head_loss(model)
        if head is None:
            return None
        # accelerate applies mixed precision by wrapping model.forward; the loss is formed after it.
        with self.accelerator.autocast():
            loss = head(model, inputs, num_items_in_batch)
        if loss is None:  # the one-off check found logits this head cannot reproduce
            self._head_loss = None
            if self.warn is not None and head.note:
                self.warn(head.note)
        return loss

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
        if self.offload is not None and model.training:
            with self.offload:
                result = self._compute_loss(model, inputs, return_outputs, num_items_in_batch)
            self._tell_offload()
            return result
        return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _tell_offload(self) -> None:
        """Once, after the first offloaded forward: how much it moves per micro-batch."""
        if self._offload_told:
            return
        self._offload_told = True
        moved = self.offload.offloaded_bytes / 2**20
        where = "pinned host memory" if self.args.device.type == "cuda" else \
            "host memory (on a CPU they are there already: nothing moves)"
        if self.log_line is not None:
            self.log_line(f"activation offload: {moved:,.1f} MiB of saved activations per micro-batch go to {where}")

    def _compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001, ANN202
        training = model.training
        if training:
            self.count_batch(inputs)
        else:
            inputs.pop(NUM_TOKENS, None)
        result = None
        if "labels" in inputs and (training or self.args.prediction_loss_only):
            loss = self._head_loss_or_none(model, inputs, num_items_in_batch)
            if loss is not None:  # evaluation asks for outputs: the loss is all it reads (prediction_loss_only)
                result = (loss, {"loss": loss}) if return_outputs else loss
        if result is None:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        if training:
            self.note_loss(result[0] if return_outputs else result)
        return result
