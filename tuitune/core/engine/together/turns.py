"""One job of a group runs at a time: who has the turn, and when it passes.

Each job trains in a thread of its own, inside the same transformers Trainer loop a run alone
uses; the threads take turns, so the shared model, the global RNG and the gradients are only ever
touched by the job whose turn it is (`switch(old, new)` moves them from one job to the next).
Why threads and not one hand-written loop: every job then runs the Trainer's own loop (data
order, gradient accumulation, clipping, scheduler, checkpoints, resume), so a job trained in a
group computes what it computes alone.

- round-robin: a job passes the turn after each optimizer step (`pass_turn`).
- fused: a job hands in its next micro-batch (`park`); once every live job has, the thread of the
  last one runs `fuse` over all the batches at once and each job gets its own result back.

Standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

Switch = Callable[[Any, Any], None]  # (job whose turn ends or None, job whose turn begins or None)
Fuse = Callable[[list[tuple[Any, Any]]], dict[Any, Any]]  # [(job, payload)] -> {job: result}


class Turns:
    """The turn among `jobs` (in their order). Every method is called from the jobs' own threads."""

    def __init__(self, jobs: list[Hashable], switch: Switch | None = None, fuse: Fuse | None = None) -> None:
        self.live: list[Any] = list(jobs)
        self.current: Any = None
        self._order = {job: i for i, job in enumerate(jobs)}
        self._switch = switch or (lambda old, new: None)
        self._fuse = fuse
        self._parked: dict[Any, Any] = {}
        self._results: dict[Any, tuple[Any, BaseException | None]] = {}
        self._cond = threading.Condition()
        self.fused_steps = 0

    # ---- the life of a job's thread

    def begin(self, job: Any) -> None:
        """Wait for `job`'s first turn (the first job gets it at once)."""
        with self._cond:
            if self.current is None and job is self.live[0]:
                self._give(None, job)
            self._wait(job)

    def leave(self, job: Any) -> None:
        """`job` is finished (done, stopped or failed): the others go on without it."""
        with self._cond:
            if job in self.live:
                self.live.remove(job)
            self._parked.pop(job, None)
            if self.current is not job:
                return
            nxt = self._next_runnable(job)
            if nxt is not None:
                self._give(job, nxt)
            elif self._parked:
                self._give(job, None)
                self._run_fused()
            else:
                self._give(job, None)

    # ---- round-robin

    def pass_turn(self, job: Any) -> None:
        """After `job`'s optimizer step: the next job trains one step; returns at `job`'s next turn."""
        with self._cond:
            nxt = self._next_runnable(job)
            if nxt is not None and nxt is not job:
                self._give(job, nxt)
                self._wait(job)

    # ---- fused

    def park(self, job: Any, payload: Any) -> Any:
        """Hand in `job`'s batch; returns `fuse`'s result for it (or raises its error) at `job`'s next turn."""
        with self._cond:
            self._parked[job] = payload
            nxt = self._next_runnable(job)
            if nxt is not None:
                self._give(job, nxt)
            else:  # every live job has handed in its batch: this thread runs them all
                self._give(job, None)
                self._run_fused()
            self._wait(job)
            value, error = self._results.pop(job)
        if error is not None:
            raise error
        return value

    # ---- inside (the condition is held)

    def _wait(self, job: Any) -> None:
        while self.current is not job:
            self._cond.wait()

    def _give(self, old: Any, new: Any) -> None:
        self._switch(old, new)
        self.current = new
        self._cond.notify_all()

    def _next_runnable(self, job: Any) -> Any:
        """The next live job after `job` (cyclic, `job` itself last) that has not parked a batch."""
        start = self._order.get(job, -1)
        ranked = sorted(self.live, key=lambda j: (self._order[j] <= start, self._order[j]))
        return next((j for j in ranked if j not in self._parked), None)

    def _run_fused(self) -> None:
        batch = [(j, self._parked[j]) for j in sorted(self._parked, key=self._order.__getitem__)]
        self._parked.clear()
        assert self._fuse is not None, "park() needs a fuse function"
        try:
            out = self._fuse(batch)
            results = {j: (out[j], None) for j, _ in batch}
        except BaseException as e:  # noqa: BLE001 - every job whose batch was in it fails with it
            results = {j: (None, e) for j, _ in batch}
        self._results.update(results)
        self.fused_steps += 1
        self._give(None, batch[0][0])
