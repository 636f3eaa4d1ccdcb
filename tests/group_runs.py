"""A group of runs trained together, written as the engine writes them (status.json naming the group,
events.jsonl with start, steps and done), with made-up numbers: for the group view's tests, its
snapshot and the screenshots, which must not hold numbers that training produced."""

from __future__ import annotations

import json
import math
from pathlib import Path

from tuitune.core.runs import EventWriter, RunDirectory

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: pictures show clock times
MEMORY = {"device": "cpu", "allocated": None, "reserved": None, "peak": 2_410_000_000, "rss": 2_254_857_830}
# name, LoRA rank, steps, starting loss
MEMBERS = [("qa-r8", 8, 120, 2.4), ("qa-r16", 16, 120, 2.6), ("chat-r8", 8, 80, 3.1)]
FLOOR = [0.9, 0.45, 1.4]  # where each run's loss levels off


def loss_at(step: int, start: float, i: int) -> float:
    low = FLOOR[i]
    return round(low + (start - low) * math.exp(-step / (18 + 8 * i)) + 0.05 * math.sin(step * (0.7 + i / 5)), 4)


def write_group(runs_dir: Path, upto: int | None = None, schedule: str = "fused") -> list[RunDirectory]:
    """The three runs of group qa-r8+qa-r16+chat-r8 in runs_dir; `upto`: each stops logging there (training)."""
    runs = [RunDirectory(runs_dir / name) for name, *_ in MEMBERS]
    group = {"name": "+".join(n for n, *_ in MEMBERS), "runs": [str(r.path.resolve()) for r in runs], "schedule": schedule}
    for i, (run, (name, rank, steps, start)) in enumerate(zip(runs, MEMBERS, strict=True)):
        run.create()
        run.recipe_path.write_text(
            f'name = "{name}"\n[model]\nname_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"\n[method]\ntype = "lora"\n'
            f"[lora]\nr = {rank}\n",
            encoding="utf-8",
        )
        last = steps if upto is None else min(upto, steps)
        clock = T0
        with EventWriter(run.events_path) as w:
            w.write("start", time=clock, name=name, method="lora", model="HuggingFaceTB/SmolLM2-135M-Instruct",
                    device="cpu", n_gpus=0, num_train=400, num_eval=0, max_steps=steps, epochs=3.0,
                    trainable_params=rank * 304_128, total_params=134_515_008, resumed_from=None, world_size=1,
                    packed=True, gradient_checkpointing=False, precision="fp32")
            w.write("status", time=clock, status="training", message="training")
            for step in range(1, last + 1):
                clock = T0 + 3.0 * step
                w.write("step", time=clock, step=step, max_steps=steps, epoch=round(3.0 * step / steps, 2),
                        loss=loss_at(step, start, i), lr=2e-4, grad_norm=0.8, tokens=step * 1400,
                        tokens_per_s=460.0, elapsed_s=3.0 * step, eta_s=3.0 * (steps - step), memory=MEMORY)
            if last == steps:
                w.write("done", time=clock, steps=steps, train_loss=loss_at(steps, start, i), best_eval_loss=None,
                        duration_s=3.0 * steps, output=f"runs/{name}/adapter")  # as a user sees it
                w.write("status", time=clock, status="done", message=f"finished {steps} steps")
        status = {"status": "done" if last == steps else "training", "name": name, "method": "lora",
                  "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "step": last, "max_steps": steps,
                  "loss": loss_at(last, start, i), "started": T0, "updated": clock, "group": group, "pid": None,
                  "finished": clock if last == steps else None}
        run.status_path.write_text(json.dumps(status), encoding="utf-8")
    return runs
