"""`tuitune estimate --measure`: the real memory of a recipe's first training steps.

Everything is what `tuitune train` runs: the engine builds the model (engine.build.build_model),
the data layer prepares the rows, engine.collate batches them, engine.arguments makes the
TrainingArguments and TuituneTrainer (its optimizer, its loss) trains two optimizer steps, then
evaluates one batch. Only the rows differ: the longest rows of the dataset, so the measured steps
are the heaviest the data can produce (the batch that decides whether a run fits).

Memory is allocated tensor bytes: `torch.cuda.max_memory_allocated` on a GPU, and on CPU the
live-tensor tracker of tuitune.core.memory.probe (a TorchDispatchMode; RSS would also count the
allocator's cache and the libraries). Phases: after load (weights and adapters), each training
step's peak, the evaluation batch's peak.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe

STEPS = 2


@dataclass
class RecipeMeasurement:
    """What two real training steps and one evaluation batch of a recipe allocated."""

    device: str
    after_load_bytes: int = 0
    step_peaks: list[int] = field(default_factory=list)  # one per finished optimizer step
    eval_peak_bytes: int | None = None
    batch_size: int = 0
    seq_len: int = 0  # the widest batch measured (tokens per row)
    trained_fraction: float = 1.0  # labelled tokens / tokens in the measured training batches
    trainable_params: int = 0
    total_params: int = 0
    seconds: float = 0.0
    # Out of memory: 0 while loading, 1..STEPS in that training step, STEPS + 1 in the evaluation batch.
    failed_at_step: int | None = None
    failure: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def train_peak_bytes(self) -> int:
        return max(self.step_peaks, default=0)

    @property
    def peak_step(self) -> int | None:
        return 1 + self.step_peaks.index(self.train_peak_bytes) if self.step_peaks else None

    @property
    def fits(self) -> bool:
        return self.failed_at_step is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "fits": self.fits,
            "after_load_bytes": self.after_load_bytes,
            "train_peak_bytes": self.train_peak_bytes,
            "peak_step": self.peak_step,
            "step_peaks": list(self.step_peaks),
            "eval_peak_bytes": self.eval_peak_bytes,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "trained_fraction": round(self.trained_fraction, 4),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "seconds": round(self.seconds, 2),
            "failed_at_step": self.failed_at_step,
            "failure": self.failure,
            "warnings": list(self.warnings),
        }


class WarningCollector:
    """Stands in for the run's Reporter: prepare_data reports row problems through .warning()."""

    def __init__(self, out: list[str]) -> None:
        self.out = out

    def warning(self, message: str) -> None:
        self.out.append(message)


def heaviest_rows(rows: list[dict], n: int) -> list[dict]:
    """The n longest rows (repeated when the data has fewer), longest first."""
    ranked = sorted(rows, key=lambda r: len(r["input_ids"]), reverse=True)
    return [ranked[i % len(ranked)] for i in range(n)]


class _Meter:
    """Allocated bytes now and the peak since the last reset, on CUDA or through the CPU tracker."""

    def __init__(self, device: str) -> None:
        import torch

        self.device = device
        self.torch = torch
        self.tracker: Any = None
        if device == "cpu":
            from tuitune.core.memory.probe import LiveTensorBytes

            self.tracker = LiveTensorBytes()

    def count_model(self, model: Any) -> None:
        """CPU: count what was allocated before tracking began (weights, buffers, quant constants)."""
        if self.tracker is not None:
            from tuitune.core.memory.probe import _quant_state_tensors

            self.tracker.add_existing([*model.parameters(), *model.buffers(), *_quant_state_tensors(model)])

    def current(self) -> int:
        if self.tracker is not None:
            return int(self.tracker.current)
        self.torch.cuda.synchronize()
        return int(self.torch.cuda.memory_allocated())

    def take_peak(self) -> int:
        """The peak since the last call (or the start), and start a new one from the current bytes."""
        if self.tracker is not None:
            peak = int(self.tracker.peak)
            self.tracker.peak = self.tracker.current
            return peak
        self.torch.cuda.synchronize()
        peak = int(self.torch.cuda.max_memory_allocated())
        self.torch.cuda.reset_peak_memory_stats()
        return peak

    def tracking(self) -> Any:
        import contextlib

        return self.tracker if self.tracker is not None else contextlib.nullcontext()


def _step_callback(meter: _Meter, result: RecipeMeasurement) -> Any:
    from transformers import TrainerCallback

    class StepPeaks(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            result.step_peaks.append(meter.take_peak())

    return StepPeaks()


def _batch_shapes(collator: Any, shapes: list[tuple[int, int, int]]) -> Any:
    """Wrap a collator to note each batch's (rows, width, labelled positions)."""

    def collate(rows: list[dict]) -> dict:
        batch = collator(rows)
        labels = batch["labels"]
        shapes.append((labels.shape[0], labels.shape[1], int((labels[:, 1:] != -100).sum())))
        return batch

    return collate


def _load(recipe: Recipe, device: str) -> Any:
    """The engine's build_model, with load failures as UserError naming the model (out of memory
    passes through: it is a measurement)."""
    import torch

    from tuitune.core.engine.build import build_model

    device_map = {"": 0} if device == "cuda" and recipe.method.type == "qlora" else None
    try:
        return build_model(recipe, device, device_map=device_map)
    except (UserError, torch.OutOfMemoryError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - broken weights, configs, tokenizers: all "cannot load"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(
            f"model.name_or_path: cannot load {recipe.model.name_or_path}: {first}"[:400],
            "check the model folder or hub id (tuitune estimate MODEL works without weights)",
        ) from e


def measure_recipe(recipe: Recipe, device: str | None = None) -> RecipeMeasurement:
    """Build, train two steps and evaluate one batch of `recipe` as `tuitune train` would.

    UserError for a recipe, model or data problem. Running out of memory is a result, not an
    error: `failed_at_step` says in which step.
    """
    import torch
    from transformers import PrinterCallback, set_seed

    from tuitune.core.engine.arguments import check_before_loading, training_arguments
    from tuitune.core.engine.collate import batching, features
    from tuitune.core.engine.failures import describe
    from tuitune.core.engine.session import prepare_data
    from tuitune.core.engine.trainer import StepCounters, TuituneTrainer
    from tuitune.core.models.loading import pick_device
    from tuitune.core.runs import RunDirectory

    device = device or pick_device()
    result = RecipeMeasurement(device=device)
    result.warnings += check_before_loading(recipe, device)
    start = time.perf_counter()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    meter = _Meter(device)
    set_seed(recipe.train.seed)
    try:
        built = _load(recipe, device)
    except (torch.OutOfMemoryError, MemoryError) as e:
        result.failed_at_step = 0
        result.failure = describe(e).message + " while loading the model"
        result.seconds = time.perf_counter() - start
        return result
    result.warnings += built.notes
    result.trainable_params, result.total_params = built.trainable_params, built.total_params
    meter.count_model(built.model)
    result.after_load_bytes = meter.current()

    prepared = prepare_data(recipe, built.tokenizer, WarningCollector(result.warnings))
    train_rows = [features(x) for x in prepared.train]
    eval_rows = [features(x) for x in (prepared.eval or [])]
    t = recipe.train
    per_step = t.batch_size * t.gradient_accumulation
    train_rows = heaviest_rows(train_rows, STEPS * per_step)
    eval_rows = heaviest_rows(eval_rows or train_rows, t.batch_size)
    collator, packed, eval_rows = batching(recipe, built.model, built.tokenizer.pad_token_id, train_rows, eval_rows, device)
    shapes: list[tuple[int, int, int]] = []

    short = recipe.copy()
    short.train.max_steps = STEPS
    short.train.save_steps = 0
    short.train.eval_steps = 0
    with tempfile.TemporaryDirectory(prefix="tuitune-measure-") as tmp:
        args = training_arguments(short, RunDirectory(tmp), device, has_eval=False, packed=packed)
        args.logging_strategy = "no"
        args.logging_first_step = False
        counters = StepCounters()
        trainer = TuituneTrainer(
            model=built.model,
            args=args,
            train_dataset=train_rows,
            data_collator=_batch_shapes(collator, shapes),
            processing_class=built.tokenizer,
            callbacks=[_step_callback(meter, result)],
            counters=counters,
            warn=result.warnings.append,
        )
        trainer.remove_callback(PrinterCallback)
        meter.take_peak()  # the steps' peaks start from what is loaded now
        n_train_batches = None
        try:
            with meter.tracking():
                trainer.train()
                n_train_batches = len(shapes)
                meter.take_peak()
                trainer.evaluate(eval_dataset=eval_rows)
                result.eval_peak_bytes = meter.take_peak()
        except (torch.OutOfMemoryError, MemoryError) as e:
            step = len(result.step_peaks) + 1
            result.failed_at_step = step
            result.failure = describe(e, step if step <= STEPS else None).message
            if step > STEPS:
                result.failure += " (evaluation batch)"
        if n_train_batches is None:
            n_train_batches = len(shapes)
    result.seconds = time.perf_counter() - start
    trained = shapes[:n_train_batches]
    if trained:
        result.batch_size = max(s[0] for s in trained)
        result.seq_len = max(s[1] for s in trained)
        total = sum(s[0] * s[1] for s in trained)
        result.trained_fraction = sum(s[2] for s in trained) / max(1, total)
    del trainer, built
    if device == "cuda":
        torch.cuda.empty_cache()
    return result
