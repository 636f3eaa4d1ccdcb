"""One run in a few fields (`RunSummary`, a row of `tuitune runs`), read defensively.

status.json and recipe.toml are files anyone can edit or damage: every field is checked for its type
(a wrong-typed value counts as absent), and a run whose files cannot be read at all is summarized as
`unreadable` with the reason, so one bad run never hides the others.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.runs.events_io import json_safe

if TYPE_CHECKING:
    from tuitune.core.runs.directory import RunDirectory

# Statuses a live trainer passes through; a run left in one of these by a dead trainer crashed.
ACTIVE_STATUSES = ("starting", "loading", "training", "evaluating", "saving", "stopping")
FINAL_STATUSES = ("stopped", "done", "failed")
UNREADABLE = "unreadable"


@dataclass
class RunSummary:
    """One row of `tuitune runs`."""

    name: str
    path: str
    status: str  # as written, crashed / interrupted when the trainer died mid-run, or unreadable
    method: str
    model: str
    step: int
    max_steps: int
    best_eval_loss: float | None
    loss: float | None
    started: float | None
    duration_s: float | None
    pid: int | None
    live: bool
    error: str | None
    group: str | None = None  # the group it trains in (`tuitune train --together`), None alone

    def to_dict(self) -> dict[str, Any]:
        return json_safe(asdict(self))


def whole(value: Any) -> int | None:
    """An int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | None:
    """A finite int or float (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def summarize(run: RunDirectory) -> RunSummary:
    """The run's summary; `unreadable` (with the reason in `error`) when its files cannot be read."""
    try:
        status = run.read_status(strict=True)
        live = run.is_locked()
    except OSError as e:
        return unreadable(run, e)
    recipe_bits = _recipe_bits(run.recipe_path)
    state = text(status.get("status")) or ("prepared" if run.recipe_path.exists() else "unknown")
    if state in ACTIVE_STATUSES and not live:
        state = "interrupted" if state == "stopping" else "crashed"
    started = number(status.get("started"))
    end = time.time() if live else number(status.get("finished")) or number(status.get("updated"))
    duration = (end - started) if started is not None and end is not None else None
    return RunSummary(
        name=run.name,
        path=str(run.path),
        status=state,
        method=text(status.get("method")) or recipe_bits.get("method", ""),
        model=text(status.get("model")) or recipe_bits.get("model", ""),
        step=whole(status.get("step")) or 0,
        max_steps=whole(status.get("max_steps")) or 0,
        best_eval_loss=number(status.get("best_eval_loss")),
        loss=number(status.get("loss")),
        started=started,
        duration_s=duration,
        pid=whole(status.get("pid")),
        live=live,
        error=text(status.get("error")),
        group=_group_name(status),
    )


def _group_name(status: dict[str, Any]) -> str | None:
    group = status.get("group")
    return text(group.get("name")) or None if isinstance(group, dict) else None


def unreadable(run: RunDirectory, e: OSError) -> RunSummary:
    from tuitune.core.runs.disk import os_error_text

    where = Path(e.filename).name if getattr(e, "filename", None) else run.name
    return RunSummary(
        name=run.name, path=str(run.path), status=UNREADABLE, method="", model="", step=0, max_steps=0,
        best_eval_loss=None, loss=None, started=None, duration_s=None, pid=None, live=False,
        error=f"{where}: {os_error_text(e)}",
    )


def _recipe_bits(path: Path) -> dict[str, str]:
    """method and model from a frozen recipe, without validating it (listing must never fail)."""
    import tomllib

    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    method = raw.get("method", {}).get("type", "") if isinstance(raw.get("method"), dict) else ""
    model = raw.get("model", {}).get("name_or_path", "") if isinstance(raw.get("model"), dict) else ""
    return {"method": str(method), "model": str(model)}
