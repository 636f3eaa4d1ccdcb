"""Training several LoRA recipes together on one base (`tuitune train --together`): memory and speed.

Memory: N copies of the quickstart recipe (the demo model, LoRA r=8 on every linear) together,
estimated (`estimate --together`: fused and round-robin) and measured (the group engine's own two
steps per job, live tensor bytes on CPU), beside the same N runs as separate processes: the estimate
of each alone and N times the measured peak of one run alone (`estimate --measure`).

Speed: non-padding tokens per second over all jobs, for the same jobs trained one after another
(each alone, the engine's session), together with fused batches, and together round-robin, all in
this process, one after another in one run. Jobs: the quickstart (identity.jsonl, r=8), its Chinese
twin (identity_zh.jsonl, r=16) and the quickstart with r=32 and another seed. The window starts once
every job has logged its first step and ends at the last step. Two rates: per second of this
process's CPU time (with one torch thread, the work done, whatever else runs on the machine) and per
second of wall time (what a user waits; only meaningful on a quiet machine).

    PYTHONPATH=. python bench/together.py [--memory-jobs 3 6] [--speed-jobs 3] [--steps 8] [--threads 1] [--skip-memory]

Prints figures; asserts nothing. Say the CPU and the load average with them (both are printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load(path: str, name: str, **changes):
    from tuitune.core.recipe import apply_overrides, load_recipe

    recipe, problems = load_recipe(REPO / path)
    assert not problems, problems
    problems = apply_overrides(recipe, [f"name={name}"] + [f"{k}={v}" for k, v in changes.items()])
    assert not problems, problems
    return recipe


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} cores, load average {Path('/proc/loadavg').read_text().split()[:3]}"


def memory(counts: list[int]) -> None:
    from tuitune.core.engine.measure import measure_recipe
    from tuitune.core.engine.together.measure import measure_together
    from tuitune.core.memory.together import estimate_together
    from tuitune.core.models.precision import cpu_bf16_native
    from tuitune.core.models.spec import model_spec

    bf16 = cpu_bf16_native()
    one = load("recipes/quickstart.toml", "quickstart")
    spec = model_spec(one.model_path)
    alone = measure_recipe(one, "cpu")
    print(f"one run alone, measured: training peak {gib(alone.train_peak_bytes)} ({alone.batch_size} x {alone.seq_len})")
    print("| jobs | together, estimate (fused / round-robin) | together, measured (fused) | error "
          "| separately, estimate | separately, measured | saved (measured) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in counts:
        jobs = [load("recipes/quickstart.toml", f"q{i}", **{"train.seed": 42 + i}) for i in range(n)]
        t0 = time.perf_counter()
        m = measure_together(jobs, "cpu", "fused")
        seconds = time.perf_counter() - t0
        at_measured = estimate_together(spec, jobs, schedule="fused", device="cpu", bf16=bf16, shapes=m.shapes)
        fused = estimate_together(spec, jobs, schedule="fused", device="cpu", bf16=bf16)
        rr = estimate_together(spec, jobs, schedule="round-robin", device="cpu", bf16=bf16)
        separate_measured = n * alone.train_peak_bytes
        err = (at_measured.allocated_peak_bytes - m.train_peak_bytes) / m.train_peak_bytes
        print(f"| {n} | {gib(fused.allocated_peak_bytes)} / {gib(rr.allocated_peak_bytes)} | {gib(m.train_peak_bytes)} "
              f"| {100 * err:+.1f}% | {gib(sum(e.allocated_peak_bytes for e in fused.alone))} | {gib(separate_measured)} "
              f"| {100 * (1 - m.train_peak_bytes / separate_measured):.0f}% |  ({seconds:.0f} s)")


class StepClock:
    """Polls the runs' events while `target` trains them: process CPU time, wall time and the tokens of
    all runs each time a step event appears. The window starts once every run has logged its first
    step (warm-up and loading left out) and ends at the last step event."""

    def __init__(self, runs: list) -> None:
        self.runs = runs
        self.marks: list[tuple[float, float, int, bool]] = []  # (cpu s, wall s, tokens, every run started)

    def _read(self) -> tuple[int, int, bool]:
        from tuitune.core.runs import read_events

        steps, tokens, started = 0, 0, True
        for run in self.runs:
            found = [e for e in read_events(Path(run.path) / "events.jsonl")[0] if e["type"] == "step"]
            steps += len(found)
            tokens += found[-1]["tokens"] if found else 0
            started = started and bool(found)
        return steps, tokens, started

    def run(self, target) -> tuple[float, float, int]:
        import threading

        done = threading.Event()
        thread = threading.Thread(target=lambda: (target(), done.set()))
        thread.start()
        seen = 0
        while not done.is_set() or seen < self._read()[0]:
            steps, tokens, started = self._read()
            if steps > seen:
                seen = steps
                self.marks.append((time.process_time(), time.monotonic(), tokens, started))
            time.sleep(0.05)
        thread.join()
        first = next(m for m in self.marks if m[3])
        last = self.marks[-1]
        return last[0] - first[0], last[1] - first[1], last[2] - first[2]


def speed(n: int, steps: int, threads: int) -> None:
    import torch

    from tuitune.core.engine.prepare import prepare_run
    from tuitune.core.engine.session import train_run
    from tuitune.core.engine.together.plan import check_together, prepare_group
    from tuitune.core.engine.together.session import train_group

    torch.set_num_threads(threads)

    def jobs(runs: Path):
        common = {"train.max_steps": steps, "train.logging_steps": 1, "train.save_steps": 0, "output.runs_dir": runs}
        made = [load("recipes/quickstart.toml", "en-r8", **common),
                load("recipes/quickstart-zh.toml", "zh-r16", **common),
                load("recipes/quickstart.toml", "en-r32", **{**common, "lora.r": 32, "train.seed": 7})]
        return [made[i] if i < 3 else load("recipes/quickstart.toml", f"en-{i}", **{**common, "train.seed": i})
                for i in range(n)]

    results: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="tuitune-bench-together-") as tmp:
        root = Path(tmp)
        cpu = wall = tokens = 0.0
        for recipe in jobs(root / "alone"):  # one after another: each job's own window, summed
            run = prepare_run(recipe)
            c, w, t = StepClock([run]).run(lambda run=run: train_run(run.path))
            cpu, wall, tokens = cpu + c, wall + w, tokens + t
        results["one after another"] = (cpu, wall, int(tokens))
        for schedule in ("fused", "round-robin"):
            group = prepare_group(check_together(jobs(root / schedule), schedule))
            results[f"together, {schedule}"] = StepClock(group).run(
                lambda group=group: train_group([str(r.path) for r in group]))
    base_cpu = results["one after another"][2] / results["one after another"][0]
    base_wall = results["one after another"][2] / results["one after another"][1]
    print(f"| {n} jobs x {steps} steps, torch threads {threads} | tokens per CPU-second | vs one after another "
          "| tokens/s (wall) | vs one after another |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (c, w, t) in results.items():
        print(f"| {name} | {t / c:,.1f} | {t / c / base_cpu:.2f}x | {t / w:,.1f} | {t / w / base_wall:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory-jobs", type=int, nargs="*", default=[3, 6])
    p.add_argument("--speed-jobs", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the speed runs (1: CPU time is the work done, whatever the load)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(machine())
    if not args.skip_memory:
        memory(args.memory_jobs)
    if not args.skip_speed:
        speed(args.speed_jobs, args.steps, args.threads)
    print(machine())


if __name__ == "__main__":
    main()
