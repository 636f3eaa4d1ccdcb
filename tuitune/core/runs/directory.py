"""The run directory: the only contract between a trainer process and whoever watches it.

```
runs/NAME/recipe.toml   frozen recipe        events.jsonl  append-only events
          status.json   current state        train.log     the trainer's stdout/stderr
          checkpoints/  resumable states     adapter/ or model/   the result
          eval/         evaluation reports   lock          held (fcntl.flock) while a trainer owns the run
          stop          present when someone asked the trainer to stop
          .tuitune-run  the marker: tuitune created this folder (ownership.py)
```
`RunDirectory` is the one model of a run folder: paths, status, events, the lock, checkpoints, the
frozen recipe and the trained result. Standard library only (plus psutil for liveness checks): the
TUI imports this at start-up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError
from tuitune.core.runs.events_io import EventWriter, read_events, write_json_atomic
from tuitune.core.runs.lock import LockBusy, RunLock, holder_pid, lock_held, take_lock, verified_holder
from tuitune.core.runs.summary import ACTIVE_STATUSES, FINAL_STATUSES, RunSummary, summarize

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe

__all__ = ["ACTIVE_STATUSES", "FINAL_STATUSES", "RunDirectory", "RunSummary", "open_finished_run", "read_run"]

RECIPE_FILE = "recipe.toml"
STATUS_FILE = "status.json"
MARKER_FILE = ".tuitune-run"  # written first into every folder tuitune creates for a run


class RunDirectory:
    """Paths and state of one run. Cheap to create; touches the disk only when asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    recipe_path = property(lambda self: self.path / RECIPE_FILE)
    events_path = property(lambda self: self.path / "events.jsonl")
    status_path = property(lambda self: self.path / STATUS_FILE)
    log_path = property(lambda self: self.path / "train.log")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter_dir = property(lambda self: self.path / "adapter")
    model_dir = property(lambda self: self.path / "model")
    eval_dir = property(lambda self: self.path / "eval")
    lock_path = property(lambda self: self.path / "lock")
    stop_path = property(lambda self: self.path / "stop")
    marker_path = property(lambda self: self.path / MARKER_FILE)

    # ---- existence and recipe

    def is_run(self) -> bool:
        """Whether a run was written here: the frozen recipe or a status (runs made before the marker
        existed have no marker). Which folders may be written into or deleted is ownership.py's."""
        return self.path.is_dir() and (self.recipe_path.is_file() or self.status_path.is_file())

    def is_marked(self) -> bool:
        """Whether tuitune created this folder (it holds the marker)."""
        return self.marker_path.is_file()

    def reference(self) -> str:
        """How a command line names this run: NAME when it lies in ./runs, else its path (never a
        word starting with '-', which a command would read as an option)."""
        with contextlib.suppress(OSError):
            if self.path.resolve().parent == Path("runs").resolve() and not self.name.startswith("-"):
                return self.name
        path = str(self.path)
        return path if not path.startswith("-") else f"./{path}"

    def has_history(self) -> bool:
        """Whether a trainer ever wrote here (status or events), as opposed to a freshly prepared folder."""
        return self.events_path.exists() and self.events_path.stat().st_size > 0

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def load_recipe(self) -> Recipe:
        """Read the frozen recipe. Raises UserError naming the file and its problems."""
        from tuitune.core.recipe import load_recipe

        if not self.path.is_dir():
            raise UserError(f"run folder {self.path} does not exist", "give a run folder or a run name from the runs folder")
        if not self.recipe_path.is_file():
            raise UserError(f"{self.path} is not a run folder: it has no {RECIPE_FILE}", "runs are written by `tuitune train`")
        recipe, problems = load_recipe(self.recipe_path)
        if problems:
            shown = "; ".join(p.format() for p in problems[:3])
            raise UserError(f"{self.recipe_path}: {shown}", "fix the recipe copy, or train the run again")
        return recipe

    @cached_property
    def recipe(self) -> Recipe:
        """The frozen recipe, read once (load_recipe's errors)."""
        return self.load_recipe()

    @property
    def method(self) -> str:
        return self.recipe.method.type

    @property
    def is_peft(self) -> bool:
        return self.recipe.is_peft

    # ---- status.json

    def read_status(self, strict: bool = False) -> dict[str, Any]:
        """status.json as a dict ({} when missing or garbled). Values are as written: check their types.

        strict: an unreadable file (permissions, a folder in its place) raises its OSError instead.
        """
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        except OSError:
            if strict:
                raise
            return {}

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into status.json (atomic rewrite) and stamp `updated`. Raises OSError when it
        cannot be written (the temp file is removed); the trainer's Reporter retries later."""
        data = self.read_status()
        data.update(fields)
        data["updated"] = time.time()
        write_json_atomic(self.status_path, data)
        return data

    def status_line(self) -> str:
        """What status.json says about the run, in a few words ("" when there is none)."""
        status = self.read_status()
        if not status:
            return ""
        text = f"status: {status.get('status', '?')}"
        if status.get("step") is not None and status.get("max_steps"):
            text += f", step {status['step']}/{status['max_steps']}"
        return text

    # ---- events

    def event_writer(self, on_reopen: Callable[[str], None] | None = None) -> EventWriter:
        self.create()
        return EventWriter(self.events_path, on_reopen)

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        return read_events(self.events_path, offset)

    def events(self) -> list[dict[str, Any]]:
        return self.read_events(0)[0]

    def follow(
        self, offset: int = 0, poll_s: float = 0.3, until_finished: bool = True, idle_timeout_s: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield events from `offset` on as they are written (replaying history first).

        With `until_finished`, stops after a final status once the trainer no longer holds the run,
        or when the trainer died without saying so (a crash): the caller then reads `summary()`.
        """
        idle_since = time.monotonic()
        while True:
            events, offset = self.read_events(offset)
            yield from events
            if events:
                idle_since = time.monotonic()
            if until_finished and not events and not self.is_locked():
                # No trainer holds the run (finished, crashed or never started): drain, then stop.
                events, offset = self.read_events(offset)
                yield from events
                return
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            time.sleep(poll_s)

    # ---- checkpoints and results

    def checkpoints(self) -> list[Path]:
        """checkpoint-STEP folders that finished saving (they contain trainer_state.json), oldest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for p in self.checkpoints_dir.glob("checkpoint-*"):
            suffix = p.name.rsplit("-", 1)[-1]
            if suffix.isdigit() and (p / "trainer_state.json").is_file():
                found.append((int(suffix), p))
        return [p for _, p in sorted(found)]

    def last_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1] if found else None

    def result_path(self) -> Path | None:
        """The trained weights to use: adapter/ or model/ when the run finished, else the last checkpoint."""
        for p in (self.adapter_dir, self.model_dir):
            if p.is_dir() and any(p.iterdir()):
                return p
        return self.last_checkpoint()

    @property
    def result_dir(self) -> Path:
        """Where the method's final result goes: adapter/ for PEFT methods, model/ for full and freeze."""
        return self.adapter_dir if self.is_peft else self.model_dir

    def has_result(self) -> bool:
        """Whether the final result is complete (it appears at once, renamed into place)."""
        marker = "adapter_config.json" if self.is_peft else "config.json"
        return (self.result_dir / marker).is_file()

    def require_result(self) -> RunDirectory:
        """This run, or a UserError saying training has not finished (with what status.json says)."""
        if not self.has_result():
            status = self.status_line()
            raise UserError(
                f"run '{self.name}' has no {self.result_dir.name}/ yet: training has not finished" + (f" ({status})" if status else ""),
                self.next_step_hint(),
            )
        return self

    def next_step_hint(self) -> str:
        """What to run to get this run's result, by the state it is in (each command works as written)."""
        ref = self.reference()
        if self.is_locked():
            return f"wait for it to finish: tuitune runs watch {ref}"
        state = self.summary().status
        never_began = not (self.has_history() or self.checkpoints())
        if (state == "prepared" or never_began) and self.is_marked():  # `--run-dir` trains only marked folders
            return f"train it: tuitune train --run-dir {ref}"
        if state == "done":  # finished, but its result is gone
            return f"train its recipe as a new run: tuitune train {self.recipe_path} --set name=NEW_NAME"
        where = "its last checkpoint" if self.checkpoints() else "the start (it has no checkpoint)"
        return f"continue it from {where}: tuitune train --resume {ref}"

    # ---- the lock

    def is_locked(self) -> bool:
        """Whether a trainer holds the run now."""
        return lock_held(self.lock_path)

    def holder_pid(self) -> int | None:
        return holder_pid(self.lock_path)

    def lock_holder(self) -> int | None:
        """The pid that holds the lock, checked against the process's open files (lock.verified_holder)."""
        return verified_holder(self.lock_path) if self.is_locked() else None

    def acquire_lock(self, pid: int | None = None, wait_s: float = 1.0) -> RunLock:
        """Take the run for this process (or hand it to `pid` later). Raises UserError naming the holder."""
        from tuitune.core.runs.disk import writing

        try:
            with writing(self.lock_path, "taking the run's lock"):
                self.create()
                fd = take_lock(self.lock_path, wait_s)
        except LockBusy:
            holder = self.holder_pid()
            who = f"pid {holder}" if holder else "another process"
            raise UserError(
                f"run {self.path} is in use by a trainer ({who})",
                f"watch it with `tuitune runs watch {self.name}`, stop it with `tuitune stop {self.name}`, "
                "or pick another name with --set name=...",
            ) from None
        lock = RunLock(self, fd)
        lock.set_holder(pid or os.getpid())
        return lock

    def adopt_lock(self, fd: int) -> RunLock:
        """Use a lock inherited from the parent that spawned this trainer (flock locks follow the open file)."""
        lock = RunLock(self, fd)
        lock.set_holder(os.getpid())
        return lock

    # ---- stop

    def request_stop(self) -> bool:
        """Ask the trainer to finish its step, checkpoint and stop. Returns False when no trainer runs.

        Writes the stop file (every rank checks it) and sends SIGTERM to the process holding the lock,
        or to the rank-0 trainer status.json names when that is the lock holder's own child (several
        ranks under accelerate's launcher). A pid in status.json that is neither is never signalled.
        """
        if not self.is_locked():
            return False
        with contextlib.suppress(OSError):  # an unwritable folder: the signal alone still stops it
            self.stop_path.write_text(str(time.time()))
        pid = self.stop_target()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        return True

    def stop_target(self) -> int | None:
        """The process `request_stop` signals: the lock holder, or its descendant named in status.json."""
        holder = self.lock_holder()
        if holder is None:
            return None
        named = self.read_status().get("pid")
        if isinstance(named, int) and not isinstance(named, bool) and named != holder and _descends_from(named, holder):
            return named
        return holder

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    # ---- summary

    def summary(self) -> RunSummary:
        """status.json (type-checked) and the lock in a few fields; `unreadable` when they cannot be read."""
        return summarize(self)


def read_run(path: str | Path) -> RunDirectory:
    """A run folder with its frozen recipe read and checked (UserError naming the file otherwise)."""
    run = RunDirectory(Path(path).resolve())
    run.recipe  # noqa: B018 - read now, so a broken recipe fails here with its file name
    return run


def open_finished_run(path: str | Path) -> RunDirectory:
    """Like read_run, but also require the trained result (adapter/ or model/), and refuse a recipe
    with trust_remote_code unless allowed (remote_code.py): everything that loads a run opens it here."""
    from tuitune.core.runs.remote_code import check_remote_code

    run = read_run(path).require_result()
    check_remote_code(run)
    return run


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether `pid` is a child, grandchild... of `ancestor` (a rank under the launcher holding the lock)."""
    try:
        import psutil

        return any(p.pid == ancestor for p in psutil.Process(pid).parents())
    except Exception:  # noqa: BLE001 - gone, or not ours to inspect
        return False
