"""Byte sizes as people write them: "24GB", "80 GiB", "512MiB", "1.5T".

GPU cards are sold in binary sizes ("24 GB" cards hold 24 GiB), so GB and GiB both mean 2**30
here; write the exact number of bytes when that matters.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """'24GB' -> 25769803776. ValueError (with what is allowed) for anything else."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a size: use e.g. 24GB, 80GiB, 16384MB")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"{text!r} must be more than 0")
    return int(value)


def format_bytes(n: float | None, digits: int = 1) -> str:
    """25769803776 -> '24.0 GiB'; None -> '?'."""
    if n is None:
        return "?"
    n = float(n)
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.{digits}f} {unit}"
    return f"{int(n)} B"


def format_count(n: int | None) -> str:
    """6738415616 -> '6.74B'; 460800 -> '460.8K'."""
    if n is None:
        return "?"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}" if n / size < 100 else f"{n / size:.1f}{unit}"
    return str(n)
