"""One trainer process's life: own the run, load, train, save, and report every outcome.

Runs in every rank under accelerate's launcher; only rank 0 holds the lock and writes events.
Exit codes: 0 done or stopped, 1 failed, 2 a problem with the recipe or the data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.engine.failures import DataError, describe
from tuitune.core.engine.report import Reporter
from tuitune.core.errors import UserError
from tuitune.core.events import DoneEvent, ErrorEvent
from tuitune.core.runs import RunDirectory, RunLock

LOCK_FD_ENV = "TUITUNE_LOCK_FD"  # a lock fd inherited from the `tuitune train` that spawned us


@dataclass(frozen=True)
class Ranks:
    rank: int
    local_rank: int
    world_size: int

    @classmethod
    def from_env(cls) -> Ranks:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def main(self) -> bool:
        return self.rank == 0


class StopSignals:
    """SIGTERM/SIGINT set a flag the trainer checks at the end of each step; a second signal aborts."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals only reach the main thread; in-process callers use the stop file
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _data_recipe(recipe):
    from tuitune.core.engine.build import uses_packing

    if recipe.data.packing and not uses_packing(recipe):
        recipe = recipe.copy()
        recipe.data.packing = False
    return recipe


def prepare_data(recipe, tokenizer, reporter: Reporter):
    """The data layer's train/eval rows. Row problems become warnings; no usable rows is an error."""
    from tuitune.core.data import prepare_training_data

    try:
        prepared = prepare_training_data(_data_recipe(recipe), tokenizer)
    except DataError:
        raise
    except UserError as e:
        raise DataError(e.message, e.hint) from e
    for note in getattr(prepared, "notes", []) or []:
        reporter.log(f"data: {note}")  # how the rows were read and rendered (tools fallback, long rows ...)
    problems = list(getattr(prepared, "problems", []) or [])
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])  # DataProblem names its file and line
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        # The data layer's own wording says what happened to each row (dropped, skipped, duplicate).
        reporter.warning(f"data: {len(problems)} problem(s): {shown}{more}")
    if not prepared.train:
        raise DataError(f"no usable training rows in {recipe.data_path}", "check the file with the Dataset screen")
    return prepared


class TrainingSession:
    SAMPLES = True  # answers to the recipe's sample prompts while training (engine.samples)

    def __init__(self, run: RunDirectory, resume: bool = False, data: Any = None) -> None:
        self.run = run
        self.resume = resume
        self.data = data  # already prepared rows (the TUI may have them), else the data layer is called
        self.ranks = Ranks.from_env()
        self.reporter = Reporter(run, enabled=self.ranks.main)
        self.signals = StopSignals()
        self.lock: RunLock | None = None
        self.step = 0
        self.started = time.time()
        self.phase = "setup"
        self._trainer: Any = None

    # ---- the whole life

    def run_to_end(self) -> int:
        if self.ranks.main:
            try:
                self._own_run()
            except UserError as e:  # another trainer owns the run: leave its files alone
                self.reporter.enabled = False
                self.reporter.close()
                print(f"error: {e}", file=sys.stderr)
                return 2
        return self.train_owned()

    def train_owned(self) -> int:
        """Train a run this process owns already (run_to_end, or a group that took every run first)."""
        try:
            self.signals.install()
            return self._train()
        except BaseException as exc:  # noqa: BLE001 - every outcome must reach the run directory
            return self._fail(exc)
        finally:
            self.signals.restore()
            self.reporter.close()
            if self.lock is not None:
                with contextlib.suppress(OSError):
                    self.run.stop_path.unlink(missing_ok=True)
                self.lock.release()

    def _own_run(self, inherited: str | None = None) -> None:
        inherited = inherited or os.environ.pop(LOCK_FD_ENV, None)
        if inherited and self.ranks.world_size > 1:
            pass  # accelerate's launcher process holds the lock it inherited from `tuitune train`
        elif inherited:
            self.lock = self.run.adopt_lock(int(inherited))
        else:
            self.lock = self.run.acquire_lock()
        self.run.stop_path.unlink(missing_ok=True)
        previous = self.run.read_status()
        if not self.resume:
            self.reporter.update(started=self.started, step=0, best_eval_loss=None, error=None)
        elif "started" not in previous:
            self.reporter.update(started=self.started)
        self.reporter.claim(finished=None, error=None)

    def _stopping(self) -> bool:
        return self.signals.event.is_set() or self.run.stop_requested()

    def _train(self) -> int:
        import torch

        from tuitune.core.engine.arguments import (
            check_before_loading,
            position_limit_warning,
            training_arguments,
        )
        from tuitune.core.engine.callbacks import ControlCallback, EventsCallback
        from tuitune.core.engine.collate import batching, features
        from tuitune.core.engine.resources import visible_gpus
        from tuitune.core.engine.trainer import StepCounters
        from tuitune.core.models.loading import pick_device

        recipe = self.run.load_recipe()
        self.reporter.status("starting", "checking the recipe", name=recipe.name, method=recipe.method.type,
                             model=recipe.model.name_or_path)
        device = pick_device()
        if device == "cuda" and self.ranks.world_size > 1:
            torch.cuda.set_device(self.ranks.local_rank)
        for w in check_before_loading(recipe, device, self.ranks.world_size):
            self.reporter.warning(w)
        checkpoint = self._resume_point() if self.resume else None

        self.reporter.status("loading", f"loading {recipe.model.name_or_path}")
        from tuitune.core.models.hub_download import DownloadCancelled

        try:
            built = self._build_model(recipe, device)
        except DownloadCancelled:
            return self._stopped("stopped while downloading the model (what arrived is kept for the resume)")
        for note in [*built.notes, position_limit_warning(recipe, built.model)]:
            if note:
                self.reporter.warning(note)
        if self._stopping():
            return self._stopped("stopped before training started")

        self.reporter.status("loading", "preparing the data")
        prepared = self.data if self.data is not None else prepare_data(recipe, built.tokenizer, self.reporter)
        train_rows = [features(x) for x in prepared.train]
        eval_rows = [features(x) for x in (prepared.eval or [])]
        collator, packed, eval_rows = batching(
            recipe, built.model, built.tokenizer.pad_token_id, train_rows, eval_rows, device
        )
        if self._stopping():
            return self._stopped("stopped before training started")

        args = training_arguments(
            recipe,
            self.run,
            device,
            has_eval=bool(eval_rows),
            packed=packed,
            world_size=self.ranks.world_size,
            layer_classes=list(getattr(built.model, "_no_split_modules", None) or []),
        )
        counters = StepCounters()
        control = ControlCallback(self.run, self.signals.event, counters, self.reporter, self.ranks.world_size)
        events = EventsCallback(
            self.reporter,
            {
                "name": recipe.name,
                "method": recipe.method.type,
                "model": recipe.model.name_or_path,
                "device": device,
                "n_gpus": self.ranks.world_size if device == "cuda" else 0,
                "world_size": self.ranks.world_size,
                "nnodes": int(os.environ.get("GROUP_WORLD_SIZE", 1)),
                "gpus": visible_gpus() if device == "cuda" else None,
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "num_train": len(train_rows),
                "num_eval": len(eval_rows),
                "packed": packed,
                "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
                "epochs": recipe.train.epochs,
                "trainable_params": built.trainable_params,
                "total_params": built.total_params,
            },
            device,
            self.ranks.world_size,
        )
        samples = None
        if self.ranks.main and self.SAMPLES:  # the other ranks train on while rank 0 answers
            from tuitune.core.engine.samples import samples_callback

            fsdp = self.ranks.world_size > 1 and recipe.distributed.strategy == "fsdp"
            samples = samples_callback(recipe, built.tokenizer, prepared, self.reporter, fsdp, events.exclude_from_speed)
        trainer = self._make_trainer(
            model=built.model,
            args=args,
            train_dataset=train_rows,
            eval_dataset=eval_rows or None,
            data_collator=collator,
            processing_class=built.tokenizer,
            callbacks=[*self._extra_callbacks(), control, events] + ([samples] if samples else []),
            counters=counters,
            warn=self.reporter.warning,
            log=self.reporter.log,
            offload_activations=recipe.train.offload_activations,
        )
        self._trainer = trainer
        self.phase = "training"
        if checkpoint is not None and self._at_max_steps(trainer, checkpoint):
            output = None  # the Trainer would train one step past max_steps: take the checkpoint as it is
        else:
            output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        self.phase = "finishing"
        self.step = trainer.state.global_step
        if control.stopped:
            return self._stopped(f"stopped at step {self.step}; resume with `tuitune train --resume {self.run.name}`")

        if eval_rows and events.last_eval_step != self.step:
            self.reporter.status("evaluating", "final evaluation")
            trainer.evaluate()
        self.reporter.status("saving", "saving the result")
        target = self.run.adapter_dir if recipe.is_peft else self.run.model_dir
        self._save(trainer, target)
        reported = output.training_loss if output is not None else None
        train_loss = self._train_loss(events.train_loss if events.train_loss is not None else reported,
                                      resumed=checkpoint is not None, trained=self.step - (events.first_step or 0))
        self.reporter.emit(DoneEvent(
            steps=self.step,
            train_loss=train_loss,
            best_eval_loss=events.best_eval_loss,
            duration_s=time.time() - self.started,
            output=str(target),
        ))
        self.reporter.status("done", f"finished {self.step} steps", step=self.step, output=str(target),
                             best_eval_loss=events.best_eval_loss, train_loss=train_loss)
        return 0

    def _resume_point(self) -> Path | None:
        """The newest intact checkpoint; newer damaged ones are named in a warning and set aside."""
        from tuitune.core.runs.checkpoints import newest_intact_checkpoint, set_aside

        checkpoint, damaged = newest_intact_checkpoint(self.run)
        for folder, problem in damaged:
            moved = set_aside(self.run, folder) if self.ranks.main else folder
            then = f"resuming from {checkpoint.name}" if checkpoint else "no intact checkpoint is left"
            self.reporter.warning(f"{folder.name} is damaged: {problem}; moved to {moved.parent.name}/{moved.name}, {then}")
        if checkpoint is None:
            self.reporter.warning("no checkpoint to resume from: starting from step 0")
        return checkpoint

    def _at_max_steps(self, trainer: Any, checkpoint: Path) -> bool:
        """A resume whose checkpoint already reached max_steps loads it and trains nothing (transformers'
        loop would still run one more step); the result is saved from it."""
        from transformers.trainer_callback import TrainerState

        state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
        if not (0 < trainer.args.max_steps <= state.global_step):
            return False
        trainer._load_from_checkpoint(str(checkpoint))
        trainer.state = state
        self.reporter.log(f"{checkpoint.name} already reached max_steps = {trainer.args.max_steps}: saving its result")
        return True

    def _train_loss(self, reported: float | None, resumed: bool, trained: int) -> float | None:
        """The run's mean training loss. The Trainer's figure covers this process's steps only (0.0 when a
        resume had nothing left to train), so a resumed run averages the logged losses of its history."""
        if not resumed:
            return reported
        from tuitune.core.runs.history import RunHistory

        history = RunHistory()
        history.add(self.run.events())
        mean = history.mean_train_loss()
        return mean if mean is not None else (reported if trained > 0 else None)

    # ---- what a group job (engine.together) replaces: the model, the Trainer, extra callbacks

    def _build_model(self, recipe: Any, device: str) -> Any:
        """The recipe's model; a hub model not yet cached is downloaded here, reported as `download`
        events (DownloadCancelled when a stop is asked meanwhile)."""
        import torch
        from transformers import set_seed

        from tuitune.core.engine.build import build_model
        from tuitune.core.engine.downloads import download_events

        set_seed(recipe.train.seed)  # adapter initialisation is random too: the same seed repeats a run
        device_map = {"": torch.cuda.current_device()} if device == "cuda" and recipe.method.type == "qlora" else None
        with download_events(recipe, self.reporter, device, self._stopping):
            return build_model(recipe, device, device_map=device_map)

    def _make_trainer(self, **kwargs: Any) -> Any:
        from tuitune.core.engine.trainer import TuituneTrainer

        return TuituneTrainer(**kwargs)

    def _extra_callbacks(self) -> list[Any]:
        return []

    def _save(self, trainer: Any, target: Path) -> None:
        """Save into a temporary folder and rename it, so adapter/ or model/ is never half written."""
        tmp = target.with_name(target.name + ".partial")
        if self.ranks.main:
            shutil.rmtree(tmp, ignore_errors=True)
        trainer.save_model(str(tmp))  # collective under FSDP; writes on rank 0 only
        if self.ranks.main:
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)

    def _stopped(self, message: str) -> int:
        self.reporter.status("stopped", message, step=self.step)
        return 0

    def _fail(self, exc: BaseException) -> int:
        trainer = self._trainer
        step = trainer.state.global_step if trainer is not None else 0
        if isinstance(exc, KeyboardInterrupt):
            self.reporter.status(
                "stopped", "stopped at once by a second signal: steps since the last checkpoint are lost", step=step
            )
            return 130
        if isinstance(exc, SystemExit):
            raise exc
        # During training the failing step is the one after the last finished one.
        failure = describe(exc, step + 1 if self.phase == "training" else None)
        if not isinstance(exc, UserError):
            traceback.print_exc(file=sys.stderr)  # train.log gets the details; events get one line
        print(f"error: {failure.message}" + (f"\n  hint: {failure.hint}" if failure.hint else ""), file=sys.stderr)
        self.reporter.emit(ErrorEvent(**failure.as_event()))
        self.reporter.status("failed", failure.message, error=failure.message, hint=failure.hint)
        return 2 if failure.kind in ("config", "data") else 1


def train_run(run_dir: str | Path, resume: bool = False, data: Any = None) -> int:
    """Train the run whose frozen recipe is in run_dir, in this process. Returns the exit code."""
    return TrainingSession(RunDirectory(run_dir), resume=resume, data=data).run_to_end()

