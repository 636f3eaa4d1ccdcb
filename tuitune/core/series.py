"""Shrink a long series to what a chart can show without losing its spikes.

A terminal chart is ~40-150 columns wide; a run logs up to tens of thousands of steps. Plotting every
point is slow and the chart library would simply overdraw, so each bucket of consecutive points keeps
its lowest and its highest point (in their order). A loss spike or a NaN-free dip stays visible, which
an average per bucket would smooth away. Hand-written: it is ten lines and plotext has no such option.
"""

from __future__ import annotations

from collections.abc import Sequence


def downsample(xs: Sequence[float], ys: Sequence[float], buckets: int) -> tuple[list[float], list[float]]:
    """At most 2 * buckets + 2 points: the min and the max of each run of consecutive points.

    The first and last points are always kept, so the x range of the chart does not shrink.
    """
    n = min(len(xs), len(ys))
    buckets = max(1, buckets)
    if n <= 2 * buckets:
        return list(xs[:n]), list(ys[:n])
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if hi <= lo:
            continue
        i_min = min(range(lo, hi), key=ys.__getitem__)
        i_max = max(range(lo, hi), key=ys.__getitem__)
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    if out_x[0] != xs[0]:
        out_x.insert(0, xs[0])
        out_y.insert(0, ys[0])
    if out_x[-1] != xs[n - 1]:
        out_x.append(xs[n - 1])
        out_y.append(ys[n - 1])
    return out_x, out_y
