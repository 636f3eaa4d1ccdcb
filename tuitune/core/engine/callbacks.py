"""Trainer callbacks: stop requests, NaN guard and token counts (every rank), events and sample answers (rank 0).

Every rank must stop at the same step or DDP would hang in the next all-reduce, so the stop flag,
the non-finite-loss flag and the token count are summed across ranks once per optimizer step.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import torch
from transformers import TrainerCallback

from tuitune.core.engine.failures import NonFiniteLoss
from tuitune.core.engine.report import Reporter
from tuitune.core.engine.resources import memory_snapshot
from tuitune.core.engine.trainer import StepCounters
from tuitune.core.events import CheckpointEvent, EvalEvent, StartEvent, StepEvent
from tuitune.core.runs import RunDirectory


class ControlCallback(TrainerCallback):
    """Acts on SIGTERM/SIGINT or `tuitune stop` at the end of a step: checkpoint, then stop."""

    def __init__(
        self, run: RunDirectory, stop: threading.Event, counters: StepCounters, reporter: Reporter, world_size: int
    ) -> None:
        self.run = run
        self.stop = stop
        self.counters = counters
        self.reporter = reporter
        self.world_size = world_size
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        tokens, bad = self.counters.take()
        wants_stop = int(self.stop.is_set() or self.run.stop_requested())
        if self.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flags = torch.tensor([wants_stop, bad, tokens], dtype=torch.int64, device=args.device)
            torch.distributed.all_reduce(flags)
            wants_stop, bad, tokens = (int(x) for x in flags.tolist())
        state.num_input_tokens_seen += tokens
        if bad:
            raise NonFiniteLoss(state.global_step)
        if wants_stop and not self.stopped:
            self.stopped = True
            self.reporter.status("stopping", f"stop requested: saving a checkpoint at step {state.global_step}")
            control.should_save = True
            control.should_training_stop = True
        return control


def _checkpointing(model: Any) -> bool:
    """Whether activation (gradient) checkpointing is on; PEFT wrappers forward the attribute."""
    for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # new name first
        value = getattr(model, name, None)
        if isinstance(value, bool):
            return value
    return False


class EventsCallback(TrainerCallback):
    """Writes start / step / eval / checkpoint events and keeps status.json current (rank 0 only)."""

    def __init__(self, reporter: Reporter, start_fields: dict[str, Any], device: str, world_size: int = 1) -> None:
        self.reporter = reporter
        self.start_fields = start_fields
        self.device = device
        self.world_size = world_size
        self.best_eval_loss: float | None = None
        self.train_loss: float | None = None
        self.last_eval_step = -1
        self._t0 = self._last_t = time.monotonic()
        self._step0 = 0
        self._last_tokens = 0
        self.first_step: int | None = None  # the step this process began training at (a resume's checkpoint)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._t0 = self._last_t = time.monotonic()
        self._step0 = self.first_step = state.global_step
        self._last_tokens = state.num_input_tokens_seen
        for entry in state.log_history:  # a resumed run keeps its best eval loss
            if "eval_loss" in entry:
                self._note_eval(entry["eval_loss"])
        self.reporter.emit(StartEvent(
            **self.start_fields,
            max_steps=state.max_steps,
            resumed_from=state.global_step or None,
            gradient_checkpointing=_checkpointing(model),
        ))
        self.reporter.status(
            "training",
            f"resumed at step {state.global_step}" if state.global_step else "training",
            step=state.global_step,
            max_steps=state.max_steps,
            best_eval_loss=self.best_eval_loss,
        )

    def exclude_from_speed(self, seconds: float) -> None:
        """Time spent on other work since the last step event (sample answers): not training speed."""
        self._last_t += seconds

    def _note_eval(self, loss: float) -> None:
        if loss is not None and math.isfinite(loss) and (self.best_eval_loss is None or loss < self.best_eval_loss):
            self.best_eval_loss = float(loss)

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_evaluate:
            self.reporter.status("evaluating", f"evaluating at step {state.global_step}")

    def on_evaluate(self, args, state, control, **kwargs):
        if not control.should_training_stop and self.reporter.status_name == "evaluating":
            self.reporter.status("training", "training")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "eval_loss" in logs:
            loss = float(logs["eval_loss"])
            self._note_eval(loss)
            self.last_eval_step = state.global_step
            perplexity = math.exp(loss) if math.isfinite(loss) and loss < 700 else None
            self.reporter.emit(EvalEvent(step=state.global_step, eval_loss=loss, perplexity=perplexity))
            self.reporter.update(best_eval_loss=self.best_eval_loss)
        if "train_loss" in logs:
            self.train_loss = float(logs["train_loss"])
        if "loss" in logs:
            self._step_event(state, logs)

    def _step_event(self, state, logs: dict[str, Any]) -> None:
        # Every rank logs (the Trainer gathers the loss there), so every rank joins the memory gather.
        memory = memory_snapshot(self.device, self.world_size)
        now = time.monotonic()
        step = state.global_step
        tokens = state.num_input_tokens_seen
        elapsed = now - self._t0
        done = step - self._step0
        eta = (state.max_steps - step) * elapsed / done if done > 0 else None
        window = now - self._last_t
        rate = (tokens - self._last_tokens) / window if window > 0 and tokens > self._last_tokens else None
        self._last_t, self._last_tokens = now, tokens
        loss = float(logs["loss"])
        self.reporter.emit(StepEvent(
            step=step,
            max_steps=state.max_steps,
            epoch=state.epoch,
            loss=loss,
            lr=logs.get("learning_rate"),
            grad_norm=logs.get("grad_norm"),
            tokens=tokens,
            tokens_per_s=rate,
            elapsed_s=elapsed,
            eta_s=eta,
            memory=memory,
        ))
        self.reporter.update(step=step, max_steps=state.max_steps, epoch=state.epoch, loss=loss, tokens=tokens)

    def on_save(self, args, state, control, **kwargs):
        path = f"{args.output_dir}/checkpoint-{state.global_step}"
        self.reporter.emit(CheckpointEvent(step=state.global_step, path=path))
        self.reporter.update(last_checkpoint=path)


class SamplesCallback(TrainerCallback):
    """Rank 0 only: the sample answers (`engine.samples.SampleSchedule`) at the end of due steps;
    the other ranks train on and wait for rank 0 in the next step's all-reduce."""

    def __init__(self, schedule: Any) -> None:
        self.schedule = schedule

    def on_train_begin(self, args, state, control, **kwargs):
        self.schedule.begin()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None:
            self.schedule.step_ended(model, state.global_step, state.max_steps)
        return control
