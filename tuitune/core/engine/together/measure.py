"""`tuitune estimate --measure --together`: the real memory of a group's first steps, as it trains.

The group engine itself (session.GroupSession: one base, one adapter per job, the schedule) trains
copies of the recipes in a temporary runs folder for two optimizer steps per job, on each job's
heaviest rows (as engine.measure does for one run). Bytes are live tensors: on CPU the tracker of
memory.probe, entered in every job's thread; on a GPU `torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tuitune.core.engine.measure import STEPS, WarningCollector, heaviest_rows
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe


@dataclass
class GroupMeasurement:
    device: str
    schedule: str
    after_load_bytes: int = 0  # the base and every adapter
    train_peak_bytes: int = 0
    shapes: list[tuple[int, int, float]] = field(default_factory=list)  # per job: rows, group width, trained share
    seconds: float = 0.0
    failure: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.failure

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "schedule": self.schedule, "fits": self.fits,
            "after_load_bytes": self.after_load_bytes, "train_peak_bytes": self.train_peak_bytes,
            "shapes": [list(s) for s in self.shapes], "seconds": round(self.seconds, 2), "failure": self.failure,
            "warnings": list(self.warnings),
        }


def measure_together(recipes: list[Recipe], device: str | None = None, schedule: str = "fused") -> GroupMeasurement:
    """Train every recipe STEPS optimizer steps together and report the live tensor peak.
    UserError for a recipe, model or data problem; running out of memory is a result (`failure`)."""
    import torch

    from tuitune.core.engine.collate import features
    from tuitune.core.engine.session import prepare_data
    from tuitune.core.engine.together.plan import check_together, prepare_group
    from tuitune.core.engine.together.session import GroupSession
    from tuitune.core.models.loading import pick_device
    from tuitune.core.models.resolution import load_tokenizer, resolve_model

    device = device or pick_device()
    result = GroupMeasurement(device=device, schedule=schedule)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tuitune-measure-together-") as tmp:
        copies = []
        for i, recipe in enumerate(recipes):
            c = recipe.copy()
            c.source = recipe.source
            c.name = f"job{i}-{recipe.name}"[:60]
            c.output.runs_dir = tmp
            c.train.max_steps, c.train.save_steps, c.train.eval_steps = STEPS, 0, 0
            c.train.logging_steps = 1
            copies.append(c)
        plan = check_together(copies, schedule)
        tokenizer = load_tokenizer(resolve_model(copies[0].model_path), trust_remote_code=copies[0].model.trust_remote_code)
        data = []
        for c in copies:
            prepared = prepare_data(c, tokenizer, WarningCollector(result.warnings))
            rows = [features(x) for x in prepared.train]
            data.append(SimpleNamespace(train=heaviest_rows(rows, STEPS * c.train.batch_size * c.train.gradient_accumulation),
                                        eval=[]))
        runs = prepare_group(plan)
        meter = _meter(device)
        seen: dict[int, list[tuple[int, int, int]]] = {}

        def observe(job: Any, batch: dict[str, Any]) -> None:
            labels = batch["labels"]
            seen.setdefault(job.index, []).append((labels.shape[0], labels.shape[1], int((labels[:, 1:] != -100).sum())))

        def loaded(group: Any) -> None:  # the base and adapters are built: count them, then start the peak
            result.after_load_bytes = meter.count_model(group.model)
            meter.restart_peak()

        session = GroupSession(runs, data=data, thread_context=meter.thread_context, batch_observer=observe,
                               on_built=loaded)
        with contextlib.redirect_stdout(io.StringIO()):  # the Trainers' log lines (the CLI prints JSON there)
            code = session.run_to_end()
        result.train_peak_bytes = meter.peak()
        if code != 0:
            result.failure = _failure(runs)
            if "out of" not in result.failure:
                raise UserError(result.failure or "the group failed to train", f"see {runs[0].log_path}")
        width = max((w for shapes in seen.values() for _, w, _ in shapes), default=0)
        for i in range(len(copies)):
            shapes = seen.get(i, [])
            rows = max((r for r, _, _ in shapes), default=0)
            w = width if plan.schedule == "fused" else max((w for _, w, _ in shapes), default=0)
            total = sum(r * w for r, _, _ in shapes)
            result.shapes.append((rows, w, sum(t for _, _, t in shapes) / max(1, total)))
        result.schedule = session.schedule
    result.seconds = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def _failure(runs: list[Any]) -> str:
    for run in runs:
        st = run.read_status()
        if st.get("status") == "failed":
            return f"{run.name}: {st.get('error') or st.get('message')}"
    return ""


class _meter:  # noqa: N801 - a small holder, named as what it measures
    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.tracker: Any = None
        if device == "cpu":
            from tuitune.core.memory.probe import LiveTensorBytes

            self.tracker = LiveTensorBytes()
        else:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def thread_context(self) -> Any:
        import contextlib

        return self.tracker if self.tracker is not None else contextlib.nullcontext()

    def count_model(self, model: Any) -> int:
        if self.tracker is None:
            self.torch.cuda.synchronize()
            return int(self.torch.cuda.memory_allocated())
        from tuitune.core.memory.probe import _quant_state_tensors

        self.tracker.add_existing([*model.parameters(), *model.buffers(), *_quant_state_tensors(model)])
        return int(self.tracker.current)

    def restart_peak(self) -> None:
        if self.tracker is not None:
            self.tracker.peak = self.tracker.current
        else:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int:
        if self.tracker is not None:
            return int(self.tracker.peak)
        self.torch.cuda.synchronize()
        return int(self.torch.cuda.max_memory_allocated())
