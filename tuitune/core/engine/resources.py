"""Memory figures for step events: CUDA allocator numbers on GPU, the process's RSS always."""

from __future__ import annotations

import resource
import sys
from typing import Any


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil missing or /proc unreadable: report nothing
        return None


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def memory_snapshot(device: str) -> dict[str, Any]:
    """{device, allocated, reserved, peak, rss} in bytes; allocated/reserved are null on CPU."""
    if device.startswith("cuda"):
        import torch

        return {
            "device": "cuda",
            "allocated": int(torch.cuda.memory_allocated()),
            "reserved": int(torch.cuda.memory_reserved()),
            "peak": int(torch.cuda.max_memory_allocated()),
            "rss": _rss_bytes(),
        }
    return {"device": "cpu", "allocated": None, "reserved": None, "peak": _peak_rss_bytes(), "rss": _rss_bytes()}


def gpu_totals() -> tuple[int, int] | None:
    """(free, total) bytes of the current GPU, or None without one."""
    try:
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return int(free), int(total)
    except Exception:  # noqa: BLE001 - a broken driver must not hide the original error
        return None
    return None
