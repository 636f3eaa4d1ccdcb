"""A group job's Trainer: the engine's TuituneTrainer, saving only its own adapter and, under the fused
schedule, handing its batches to the group's fused step instead of running them itself."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME

from tuitune.core.engine.trainer import TuituneTrainer


class JobTrainer(TuituneTrainer):
    def __init__(self, *args: Any, job: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job = job  # together.session.JobSession: its adapter's name and the group

    def training_step(self, model, inputs, num_items_in_batch=None):  # noqa: D102
        group = self.job.group
        if group.schedule != "fused":
            return super().training_step(model, inputs, num_items_in_batch)
        # What Trainer.training_step does before the loss; the forward and backward are the group's.
        model.train()
        inputs = self._prepare_inputs(inputs)
        return group.submit(self.job, self, inputs, num_items_in_batch)

    def count_batch(self, inputs: dict[str, Any]) -> None:
        observer = self.job.group.batch_observer
        if observer is not None:
            observer(self.job, inputs)
        super().count_batch(inputs)

    def loss_divisor(self, num_items_in_batch: Any) -> int:
        """What Trainer.training_step divides the loss by for gradient accumulation (1 when the loss
        is already a mean over the whole accumulated batch's tokens)."""
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func is not None
        return 1 if scaled else self.current_gradient_accumulation_steps

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """The job's adapter alone, as a run trained alone saves it (adapter_config.json and weights at
        the top of the folder): peft would save every adapter, the others in subfolders."""
        out = output_dir or self.args.output_dir
        os.makedirs(out, exist_ok=True)
        name = self.job.adapter
        with tempfile.TemporaryDirectory(dir=out, prefix=".adapter-") as tmp:
            self.model.save_pretrained(tmp, selected_adapters=[name])  # into tmp/NAME (its README in tmp)
            for folder in (os.path.join(tmp, name), tmp):
                for entry in os.listdir(folder):
                    if entry != name:
                        os.replace(os.path.join(folder, entry), os.path.join(out, entry))
        if self.processing_class is not None:
            self.processing_class.save_pretrained(out)
        torch.save(self.args, os.path.join(out, TRAINING_ARGS_NAME))


class TurnCallback(TrainerCallback):
    """At the end of each of the job's optimizer steps: a stop asked of any run of the group stops them
    all; under round-robin the next job trains its step."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def on_step_end(self, args, state, control, **kwargs):
        group = self.job.group
        if group.stop_requested():
            group.signals.event.set()
        if group.schedule == "round-robin":
            group.turns.pass_turn(self.job)
        return control
