"""The group trainer process: own every run, load the base once, train each run in its own thread.

Each run is trained by a `JobSession`, the engine's own `TrainingSession` (status, events,
checkpoints, the result, every failure reported in its folder) with three things replaced: the
model (the group's shared base with the run's adapter), the Trainer (`JobTrainer`) and one extra
callback (the turn). Threads take turns (turns.py), so the jobs never run at the same time.
Exit code: the worst of the jobs' (0 done or stopped, 1 failed, 2 a recipe or data problem).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any

from tuitune.core.engine.session import StopSignals, TrainingSession
from tuitune.core.engine.together.model import (
    GroupModel,
    JobState,
    adapter_name,
    capture_gradient_state,
    capture_rng,
    put_aside,
    put_back,
    restore_gradient_state,
    restore_rng,
)
from tuitune.core.engine.together.plan import check_together, group_of
from tuitune.core.engine.together.turns import Turns
from tuitune.core.errors import UserError
from tuitune.core.runs import RunDirectory

LOCK_FDS_ENV = "TUITUNE_LOCK_FDS"  # lock fds inherited from `tuitune train --together`, in the runs' order


class _JobSignals:
    """A job's view of the process's StopSignals: the same event; only the main thread installs handlers."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def install(self) -> None:
        pass

    def restore(self) -> None:
        pass


class JobSession(TrainingSession):
    """One run of the group, trained by the engine's session on the group's model."""

    # No sampled answers: generating from this job's thread would run the shared model (train/eval
    # mode, active adapter) while the other jobs train on it.
    SAMPLES = False

    def __init__(self, run: RunDirectory, group: GroupSession, index: int, resume: bool, data: Any = None) -> None:
        super().__init__(run, resume=resume, data=data)
        self.group = group
        self.index = index
        self.adapter = adapter_name(index)
        self.state = JobState()
        self.signals = _JobSignals(group.signals.event)  # type: ignore[assignment]
        self.exit_code: int | None = None

    def _stopping(self) -> bool:
        return self.signals.event.is_set() or self.group.stop_requested()

    def _build_model(self, recipe: Any, device: str) -> Any:
        return self.group.built_for(self, device)

    def _make_trainer(self, **kwargs: Any) -> Any:
        from tuitune.core.engine.together.trainer import JobTrainer

        return JobTrainer(job=self, **kwargs)

    def _extra_callbacks(self) -> list[Any]:
        from tuitune.core.engine.together.trainer import TurnCallback

        return [TurnCallback(self)]


class GroupSession:
    """The runs of one group in one process.

    data: per job, rows already prepared (estimate --measure passes the heaviest); thread_context: a
    context manager each job's thread runs in (the CPU memory tracker); batch_observer(job, batch):
    called with every training batch; on_built(group_model): once the base and adapters are built.
    """

    def __init__(
        self,
        runs: list[RunDirectory],
        resume: bool = False,
        lock_fds: list[str] | None = None,
        *,
        data: list[Any] | None = None,
        thread_context: Any = None,
        batch_observer: Any = None,
        on_built: Any = None,
    ) -> None:
        self.runs = runs
        self.signals = StopSignals()
        self.jobs = [JobSession(run, self, i, resume, (data or [None] * len(runs))[i]) for i, run in enumerate(runs)]
        self.thread_context = thread_context or contextlib.nullcontext
        self.batch_observer = batch_observer
        self.on_built = on_built
        self.lock_fds = lock_fds or [None] * len(runs)
        group = group_of(runs[0]) or {}
        self.name = group.get("name") or "+".join(r.name for r in runs)
        self.schedule = group.get("schedule") or "fused"
        self.turns = Turns(self.jobs, switch=self._switch, fuse=self._fuse)
        self.model: GroupModel | None = None
        self.routing: Any = None
        self.head: Any = None  # fused: the engine's HeadLoss for the shared model (fused.fused_head)
        self._build_error: BaseException | None = None
        self._stop_checked = 0.0
        self._stop_seen = False

    # ---- the process

    def run_to_end(self) -> int:
        owned: list[JobSession] = []
        for job, fd in zip(self.jobs, self.lock_fds, strict=True):
            try:
                job._own_run(fd)
                owned.append(job)
            except UserError as e:  # another trainer holds this run: leave every run as it was
                print(f"error: {e}", file=sys.stderr)
                for other in [*owned, job]:
                    other.reporter.enabled = False
                    if other.lock is not None:
                        other.lock.release()
                return 2
        threads = [threading.Thread(target=self._job_thread, args=(job,), name=job.adapter, daemon=True)
                   for job in self.jobs]
        try:
            self.signals.install()
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short waits: the main thread must stay free to take signals
        except KeyboardInterrupt:  # a second signal: stop at once, as a run alone does
            for job in self.jobs:
                if job.exit_code is None:
                    job.reporter.status("stopped", "stopped at once by a second signal: steps since the last "
                                        "checkpoint are lost")
            return 130
        finally:
            self.signals.restore()
        return max(job.exit_code if job.exit_code is not None else 1 for job in self.jobs)

    def _job_thread(self, job: JobSession) -> None:
        with self.thread_context():
            self.turns.begin(job)
            try:
                job.exit_code = job.train_owned()
            finally:
                self.turns.leave(job)

    def stop_requested(self) -> bool:
        """Whether someone asked any run of the group to stop (its stop file; checked twice a second)."""
        now = time.monotonic()
        if not self._stop_seen and now - self._stop_checked > 0.5:
            self._stop_checked = now
            self._stop_seen = any(r.stop_requested() for r in self.runs)
        return self._stop_seen

    # ---- the shared model, built by the first job that needs it

    def built_for(self, job: JobSession, device: str) -> Any:
        if self.model is None and self._build_error is None:
            try:
                self._build(device)
            except BaseException as e:  # noqa: BLE001 - every job fails with the same reason
                self._build_error = e
        if self._build_error is not None:
            raise self._build_error
        assert self.model is not None
        return self.model.built[job.index]

    def _build(self, device: str) -> None:
        from tuitune.core.engine.together.fused import fused_head
        from tuitune.core.engine.together.model import build_group
        from tuitune.core.engine.together.routing import install_routing

        recipes = [job.run.load_recipe() for job in self.jobs]
        check_together(recipes, self.schedule)
        device_map: Any = None
        if device == "cuda" and recipes[0].method.type == "qlora":
            import torch

            device_map = {"": torch.cuda.current_device()}
        self.model = build_group(recipes, device, device_map)
        if self.on_built is not None:
            self.on_built(self.model)
        if self.schedule == "fused":
            self.head = fused_head(self.model.model)
            self.routing = install_routing(self.model.model) if self.head is not None else None
            if self.routing is None:
                why = (f"{self.model.model.config.model_type} models" if self.head is None
                       else "adapters on embedding layers")
                self.schedule = "round-robin"
                for j in self.jobs:
                    j.reporter.warning(f"group {self.name}: {why} cannot share a fused forward; "
                                       "the jobs take turns (round-robin)")
                    j.run.update_status(group={**(group_of(j.run) or {}), "schedule": self.schedule})

    # ---- turns

    def _switch(self, old: JobSession | None, new: JobSession | None) -> None:
        """Put the old job's RNG and gradients aside; bring the new job's back and activate its adapter."""
        if old is not None:
            old.state.rng = capture_rng()
            old.state.gradient_state = capture_gradient_state()
            if self.model is not None:
                put_aside(self.model.params[old.adapter], old.state)
        if new is not None:
            if new.state.rng is not None:
                restore_rng(new.state.rng)
            if new.state.gradient_state is not None:
                restore_gradient_state(new.state.gradient_state)
            if self.model is not None:
                put_back(self.model.params[new.adapter], new.state)
                self.model.activate(new.adapter)

    def submit(self, job: JobSession, trainer: Any, inputs: dict[str, Any], num_items_in_batch: Any) -> Any:
        """A job's micro-batch for the next fused step; returns its loss once the step ran."""
        from tuitune.core.engine.together.fused import Submission

        pad = trainer.processing_class.pad_token_id
        return self.turns.park(job, Submission(trainer, inputs, num_items_in_batch, pad if pad is not None else 0))

    def _fuse(self, batch: list[tuple[JobSession, Any]]) -> dict[JobSession, Any]:
        from tuitune.core.engine.together.fused import fused_step

        assert self.model is not None
        return fused_step(self.model, self.routing, self.head, batch)


def train_group(run_dirs: list[str], resume: bool = False, lock_fds: list[str] | None = None) -> int:
    """Train the runs of a group (folders prepared by plan.prepare_group) in this process."""
    return GroupSession([RunDirectory(p) for p in run_dirs], resume=resume, lock_fds=lock_fds).run_to_end()
