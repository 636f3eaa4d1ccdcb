"""A run's events folded into what a live view shows: loss curves, the latest step, status, errors.

Fed in batches as a reader tails events.jsonl (`add(events)`); replaying the whole file gives the
same state as having watched the run live. Standard library only: the TUI builds it on its event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

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
    start: dict[str, Any] | None = None  # the latest start event
    last_step: dict[str, Any] | None = None
    status: str = ""
    message: str = ""
    error: dict[str, Any] | None = None  # kind, message, hint
    done: dict[str, Any] | None = None
    best_eval_loss: float | None = None
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_TAIL))
    events_seen: int = 0

    def add(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fold events in; returns those worth telling the user about (done, error)."""
        notable = []
        for e in events:
            self.events_seen += 1
            self.recent.append(e)
            kind = e.get("type")
            if kind == "step":
                step = e.get("step")
                self.last_step = e
                self.train_loss.add(step, e.get("loss"))
                self.lr.add(step, e.get("lr"))
                self.grad_norm.add(step, e.get("grad_norm"))
            elif kind == "eval":
                self.eval_loss.add(e.get("step"), e.get("eval_loss"))
                loss = e.get("eval_loss")
                if _finite(loss) and (self.best_eval_loss is None or loss < self.best_eval_loss):
                    self.best_eval_loss = float(loss)
            elif kind == "status":
                self.status = str(e.get("status") or "")
                self.message = str(e.get("message") or "")
            elif kind == "start":
                self.start = e
                resumed = e.get("resumed_from")
                if isinstance(resumed, int):
                    for series in (self.train_loss, self.eval_loss, self.lr, self.grad_norm):
                        series.cut_after(resumed)
                self.error = self.done = None
            elif kind == "error":
                self.error = e
                notable.append(e)
            elif kind == "done":
                self.done = e
                if _finite(e.get("best_eval_loss")):
                    self.best_eval_loss = float(e["best_eval_loss"])
                notable.append(e)
        return notable

    @property
    def step(self) -> int:
        return int((self.last_step or {}).get("step") or 0)

    @property
    def max_steps(self) -> int:
        for source in (self.last_step, self.start):
            if source and isinstance(source.get("max_steps"), int):
                return source["max_steps"]
        return 0
