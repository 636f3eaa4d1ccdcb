"""Packing: several short examples in one row, so no compute is spent on padding.

Rows are filled best-fit, longest examples first (each example goes into the fullest row that
still has room), which wastes little space and is deterministic. Position ids restart at 0 for
each example: transformers then treats the row as separate sequences (a block-diagonal causal
mask, when fed position_ids without an attention mask), so examples never attend to each other.
The first label of every example is masked, so the last token of one example is never trained to
predict the first token of the next.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from tuitune.core.data.records import IGNORE_INDEX, Encoded, Packed


def pack(encoded: Sequence[Encoded], cutoff_len: int) -> list[Packed]:
    """Encoded examples packed into rows of at most cutoff_len tokens (longer ones are truncated)."""
    if cutoff_len < 1:
        raise ValueError("cutoff_len must be at least 1")
    order = sorted(range(len(encoded)), key=lambda i: (-min(len(encoded[i].input_ids), cutoff_len), i))
    rows: list[list[int]] = []  # example indices per row
    room: list[tuple[int, int]] = []  # (free tokens, row index), sorted, for rows that have space
    used: list[int] = []
    for i in order:
        n = min(len(encoded[i].input_ids), cutoff_len)
        if n == 0:
            continue
        at = bisect.bisect_left(room, (n, -1))
        if at < len(room):
            free, r = room.pop(at)
        else:
            r = len(rows)
            rows.append([])
            used.append(0)
            free = cutoff_len
        rows[r].append(i)
        used[r] += n
        if free - n > 0:
            bisect.insort(room, (free - n, r))
    return [_row([encoded[i] for i in members], cutoff_len) for members in rows]


def _row(members: list[Encoded], cutoff_len: int) -> Packed:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    lengths: list[int] = []
    for ex in members:
        n = min(len(ex.input_ids), cutoff_len)
        ids += ex.input_ids[:n]
        labels += [IGNORE_INDEX] + ex.labels[1:n]
        positions += range(n)
        lengths.append(n)
    return Packed(ids, labels, positions, lengths, [ex.line for ex in members])
