#!/usr/bin/env python3
"""How fast the Train screen answers while a trainer writes events quickly.

Replays a recorded tiny run (tests/data/runs/finished-demo/events.jsonl, looped with growing step
numbers) into a fresh run folder at RATE events/s, holding the run's lock as a trainer would, while
the app runs headless (App.run_test) attached to that run. Measures:

  (a) key -> repaint: `l` (show/hide the log) is sent with simulate_key; the time until the log's
      visibility changed and the screen has been refreshed after it (call_after_refresh).
  (b) event -> chart: a step event is written to events.jsonl; the time until the loss chart's last
      drawn point is that step.

Targets (issue 6): (a) under 100 ms, (b) under 1 s. Prints median and p95 of both.

    PYTHONPATH=. python bench/responsiveness.py [--seconds 20] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "tests" / "data" / "runs" / "finished-demo"


def recorded_events() -> list[dict]:
    lines = (RECORDED / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


class Replayer(threading.Thread):
    """Writes the recorded run's training events again and again, RATE per second, as a trainer would."""

    def __init__(self, run, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.rate, self.seconds = run, rate, seconds
        self.written: dict[int, float] = {}  # step -> when its event reached the file
        self.count = 0
        self.stop = threading.Event()

    def run_events(self):
        events = recorded_events()
        body = [e for e in events if e["type"] in ("step", "eval", "checkpoint", "log", "warning")]
        period = max(e.get("step", 0) for e in body)
        yield from [e for e in events if e["type"] in ("status", "start")][:4]
        loop = 0
        while True:
            for e in body:
                e = dict(e)
                if "step" in e:
                    e["step"] += loop * period
                if "max_steps" in e:
                    e["max_steps"] = 1_000_000
                yield e
            loop += 1

    def run(self) -> None:
        from tuitune.core.runs import EventWriter

        t0 = time.monotonic()
        with EventWriter(self.run_dir.events_path) as writer:
            for i, event in enumerate(self.run_events()):
                due = t0 + i / self.rate
                while (now := time.monotonic()) < due:
                    time.sleep(due - now)
                if self.stop.is_set() or now - t0 > self.seconds:
                    return
                kind = event.pop("type")
                event.pop("time", None)
                writer.write(kind, **event)
                self.count += 1
                if kind == "step":
                    self.written[event["step"]] = time.monotonic()


ANSWERED: list[float] = []  # key -> handled (state changed), before the repaint


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(seconds: float, rate: float, size: tuple[int, int]) -> dict[str, list[float]]:
    from tuitune.core.runs import RunDirectory
    from tuitune.tui.app import TuituneApp

    tmp = tempfile.mkdtemp(prefix="tuitune-resp-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    runs = Path(tmp) / "runs"
    run = RunDirectory(runs / "replay")
    run.create()
    (run.path / "recipe.toml").write_text((RECORDED / "recipe.toml").read_text(encoding="utf-8"), encoding="utf-8")
    run.update_status(status="training", name="replay", step=0)
    lock = run.acquire_lock()  # the app sees a live trainer
    replayer = Replayer(run, rate, seconds)
    keys: list[float] = []
    chart: list[float] = []
    app = TuituneApp(runs_dir=runs, run="replay", blink=False)
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.5)
            replayer.start()
            seen_step = 0
            next_key = time.monotonic() + 0.5
            screen = app.screen
            chart_widget = screen.query_one("#chart")
            while replayer.is_alive():
                await asyncio.sleep(0.002)
                if True:
                    xs = chart_widget.series["train"][0]
                    if xs and xs[-1] > seen_step:
                        seen_step = int(xs[-1])
                        written = replayer.written.get(seen_step)
                        if written is not None:
                            chart.append(time.monotonic() - written)
                if time.monotonic() >= next_key:
                    keys.append(await key_to_repaint(app, screen))
                    next_key = time.monotonic() + 0.2
            replayer.stop.set()
    finally:
        lock.release()
    print(f"replayed {replayer.count} events in {seconds:.0f} s ({replayer.count / seconds:.0f}/s) "
          f"at {size[0]}x{size[1]}; the chart reached step {seen_step}")
    return {"keys": keys, "chart": chart}


async def key_to_repaint(app, screen) -> float:
    """Press `l` and wait until the log's visibility flipped and a refresh followed it."""
    log = screen.query_one("#log")
    shown = log.display
    repainted = asyncio.Event()
    t0 = time.monotonic()
    app.simulate_key("l")
    while log.display == shown:
        await asyncio.sleep(0.001)
        if time.monotonic() - t0 > 5:
            raise RuntimeError("the key was not answered within 5 s")
    answered = time.monotonic() - t0
    app.call_after_refresh(repainted.set)
    await repainted.wait()
    ANSWERED.append(answered)
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--size", default="100x30")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    size = tuple(int(x) for x in args.size.split("x"))
    result = asyncio.run(measure(args.seconds, args.rate, size))
    if ANSWERED:
        print(f"(key -> handled: median {statistics.median(ANSWERED) * 1000:.0f} ms, p95 {pct(ANSWERED, 0.95) * 1000:.0f} ms)")
    # Targets (issue 15): key -> repaint median <= 50 ms and p95 <= 100 ms; a chart within a second.
    for name, label, target_median, target_p95 in (("keys", "key -> repaint", 0.050, 0.100),
                                                   ("chart", "event -> chart", None, 1.0)):
        values = result[name]
        if not values:
            print(f"{label}: no samples")
            continue
        med, p95 = statistics.median(values), pct(values, 0.95)
        ok = p95 <= target_p95 and (target_median is None or med <= target_median)
        wanted = (f"median <= {target_median * 1000:.0f} ms, " if target_median is not None else "") + \
            f"p95 <= {target_p95 * 1000:.0f} ms"
        print(f"{label}: median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
              f"({len(values)} samples; target {wanted}: {'ok' if ok else 'OVER TARGET'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
