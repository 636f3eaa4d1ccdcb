"""Print the estimator's accuracy table: published GPU peaks and CPU peaks measured here.

    PYTHONPATH=. python bench/memory_accuracy.py            # both tables
    PYTHONPATH=. python bench/memory_accuracy.py --published # only the published rows (instant)

The CPU rows train SmolLM2-135M (the demo model) for real: one step each, the peak of live tensor
memory counted by tuitune.core.memory.probe. Also prints how long one estimate takes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tuitune.core.memory.reference import measured_rows, published_rows  # noqa: E402


def show(rows, title):
    print(f"\n{title}")
    print(f"{'setup':78s} {'reference':>11s} {'estimate':>11s} {'error':>7s}")
    for r in rows:
        print(f"{r.label:78s} {r.reference_bytes / 2**30:9.2f} Gi {r.estimate_bytes / 2**30:9.2f} Gi {100 * r.error:+6.1f}%")


def estimator_speed():
    from tuitune.core.memory import estimate
    from tuitune.core.memory.fit_plan import plan
    from tuitune.core.models.spec import model_spec
    from tuitune.core.recipe import new_recipe

    spec, rec = model_spec("llama-3-8b"), new_recipe("qlora")
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        estimate(spec, rec)
    one = (time.perf_counter() - start) / n
    start = time.perf_counter()
    plan(spec, rec, 24 * 2**30)
    whole = time.perf_counter() - start
    print(f"\none estimate: {one * 1e3:.3f} ms (mean of {n}); a full plan (methods, limits, suggestions): {whole * 1e3:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--published", action="store_true", help="skip the CPU measurements")
    args = ap.parse_args()
    show(published_rows(), "Published GPU peaks (allocated unless marked [total])")
    if not args.published:
        start = time.perf_counter()
        rows = measured_rows()
        show(rows, f"Measured on this CPU: live tensor peak of a real training step ({time.perf_counter() - start:.0f} s)")
    estimator_speed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
