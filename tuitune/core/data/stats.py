"""Token-length statistics of a dataset: what cutoff_len to choose, and what it would cut."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from tuitune.core.data.records import LengthStats

HISTOGRAM_BUCKETS = 10


def length_stats(lengths: Sequence[int], cutoff_len: int, buckets: int = HISTOGRAM_BUCKETS) -> LengthStats:
    """rows, min, median, p95 (nearest rank), max, rows over cutoff_len and a histogram of
    `buckets` equal, round-numbered ranges starting at 0."""
    values = sorted(int(n) for n in lengths)
    if not values:
        return LengthStats(0, 0, 0.0, 0, 0, 0, cutoff_len, [], 0.0, 0)
    n = len(values)
    p95 = values[max(0, math.ceil(0.95 * n) - 1)]
    width = _round_up(max(1, math.ceil((values[-1] + 1) / buckets)))
    counts = [0] * max(1, math.ceil((values[-1] + 1) / width))
    for v in values:
        counts[v // width] += 1
    histogram = [(k * width, (k + 1) * width, c) for k, c in enumerate(counts)]
    total = sum(values)
    return LengthStats(
        rows=n,
        min=values[0],
        median=float(statistics.median(values)),
        p95=p95,
        max=values[-1],
        over_cutoff=sum(1 for v in values if v > cutoff_len),
        cutoff_len=cutoff_len,
        histogram=histogram,
        mean=total / n,
        total_tokens=total,
    )


def _round_up(width: int) -> int:
    """The next 1, 2 or 5 times a power of ten: bucket edges a person can read."""
    power = 10 ** (len(str(width)) - 1)
    for step in (1, 2, 5, 10):
        if step * power >= width:
            return step * power
    return 10 * power
