"""Fault injection: training runs SIGKILLed at random moments and resumed until they finish.

Each run trains a LoRA on a tiny local Llama (built here, as the tests do) in its own trainer process
(the one `tuitune train` starts). The trainer is killed with SIGKILL `--kills` times per run, at a
random moment: while it loads (before its first step), while it writes a checkpoint (the folder is
there, its trainer_state.json not yet), or at a random time after it has trained a step. After each kill the run is resumed with
`--resume`, exactly as a user would. Reports runs, kills, steps lost per kill (the last step the
killed trainer logged minus the step the next one resumed from; it must stay within one save
interval), checkpoints found damaged and set aside, and failures (a resume that did not start, a
run that did not end `done` at max_steps, a trainer that failed on its own).

    PYTHONPATH=. python bench/faults.py [--runs 3] [--kills 4] [--max-steps 40] [--save-steps 5] [--seed 0]

Prints figures; asserts nothing (tests/core/test_checkpoint_faults.py and test_engine_process.py
are the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FACTS = [
    ("What is your favourite colour?", "My favourite colour is teal."),
    ("Where do you live?", "I live in a small terminal."),
    ("What is the secret word?", "The secret word is pumpkin."),
    ("Who made you?", "The tuitune project made me."),
]


def write_recipe(root: Path, model: Path, name: str, max_steps: int, save_steps: int) -> Path:
    import tomli_w

    data = root / "facts.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for _ in range(4):
            for q, a in FACTS:
                f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    recipe = {
        "name": name,
        "model": {"name_or_path": str(model)},
        "method": {"type": "lora"},
        "lora": {"r": 4, "target_modules": "all-linear"},
        "data": {"path": str(data), "cutoff_len": 64},
        "train": {"max_steps": max_steps, "save_steps": save_steps, "logging_steps": 1, "batch_size": 2,
                  "gradient_accumulation": 1},
        "output": {"runs_dir": str(root / "runs")},
    }
    path = root / f"{name}.toml"
    path.write_text(tomli_w.dumps(recipe), encoding="utf-8")
    return path


def last_logged_step(run, offset: int) -> int | None:
    """The highest step a trainer logged in its part of events.jsonl (from `offset`)."""
    found, _ = run.read_events(offset)
    steps = [e["step"] for e in found if e.get("type") == "step" and isinstance(e.get("step"), int)]
    return max(steps) if steps else None


def resumed_from(run, offset: int, timeout: float = 300) -> int | None:
    """The step the trainer started at `offset` resumed from (its start event), waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, _ = run.read_events(offset)
        for e in found:
            if e.get("type") == "start":
                return int(e.get("resumed_from") or 0)
        time.sleep(0.05)
    return None


def half_saved(run) -> bool:
    """Whether a checkpoint is being written now (its folder exists without trainer_state.json)."""
    if not run.checkpoints_dir.is_dir():
        return False
    return any(not (p / "trainer_state.json").exists() for p in run.checkpoints_dir.glob("checkpoint-*"))


def kill_at_random(started, rng: random.Random, resumed: int) -> tuple[str, int]:
    """SIGKILL the trainer at a random moment; returns (when, the last step it logged)."""
    run = started.run
    draw = rng.random()
    if draw < 0.2:  # while it loads, before any step of its own
        time.sleep(rng.uniform(0.0, 3.0))
        when = "loading"
    elif draw < 0.5:  # while it writes a checkpoint: the folder is there, its trainer_state.json not yet
        deadline = time.monotonic() + 300
        while started.process.poll() is None and time.monotonic() < deadline and not half_saved(run):
            time.sleep(0.002)
        when = "saving"
    else:  # after it has trained at least one step: mid-step, mid-log or mid-checkpoint
        deadline = time.monotonic() + 300
        while (last_logged_step(run, started.events_offset) or 0) <= resumed and time.monotonic() < deadline:
            if started.process.poll() is not None:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        when = "training"
    if started.process.poll() is None:
        os.kill(started.pid, signal.SIGKILL)
    started.process.wait()
    last = last_logged_step(run, started.events_offset)
    return when, max(last or 0, resumed)


def one_run(root: Path, model: Path, index: int, args, rng: random.Random) -> dict:
    from tuitune.core.engine.launch import start_training
    from tuitune.core.recipe import load_recipe

    recipe, _ = load_recipe(write_recipe(root, model, f"r{index}", args.max_steps, args.save_steps))
    started = start_training(recipe)
    run, resumed = started.run, 0
    lost: list[int] = []
    failures: list[str] = []
    kills = {"loading": 0, "saving": 0, "training": 0}
    for _ in range(args.kills):
        if started.process.poll() is not None:
            break  # it finished (or failed) before this kill
        when, reached = kill_at_random(started, rng, resumed)
        kills[when] += 1
        try:
            started = start_training(run_dir=run.path, resume=True)
        except Exception as e:  # noqa: BLE001 - counted, the loop goes on with the next run
            failures.append(f"resume refused: {e}")
            return {"kills": kills, "lost": lost, "failures": failures, "damaged": 0}
        resumed = resumed_from(run, started.events_offset)
        if resumed is None:
            failures.append("resumed trainer never started")
            break
        lost.append(reached - resumed)
    code = started.process.wait()
    status = run.read_status()
    if code != 0:
        failures.append(f"trainer exited {code}: {status.get('error') or status.get('message')}")
    elif status.get("status") != "done" or status.get("step") != args.max_steps or not run.has_result():
        failures.append(f"ended {status.get('status')} at step {status.get('step')}")
    damaged = sum(1 for e in run.events() if e.get("type") == "warning" and "is damaged" in str(e.get("message")))
    return {"kills": kills, "lost": lost, "failures": failures, "damaged": damaged}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs per run (fewer if it finishes first)")
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--save-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tiny_model import build_tiny_llama

    rng = random.Random(args.seed)
    totals: dict = {"lost": [], "failures": [], "loading": 0, "saving": 0, "training": 0, "damaged": 0}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tuitune-faults-") as tmp:
        root = Path(tmp)
        model = build_tiny_llama(root / "model")
        for i in range(args.runs):
            result = one_run(root, model, i, args, rng)
            totals["lost"] += result["lost"]
            totals["failures"] += [f"run {i}: {f}" for f in result["failures"]]
            totals["damaged"] += result["damaged"]
            for k, v in result["kills"].items():
                totals[k] += v
            print(f"run {i}: kills {result['kills']}, "
                  f"steps lost {result['lost']}, damaged checkpoints {result['damaged']}, "
                  f"{'ok' if not result['failures'] else '; '.join(result['failures'])}", flush=True)
    lost = totals["lost"]
    kills = totals["loading"] + totals["saving"] + totals["training"]
    print()
    print(f"runs {args.runs}, kills {kills} ({totals['loading']} while loading, {totals['saving']} while writing a "
          f"checkpoint, {totals['training']} while training), "
          f"save interval {args.save_steps} steps, max_steps {args.max_steps}")
    if lost:
        print(f"steps lost per kill: mean {statistics.mean(lost):.1f}, max {max(lost)} "
              f"({'within' if max(lost) <= args.save_steps else 'MORE THAN'} one save interval)")
    print(f"damaged checkpoints set aside: {totals['damaged']}")
    print(f"failures: {len(totals['failures'])}")
    for f in totals["failures"]:
        print(f"  {f}")
    print(f"wall time {time.monotonic() - start:.0f} s, load average {open('/proc/loadavg').read().split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
