"""A run's events folded into what a live view shows: loss curves, the latest step, status, errors.

Fed in batches as a reader tails events.jsonl (`add(events)`); replaying the whole file gives the
same state as having watched the run live. Standard library only: the TUI builds it on its event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tuitune.core.events import (
    DoneEvent,
    DownloadEvent,
    ErrorEvent,
    EstimateEvent,
    EvalEvent,
    Event,
    SampleEvent,
    StartEvent,
    StatusEvent,
    StepEvent,
    parse_event,
)

LOG_TAIL = 200  # events kept for the log view; the chart keeps every step


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")


@dataclass
class Series:
    """(step, value) pairs in step order."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: Any, value: Any) -> None:
        if isinstance(step, int) and _finite(value):
            self.steps.append(step)
            self.values.append(float(value))

    def cut_after(self, step: int) -> None:
        """Forget points past `step` (a resumed run repeats the steps after its checkpoint)."""
        keep = len(self.steps)
        while keep and self.steps[keep - 1] > step:
            keep -= 1
        del self.steps[keep:], self.values[keep:]

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class RunHistory:
    train_loss: Series = field(default_factory=Series)
    eval_loss: Series = field(default_factory=Series)
    lr: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    start: StartEvent | None = None  # the latest start event
    last_step: StepEvent | None = None
    status: str = ""
    message: str = ""
    error: ErrorEvent | None = None
    done: DoneEvent | None = None
    best_eval_loss: float | None = None
    download: DownloadEvent | None = None  # the latest `download` event (the model arriving)
    estimate: EstimateEvent | None = None  # the memory estimate made once the model's config arrived
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    events_seen: int = 0
    # The latest `sample` event (step, prompt, answer) per prompt, prompts in the order first seen.
    samples: dict[str, SampleEvent] = field(default_factory=dict)

    def add(self, events: list[dict[str, Any]]) -> list[Event]:
        """Fold events (parsed JSON lines) in; returns those worth telling the user about (done, error).

        Events of types this reader does not know are counted and otherwise left alone.
        """
        notable: list[Event] = []
        for raw in events:
            self.events_seen += 1
            e = parse_event(raw)
            if e is None:
                continue
            self.recent.append(e)
            if isinstance(e, StepEvent):
                self.last_step = e
                self.train_loss.add(e.step, e.loss)
                self.lr.add(e.step, e.lr)
                self.grad_norm.add(e.step, e.grad_norm)
            elif isinstance(e, EvalEvent):
                self.eval_loss.add(e.step, e.eval_loss)
                if _finite(e.eval_loss) and (self.best_eval_loss is None or e.eval_loss < self.best_eval_loss):
                    self.best_eval_loss = float(e.eval_loss)
            elif isinstance(e, SampleEvent) and isinstance(e.step, int):
                self.samples[str(e.prompt or "")] = e
            elif isinstance(e, StatusEvent):
                self.status = str(e.status or "")
                self.message = str(e.message or "")
            elif isinstance(e, StartEvent):
                self.start = e
                if isinstance(e.resumed_from, int):
                    for series in (self.train_loss, self.eval_loss, self.lr, self.grad_norm):
                        series.cut_after(e.resumed_from)
                    self.samples = {p: s for p, s in self.samples.items() if s.step <= e.resumed_from}
                self.error = self.done = None
            elif isinstance(e, DownloadEvent):
                self.download = e
            elif isinstance(e, EstimateEvent):
                self.estimate = e
            elif isinstance(e, ErrorEvent):
                self.error = e
                notable.append(e)
            elif isinstance(e, DoneEvent):
                self.done = e
                if _finite(e.best_eval_loss):
                    self.best_eval_loss = float(e.best_eval_loss)
                notable.append(e)
        return notable

    def mean_train_loss(self) -> float | None:
        """The average training loss over the steps shown: each logged loss weighs the steps since the
        previous one (a log covers them all). None without any."""
        total = covered = 0.0
        previous = 0
        for step, value in zip(self.train_loss.steps, self.train_loss.values, strict=True):
            if step > previous:
                total += value * (step - previous)
                covered += step - previous
            previous = step
        return total / covered if covered else None

    @property
    def step(self) -> int:
        return int(self.last_step.step or 0) if self.last_step else 0

    @property
    def downloading(self) -> bool:
        """The model is being downloaded: a download reported, unfinished, and no step yet."""
        return self.download is not None and not self.download.finished and self.last_step is None

    @property
    def max_steps(self) -> int:
        for source in (self.last_step, self.start):
            if source and isinstance(source.max_steps, int):
                return source.max_steps
        return 0
