"""Training events: what a trainer writes to events.jsonl, and how each one reads as one line.

Every line of events.jsonl is `{"time": <unix seconds>, "type": ..., **fields}`. The classes below
declare each type's fields (docs/architecture.md, "Run directory", lists them); the engine builds
them and writes them with `EventWriter.emit` (tuitune.core.runs); readers turn each parsed line into
its class with `parse_event`. Readers stay tolerant: fields a class does not declare are dropped and
a type nobody declared gives None, so an older reader keeps working when writers add things.
`Event.markup()` is the one-line rendering (rich markup) that `tuitune train`, `tuitune runs watch`
and the Train screen's log all show; `format_duration` and `format_size` are the figures in it.

Adding an event type (e.g. `note`) is one class here (`SampleEvent` below is one such):

    @event_type
    @dataclass
    class NoteEvent(Event):
        type: ClassVar[str] = "note"
        step: int | None = None
        text: str | None = None

        def describe(self) -> str | None:        # its line, or leave it out for none
            return f"note at step {self.step}: {escape(str(self.text))}"

Every field needs a default (None: absent in the file). `parse_event`, the CLI and the TUI find the
new type through `EVENT_TYPES`; the engine writes it with `reporter.emit(NoteEvent(step=..., text=...))`;
then list its fields in docs/architecture.md.

Standard library only at import (rich is imported when a line is rendered).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from tuitune.core.units import format_bytes

EVENT_TYPES: dict[str, type[Event]] = {}


# A field's declared type, by the first name in its annotation ("int | None" -> int): what a value must be.
_KIND_CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
}
_KINDS_CACHE: dict[type, dict[str, str]] = {}


def _field_kinds(cls: type) -> dict[str, str]:
    kinds = _KINDS_CACHE.get(cls)
    if kinds is None:
        kinds = {}
        for f in dataclasses.fields(cls):
            annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            kinds[f.name] = annotation.split("|")[0].split("[")[0].strip()
        _KINDS_CACHE[cls] = kinds
    return kinds


def _fits(value: Any, kind: str) -> bool:
    check = _KIND_CHECKS.get(kind)
    return value is None or check is None or check(value)


def event_type(cls: type[Event]) -> type[Event]:
    """Register an Event subclass under its `type` name."""
    EVENT_TYPES[cls.type] = cls
    return cls


def parse_event(raw: Any) -> Event | None:
    """The typed event for one parsed line; None for a type nobody declared (or not an object)."""
    if isinstance(raw, Event):
        return raw
    if not isinstance(raw, dict):
        return None
    cls = EVENT_TYPES.get(raw.get("type"))  # type: ignore[arg-type]
    return cls.from_dict(raw) if cls is not None else None


def parse_events(raws: Any) -> list[Event]:
    """The events of known types among `raws`, in order."""
    return [e for e in map(parse_event, raws) if e is not None]


@dataclass
class Event:
    """Fields common to every event. Subclasses set `type` and declare their own fields."""

    type: ClassVar[str] = ""
    time: float | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        """The event from a parsed line. A field of the wrong type (a hand-edited or damaged file) reads as
        absent (None): readers can format every field without checking it again."""
        kinds = _field_kinds(cls)
        return cls(**{k: v if _fits(v, kinds[k]) else None for k, v in raw.items() if k in kinds})

    def fields(self) -> dict[str, Any]:
        """The type's own fields, as written to events.jsonl (time and type are added by the writer)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "time"}

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "type": self.type, **self.fields()}

    # Read access by name, as on the JSON object (`event["kind"]`, `event.get("steps")`).
    def __getitem__(self, name: str) -> Any:
        if name == "type":
            return self.type
        if name not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self, name, None) if name != "type" else self.type
        return default if value is None else value

    def describe(self) -> str | None:
        """The line's text (rich markup) without the clock; None: not worth a line."""
        return None

    def markup(self) -> str | None:
        """One line for a terminal or the Train screen's log: the clock, then describe()."""
        body = self.describe()
        if body is None:
            return None
        clock = time.strftime("%H:%M:%S", time.localtime(self.time if isinstance(self.time, (int, float)) else None))
        return f"[dim]{clock}[/] {body}"


@event_type
@dataclass
class StartEvent(Event):
    """The trainer is about to train (a resumed run appends a second `start`)."""

    type: ClassVar[str] = "start"
    name: str | None = None
    method: str | None = None
    model: str | None = None
    device: str | None = None
    n_gpus: int | None = None
    num_train: int | None = None
    num_eval: int | None = None
    max_steps: int | None = None
    epochs: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    resumed_from: int | None = None  # the checkpoint's step, None for a fresh start
    world_size: int | None = None
    packed: bool | None = None
    gradient_checkpointing: bool | None = None
    precision: str | None = None  # bf16 | fp16 | fp32, after CPU fallbacks
    gpus: list[int] | None = None  # physical GPU numbers the run uses (CUDA_VISIBLE_DEVICES), None on CPU
    cuda_visible_devices: str | None = None  # the variable as the trainer received it
    nnodes: int | None = None  # machines in the job

    def describe(self) -> str:
        from rich.markup import escape

        resumed = f", resumed from step {self.resumed_from}" if self.resumed_from else ""
        gpus = "GPU " + ",".join(map(str, self.gpus)) if isinstance(self.gpus, list) and self.gpus else None
        nodes = f"{self.nnodes} machines" if isinstance(self.nnodes, int) and self.nnodes > 1 else None
        where = ", ".join(str(x) for x in (self.device, gpus, nodes, self.precision) if x)
        return escape(
            f"{self.method} on {self.model} ({where}): {self.num_train} train rows, {self.num_eval} eval rows, "
            f"{self.max_steps} steps, {_count(self.trainable_params)} of {_count(self.total_params)} parameters "
            f"trainable{resumed}"
        )


@event_type
@dataclass
class StatusEvent(Event):
    type: ClassVar[str] = "status"
    status: str | None = None  # starting | loading | training | evaluating | saving | stopping | stopped | done | failed
    message: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        message = escape(str(self.message or ""))
        status = escape(str(self.status))
        return f"[blue]{status}[/]" + (f"  {message}" if message and message != status else "")


@event_type
@dataclass
class StepEvent(Event):
    type: ClassVar[str] = "step"
    step: int | None = None
    max_steps: int | None = None
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens: int | None = None  # non-padding tokens seen so far, all ranks
    tokens_per_s: float | None = None  # since the previous step event
    elapsed_s: float | None = None  # since this process began training
    eta_s: float | None = None
    # {device: "cuda" | "cpu", allocated, reserved, peak, rss} in bytes (allocated/reserved null on CPU),
    # and on a GPU or with several processes devices: [{rank, gpu, allocated, reserved, peak, total, rss}]
    memory: dict[str, Any] | None = None

    def describe(self) -> str:
        return (
            f"step {self.step}/{self.max_steps}  epoch {_num(self.epoch, '.2f')}  "
            f"loss [bold]{_num(self.loss, '.4f')}[/]  lr {_num(self.lr, '.2e')}  "
            f"grad {_num(self.grad_norm, '.2f')}  {_num(self.tokens_per_s, ',.0f')} tok/s  "
            f"elapsed {format_duration(self.elapsed_s)}  eta {format_duration(self.eta_s)}  {memory_text(self.memory)}"
        )


@event_type
@dataclass
class EvalEvent(Event):
    type: ClassVar[str] = "eval"
    step: int | None = None
    eval_loss: float | None = None
    perplexity: float | None = None

    def describe(self) -> str:
        return f"[cyan]eval[/] step {self.step}  loss [bold]{_num(self.eval_loss, '.4f')}[/]  perplexity {_num(self.perplexity, '.2f')}"


@event_type
@dataclass
class CheckpointEvent(Event):
    type: ClassVar[str] = "checkpoint"
    step: int | None = None
    path: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        return f"[dim]checkpoint step {self.step}: {escape(str(self.path))}[/]"


@event_type
@dataclass
class SampleEvent(Event):
    """The greedy answer to one of eval.sample_prompts at a step (rank 0, every eval.sample_every steps)."""

    type: ClassVar[str] = "sample"
    step: int | None = None
    prompt: str | None = None
    answer: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        answer = " ".join(str(self.answer or "").split()) or "(empty)"
        cut = answer if len(answer) <= 300 else answer[:299] + "…"
        return f"[magenta]sample[/] step {self.step}  [bold]{escape(str(self.prompt))}[/] → {escape(cut)}"


@event_type
@dataclass
class LogEvent(Event):
    type: ClassVar[str] = "log"
    message: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        return escape(str(self.message))


@event_type
@dataclass
class WarningEvent(Event):
    type: ClassVar[str] = "warning"
    message: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        return f"[yellow]warning:[/] {escape(str(self.message))}"


@event_type
@dataclass
class DoneEvent(Event):
    type: ClassVar[str] = "done"
    steps: int | None = None
    train_loss: float | None = None
    best_eval_loss: float | None = None
    duration_s: float | None = None
    output: str | None = None  # the result folder

    def describe(self) -> str:
        from rich.markup import escape

        best = f", best eval loss {_num(self.best_eval_loss, '.4f')}" if self.best_eval_loss is not None else ""
        return (
            f"[green bold]done:[/] {self.steps} steps in {format_duration(self.duration_s)}, "
            f"train loss {_num(self.train_loss, '.4f')}{best}; result in {escape(str(self.output))}"
        )


@event_type
@dataclass
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    kind: str | None = None  # oom | nan | data | config | disk | exception
    message: str | None = None
    hint: str | None = None

    def describe(self) -> str:
        from rich.markup import escape

        hint = f"\n  [dim]hint: {escape(str(self.hint))}[/]" if self.hint else ""
        return f"[red bold]error ({escape(str(self.kind))}):[/] {escape(str(self.message))}{hint}"


@event_type
@dataclass
class DownloadEvent(Event):
    """A hub model arriving before loading (tuitune.core.engine.downloads): at most one a second, one
    as each file ends, and a last one with `finished`. Bytes count every selected file."""

    type: ClassVar[str] = "download"
    model: str | None = None  # the hub id
    file: str | None = None  # the file being transferred ("" between files)
    file_done: int | None = None
    file_total: int | None = None
    done: int | None = None  # bytes, all files
    total: int | None = None
    speed: float | None = None  # bytes per second over the last seconds; 0 while stalled
    eta_s: float | None = None
    files_done: int | None = None
    files_total: int | None = None
    finished: bool | None = None

    def describe(self) -> str:
        from rich.markup import escape

        if self.finished:
            return f"[green]downloaded[/] {escape(str(self.model))} ({format_size(self.total)})"
        share = f"{100 * (self.done or 0) / self.total:.0f}%" if self.total else "-"
        return (
            f"[blue]download[/] {escape(str(self.file or '-'))}  {format_size(self.done)} of {format_size(self.total)}"
            f" ({share})  {format_size(self.speed)}/s  eta {format_duration(self.eta_s)}"
        )


@event_type
@dataclass
class EstimateEvent(Event):
    """The memory estimate, written as soon as a downloading model's config.json is in."""

    type: ClassVar[str] = "estimate"
    model: str | None = None
    train_peak_bytes: int | None = None
    available_bytes: int | None = None  # free GPU memory, or available RAM on the CPU
    where: str | None = None  # cuda:N | cpu
    verdict: str | None = None  # fits | tight | does not fit

    def describe(self) -> str:
        from rich.markup import escape

        color = {"fits": "green", "tight": "yellow", "does not fit": "red"}.get(str(self.verdict), "white")
        return (
            f"memory estimate: training needs {format_size(self.train_peak_bytes)} of "
            f"{format_size(self.available_bytes)} free on {escape(str(self.where))}: "
            f"[{color} bold]{escape(str(self.verdict))}[/]"
        )


def event_markup(raw: Any) -> str | None:
    """The line for one event (a parsed JSON object or an Event); None for events without one."""
    event = parse_event(raw)
    return event.markup() if event is not None else None


DOWNLOAD_LINE_EVERY_S = 10.0  # a long download prints its first line, then one this often, then the end


def print_events(console: Any, events: Any) -> dict[str, Any] | None:
    """Print each event's line (on a rich Console) as it comes; returns the last event read."""
    last = None
    shown: dict[str, Any] = {}  # the last download event printed
    for event in events:
        last = event
        if event.get("type") == "download" and not _worth_a_line(event, shown):
            continue
        line = event_markup(event)
        if line is not None:
            console.print(line, highlight=False, soft_wrap=True)
    return last


def _worth_a_line(event: Any, shown: dict[str, Any]) -> bool:
    before = shown.get("event")
    if (before is None or event.get("finished")
            or (event.get("time") or 0) - (before.get("time") or 0) >= DOWNLOAD_LINE_EVERY_S):
        shown["event"] = event
        return True
    return False


# --------------------------------------------------------------------------- figures in the lines


def format_duration(seconds: Any) -> str:
    """90 -> '1:30'; 3700 -> '1:01:40'; '-' for anything that is not a duration."""
    if not _finite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def format_size(n: Any) -> str:
    """Bytes for a status line: whole B/KiB/MiB, GiB and TiB with one decimal; '-' when unknown."""
    if not _finite(n):
        return "-"
    return format_bytes(n, digits=1 if abs(n) >= 2**30 else 0)


def memory_text(memory: Any) -> str:
    """A step event's memory: 'gpu 3.1 GiB (peak 3.5 GiB)' on CUDA, 'ram 812 MiB' on CPU."""
    if not isinstance(memory, dict):
        return "-"
    if memory.get("device") == "cuda":
        return f"gpu {format_size(memory.get('allocated'))} (peak {format_size(memory.get('peak'))})"
    return f"ram {format_size(memory.get('rss'))}"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if _finite(x) else "-"


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)
