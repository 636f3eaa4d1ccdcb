"""The run directory: the only contract between a trainer process and whoever watches it.

```
runs/NAME/recipe.toml   frozen recipe        events.jsonl  append-only events
          status.json   current state        train.log     the trainer's stdout/stderr
          checkpoints/  resumable states     adapter/ or model/   the result
          lock          held (fcntl.flock) while a trainer owns the run
          stop          present when someone asked the trainer to stop
```
Standard library only (plus psutil for memory-free liveness checks): the TUI imports this at start-up.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

# Statuses a live trainer passes through; a run left in one of these by a dead trainer crashed.
ACTIVE_STATUSES = ("starting", "loading", "training", "evaluating", "saving", "stopping")
FINAL_STATUSES = ("stopped", "done", "failed")
EVENT_TYPES = ("start", "status", "step", "eval", "checkpoint", "log", "warning", "done", "error")


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become null (strict JSON readers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temp file in the same folder and rename it over the target: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_clean(data), f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# --------------------------------------------------------------------------- events


class EventWriter:
    """Appends one JSON object per line. Each line goes out in a single write() on an O_APPEND file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"time": time.time(), "type": type, **fields}
        line = (json.dumps(_clean(event), ensure_ascii=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        return event

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete events from byte `offset` on, and the offset to continue from.

    A last line without its newline is still being written: it is left for the next call.
    A line that is not valid JSON (a disk hiccup) is skipped rather than stopping the reader.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events: list[dict[str, Any]] = []
    for raw in data[: end + 1].splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events, offset + end + 1


# --------------------------------------------------------------------------- summary


@dataclass
class RunSummary:
    """One row of `tuitune runs`."""

    name: str
    path: str
    status: str  # as written, or crashed / interrupted when the trainer died mid-run
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

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


# --------------------------------------------------------------------------- the run directory


class RunDirectory:
    """Paths and state of one run. Cheap to create; touches the disk only when asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    recipe_path = property(lambda self: self.path / "recipe.toml")
    events_path = property(lambda self: self.path / "events.jsonl")
    status_path = property(lambda self: self.path / "status.json")
    log_path = property(lambda self: self.path / "train.log")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    adapter_dir = property(lambda self: self.path / "adapter")
    model_dir = property(lambda self: self.path / "model")
    eval_dir = property(lambda self: self.path / "eval")
    lock_path = property(lambda self: self.path / "lock")
    stop_path = property(lambda self: self.path / "stop")

    # ---- existence and recipe

    def has_history(self) -> bool:
        """Whether a trainer ever wrote here (status or events), as opposed to a freshly prepared folder."""
        return self.events_path.exists() and self.events_path.stat().st_size > 0

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def load_recipe(self):
        """The frozen recipe. Raises UserError naming the file and the problems."""
        from tuitune.core.recipe import load_recipe

        if not self.recipe_path.exists():
            raise UserError(f"{self.path} has no recipe.toml: not a tuitune run", "give a run name from `tuitune runs`")
        recipe, problems = load_recipe(self.recipe_path)
        if problems:
            raise UserError("; ".join(p.format(str(self.recipe_path)) for p in problems[:5]))
        return recipe

    # ---- status.json

    def read_status(self) -> dict[str, Any]:
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into status.json (atomic rewrite) and stamp `updated`."""
        data = self.read_status()
        data.update(fields)
        data["updated"] = time.time()
        _write_json_atomic(self.status_path, data)
        return data

    # ---- events

    def event_writer(self) -> EventWriter:
        self.create()
        return EventWriter(self.events_path)

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

    # ---- the lock

    def is_locked(self) -> bool:
        """Whether a trainer holds the run now. Probes with a shared lock, released at once."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def holder_pid(self) -> int | None:
        try:
            text = self.lock_path.read_text().strip()
            return int(text) if text else None
        except (FileNotFoundError, ValueError):
            return None

    def acquire_lock(self, pid: int | None = None, wait_s: float = 1.0) -> RunLock:
        """Take the run for this process (or hand it to `pid` later). Raises UserError naming the holder."""
        self.create()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                # A reader's probe holds a shared lock for microseconds: retry briefly before giving up.
                if time.monotonic() > deadline:
                    os.close(fd)
                    holder = self.holder_pid()
                    who = f"pid {holder}" if holder else "another process"
                    raise UserError(
                        f"run {self.path} is in use by a trainer ({who})",
                        f"watch it with `tuitune runs watch {self.name}`, stop it with `tuitune stop {self.name}`, "
                        "or pick another name with --set name=...",
                    ) from None
                time.sleep(0.05)
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
        """Ask the trainer to finish its step, checkpoint and stop. Returns False when no trainer runs."""
        if not self.is_locked():
            return False
        self.stop_path.write_text(str(time.time()))
        pid = self.read_status().get("pid")
        if isinstance(pid, int) and pid > 0 and _is_trainer(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        return True

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    # ---- summary

    def summary(self) -> RunSummary:
        status = self.read_status()
        recipe_bits = _recipe_bits(self.recipe_path)
        live = self.is_locked()
        state = status.get("status") or ("prepared" if self.recipe_path.exists() else "unknown")
        if state in ACTIVE_STATUSES and not live:
            state = "interrupted" if state == "stopping" else "crashed"
        started = status.get("started")
        end = time.time() if live else status.get("finished") or status.get("updated")
        duration = (end - started) if isinstance(started, (int, float)) and isinstance(end, (int, float)) else None
        return RunSummary(
            name=self.name,
            path=str(self.path),
            status=state,
            method=status.get("method") or recipe_bits.get("method", ""),
            model=status.get("model") or recipe_bits.get("model", ""),
            step=int(status.get("step") or 0),
            max_steps=int(status.get("max_steps") or 0),
            best_eval_loss=status.get("best_eval_loss"),
            loss=status.get("loss"),
            started=started,
            duration_s=duration,
            pid=status.get("pid"),
            live=live,
            error=status.get("error"),
        )


class RunLock:
    """An exclusive flock on runs/NAME/lock; the file names the holder's pid for messages."""

    def __init__(self, run: RunDirectory, fd: int) -> None:
        self.run = run
        self.fd = fd

    def set_holder(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(pid).encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _is_trainer(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that runs Python."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return "python" in (proc.name() + " ".join(proc.cmdline()[:1])).lower()
    except Exception:  # noqa: BLE001 - gone, or not ours to inspect
        return False


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


def list_runs(runs_dir: str | Path = "runs") -> list[RunSummary]:
    """Every run under runs_dir, newest first."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        if child.is_dir() and ((child / "recipe.toml").exists() or (child / "status.json").exists()):
            out.append(RunDirectory(child).summary())
    out.sort(key=lambda s: (s.started or 0.0, s.name), reverse=True)
    return out


def run_choices(runs_dir: str | Path = "runs", preferred: str | None = None) -> tuple[list[str], str | None]:
    """Every run's name, newest first, and the one to offer first: `preferred`, else the newest done."""
    runs = list_runs(runs_dir)
    finished = [r.name for r in runs if r.status == "done"]
    return [r.name for r in runs], preferred or (finished[0] if finished else None)


def find_run(name_or_path: str, runs_dir: str | Path = "runs") -> RunDirectory:
    """A run by name (under runs_dir) or by path. Raises UserError listing what exists."""
    candidates = [Path(name_or_path), Path(runs_dir) / name_or_path]
    for p in candidates:
        if (p / "recipe.toml").exists() or (p / "status.json").exists():
            return RunDirectory(p)
    names = [s.name for s in list_runs(runs_dir)]
    known = f"runs in {runs_dir}: " + ", ".join(names[:10]) if names else f"no runs in {runs_dir}"
    raise UserError(f"no run named '{name_or_path}'", known)


def check_deletable(run: RunDirectory) -> None:
    """UserError when `run` must not be deleted now: a trainer holds it (or it is not a run)."""
    if not (run.recipe_path.exists() or run.status_path.exists()):
        raise UserError(f"{run.path} is not a tuitune run (no recipe.toml or status.json)", "give a run name from `tuitune runs`")
    if run.is_locked():
        holder = run.holder_pid()
        who = f" (pid {holder})" if holder else ""
        raise UserError(
            f"run {run.name} is in use by a trainer{who}: it cannot be deleted while it trains",
            f"stop it first (`tuitune stop {run.name}`), then delete it once it has stopped",
        )


def delete_run(run: RunDirectory) -> None:
    """Remove a run folder and everything in it. Refuses a run a trainer holds.

    The run's lock is taken for the deletion, so no trainer can start (resume) in it meanwhile.
    """
    import shutil

    check_deletable(run)
    try:
        lock = run.acquire_lock(wait_s=0.2)
    except UserError:
        check_deletable(run)  # a trainer took it just now: say so in the deletion's words
        raise
    try:
        shutil.rmtree(run.path)
    finally:
        lock.release()
