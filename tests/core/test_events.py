"""Typed training events: written as declared, read back tolerantly, rendered as one line each."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tuitune.core import events as ev
from tuitune.core.runs import RunDirectory, read_events
from tuitune.core.runs.history import RunHistory


def test_every_documented_type_is_declared_with_its_fields():
    fields = {name: {f.name for f in dataclasses.fields(cls)} - {"time"} for name, cls in ev.EVENT_TYPES.items()}
    assert set(fields) >= {"start", "status", "step", "eval", "checkpoint", "log", "warning", "done", "error"}
    assert {"max_steps", "resumed_from", "trainable_params", "precision", "world_size"} <= fields["start"]
    assert {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s", "eta_s", "memory"} <= fields["step"]
    assert fields["error"] == {"kind", "message", "hint"}
    assert fields["done"] == {"steps", "train_loss", "best_eval_loss", "duration_s", "output"}


def test_emitted_events_round_trip_and_non_finite_numbers_become_null(tmp_path):
    run = RunDirectory(tmp_path / "r")
    with run.event_writer() as w:
        w.emit(ev.StepEvent(step=3, max_steps=10, loss=float("nan"), lr=1e-4, memory={"device": "cpu", "rss": 2**20}))
        w.emit(ev.ErrorEvent(kind="nan", message="the loss is NaN", hint="lower the learning rate"))
    raw, _ = read_events(run.events_path)
    assert raw[0]["type"] == "step" and raw[0]["loss"] is None and isinstance(raw[0]["time"], float)
    step, error = ev.parse_events(raw)
    assert isinstance(step, ev.StepEvent) and step.step == 3 and step.lr == 1e-4 and step.loss is None
    assert isinstance(error, ev.ErrorEvent) and error.kind == "nan" and error["hint"] == "lower the learning rate"


def test_readers_ignore_unknown_fields_and_unknown_types():
    raw = [
        {"time": 1.0, "type": "step", "step": 1, "loss": 2.5, "added_later": {"x": 1}},
        {"time": 2.0, "type": "note", "step": 1, "text": "a type this reader does not know"},
        "not an object",
    ]
    parsed = ev.parse_events(raw)
    assert len(parsed) == 1 and parsed[0].loss == 2.5 and not hasattr(parsed[0], "added_later")
    assert ev.event_markup(raw[1]) is None
    history = RunHistory()
    history.add(raw[:2])
    assert history.events_seen == 2 and history.train_loss.steps == [1] and len(history.recent) == 1


def test_one_line_per_event_with_its_figures():
    lines = {
        "step": ev.StepEvent(time=0, step=5, max_steps=30, epoch=0.5, loss=1.23456, lr=2e-4, grad_norm=0.75,
                             tokens_per_s=1234.4, elapsed_s=75, eta_s=3700,
                             memory={"device": "cuda", "allocated": 3 * 2**30, "peak": 5 * 2**29}).markup(),
        "done": ev.DoneEvent(time=0, steps=30, train_loss=0.5, best_eval_loss=None, duration_s=95, output="runs/q/adapter").markup(),
        "error": ev.ErrorEvent(time=0, kind="oom", message="out of [memory]", hint="lower the batch").markup(),
        "start": ev.StartEvent(time=0, method="lora", model="m", device="cpu", precision="fp32", num_train=8, num_eval=2,
                               max_steps=4, trainable_params=1000, total_params=2_000_000, resumed_from=2).markup(),
    }
    assert "step 5/30" in lines["step"] and "loss [bold]1.2346[/]" in lines["step"] and "1,234 tok/s" in lines["step"]
    assert "elapsed 1:15" in lines["step"] and "eta 1:01:40" in lines["step"] and "gpu 3.0 GiB (peak 2.5 GiB)" in lines["step"]
    assert "30 steps in 1:35" in lines["done"] and "best eval" not in lines["done"]
    assert "out of \\[memory]" in lines["error"] and "hint: lower the batch" in lines["error"]
    assert "1,000 of 2,000,000 parameters trainable, resumed from step 2" in lines["start"]
    assert ev.LogEvent(message="x").describe() == "x" and ev.Event().markup() is None


def test_download_and_estimate_lines():
    going = ev.DownloadEvent(time=0, model="org/m", file="model.safetensors", done=3 * 2**20, total=12 * 2**20,
                             speed=2**20, eta_s=9, files_done=2, files_total=3, finished=False)
    assert "[blue]download[/] model.safetensors  3 MiB of 12 MiB (25%)  1 MiB/s  eta 0:09" in going.markup()
    stalled = dataclasses.replace(going, speed=0.0, eta_s=None)
    assert "0 B/s  eta -" in stalled.markup()
    assert "[green]downloaded[/] org/m (12 MiB)" in dataclasses.replace(going, finished=True, done=12 * 2**20).markup()
    estimate = ev.EstimateEvent(time=0, model="org/m", train_peak_bytes=14 * 2**30, available_bytes=47 * 2**29,
                                where="cuda:0", verdict="does not fit")
    assert "training needs 14.0 GiB of 23.5 GiB free on cuda:0: [red bold]does not fit[/]" in estimate.markup()
    history = RunHistory()
    history.add([going.to_dict(), estimate.to_dict()])
    assert history.downloading and history.download.done == 3 * 2**20 and history.estimate.verdict == "does not fit"
    history.add([dataclasses.replace(going, finished=True).to_dict()])
    assert not history.downloading


def test_a_long_download_prints_a_line_every_few_seconds_and_its_end():
    class Console:
        def __init__(self):
            self.lines = []

        def print(self, line, **_):
            self.lines.append(line)

    def download(t, done, finished=False):
        return ev.DownloadEvent(time=t, model="org/m", file="w", done=done, total=100, speed=1.0,
                                finished=finished).to_dict()

    raws = [download(t, t) for t in range(25)] + [download(25, 100, finished=True), ev.LogEvent(time=26, message="x").to_dict()]
    console = Console()
    last = ev.print_events(console, raws)
    assert last["type"] == "log"
    shown = [line for line in console.lines if "download" in line]
    every = int(ev.DOWNLOAD_LINE_EVERY_S)
    assert len(shown) == len(range(0, 25, every)) + 1 and "downloaded[/] org/m" in shown[-1]
    assert console.lines[-1].endswith(" x")


@pytest.mark.parametrize(
    ("value", "size"),
    [(512, "512 B"), (3 * 2**20, "3 MiB"), (2**30 + 2**29, "1.5 GiB"), (2**40, "1.0 TiB"), (None, "-"), (math.inf, "-")],
)
def test_sizes(value, size):
    assert ev.format_size(value) == size


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (89.6, "1:30"), (3700, "1:01:40"), (-1, "-"), (None, "-"), (math.nan, "-")])
def test_durations(seconds, text):
    assert ev.format_duration(seconds) == text
