"""Rows longer than cutoff_len: what is cut, and how much of each is still trained.

Every truncated row counts in one summary ("3 rows longer than cutoff_len (1,024): 260,000 tokens,
3,072 trained"); a row far longer (more than FAR times cutoff_len) is also a problem of its own,
with its line, so it can be found and fixed.
"""

from __future__ import annotations

from collections.abc import Sequence

from tuitune.core.data.records import DataProblem, Encoded

FAR = 2  # a row more than FAR x cutoff_len tokens long is reported on its own


def _count(n: int, estimated: bool) -> str:
    return f"{'about ' if estimated else ''}{n:,}"


def long_row_problems(encoded: Sequence[Encoded], cutoff_len: int) -> list[DataProblem]:
    """One problem per row far longer than cutoff_len, naming how many of its tokens are trained."""
    out = []
    for e in encoded:
        if e.truncated and e.full_length > FAR * cutoff_len:
            hint = "data.chunk_long_text = true trains all of it" if e.plain_text else "raise data.cutoff_len, or shorten the row"
            out.append(
                DataProblem(
                    e.line,
                    f"{_count(e.full_length, e.estimated)} tokens, far longer than cutoff_len {cutoff_len:,}: "
                    f"{e.trained_tokens:,} trained, the rest cut ({hint})",
                    e.file,
                )
            )
    return out


def long_rows_summary(encoded: Sequence[Encoded], cutoff_len: int) -> str | None:
    """One line about every row longer than cutoff_len (cut, or split into chunks), or None."""
    cut = [e for e in encoded if e.truncated]
    chunked: dict[tuple[str | None, int], list[Encoded]] = {}
    for e in encoded:
        if e.chunk is not None:
            chunked.setdefault((e.file, e.line), []).append(e)
    parts = []
    if cut:
        total = sum(e.full_length for e in cut)
        about = any(e.estimated for e in cut)
        s = "" if len(cut) == 1 else "s"
        parts.append(
            f"{len(cut):,} row{s} longer than cutoff_len ({cutoff_len:,}): {_count(total, about)} tokens, "
            f"{sum(e.trained_tokens for e in cut):,} trained"
        )
    long_texts = {k: v for k, v in chunked.items() if len(v) > 1}
    if long_texts:
        pieces = sum(len(v) for v in long_texts.values())
        tokens = sum(len(e.input_ids) for v in long_texts.values() for e in v)
        s = "" if len(long_texts) == 1 else "s"
        parts.append(f"{len(long_texts):,} long text{s} split into {pieces:,} chunks of up to {cutoff_len:,} tokens ({tokens:,} tokens, all trained)")
    return "; ".join(parts) or None
