"""The estimator against real peaks: published GPU measurements and steps measured here on CPU.

The rows live in tuitune.core.memory.reference (bench/memory_accuracy.py prints the same table).
GPU rows must be within 15% of the published figure; CPU rows, measured by training the demo
model for real (live tensor bytes of one full step), within 10%.
"""

from __future__ import annotations

import pytest

from tuitune.core.memory.reference import CPU_SETUPS, PUBLISHED, measured_rows, published_rows


@pytest.mark.parametrize("index", range(len(PUBLISHED)), ids=[p.label for p in PUBLISHED])
def test_published_gpu_peaks(index):
    row = published_rows()[index]
    assert abs(row.error) <= PUBLISHED[index].tolerance, (
        f"{row.label}: estimate {row.estimate_bytes / 2**30:.2f} GiB vs published "
        f"{row.reference_bytes / 2**30:.2f} GiB ({100 * row.error:+.1f}%)"
    )


@pytest.fixture(scope="module")
def cpu_rows():
    from tuitune.core.errors import UserError
    from tuitune.core.models import resolve_model
    from tuitune.core.recipe import DEMO_MODEL

    try:
        resolve_model(DEMO_MODEL)
    except UserError as e:  # pragma: no cover - the demo wheel is a dependency
        pytest.skip(f"demo model unavailable: {e}")
    rows = measured_rows()
    for r in rows:  # shown with -s, and in the failure message of any row
        print(f"{r.label:60s} measured {r.reference_bytes / 2**20:8.1f} MiB  estimate {r.estimate_bytes / 2**20:8.1f} MiB  {100 * r.error:+.1f}%")
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(CPU_SETUPS)), ids=[s.label for s in CPU_SETUPS])
def test_measured_cpu_peaks(cpu_rows, index):
    row = cpu_rows[index]
    assert abs(row.error) <= 0.10, (
        f"{row.label}: estimate {row.estimate_bytes / 2**20:.1f} MiB vs measured {row.reference_bytes / 2**20:.1f} MiB "
        f"({100 * row.error:+.1f}%)"
    )


def test_measured_setups_cover_methods_checkpointing_and_two_lengths():
    seen = {(s.method, s.gradient_checkpointing) for s in CPU_SETUPS}
    for method in ("full", "lora", "qlora"):
        assert (method, True) in seen and (method, False) in seen
    assert len({s.seq_len for s in CPU_SETUPS}) >= 2
