"""Memory figures for step events: CUDA allocator numbers on GPU, the process's RSS always, and
with several processes (or on a GPU) one entry per rank, so a view can show every GPU's memory."""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

# One rank's figures, gathered as a row of int64 (-1: unknown): rank, physical GPU, allocated,
# reserved, peak, total, rss.
DEVICE_FIELDS = ("rank", "gpu", "allocated", "reserved", "peak", "total", "rss")


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - psutil missing or /proc unreadable: report nothing
        return None


def _peak_rss_bytes() -> int:
    """This process's own peak resident memory. On Linux, VmHWM of /proc/self/status: ru_maxrss
    there keeps the peak of the process that started this one (the kernel carries it across fork
    and exec), so a trainer started by a TUI holding a model would report the TUI's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def visible_gpus(environ: Any = None) -> list[int] | None:
    """The physical GPU numbers CUDA_VISIBLE_DEVICES gives this process (None: unset or not numbers)."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    items = [x.strip() for x in value.split(",") if x.strip()]
    return [int(x) for x in items] if all(x.isdigit() for x in items) else None


def memory_snapshot(device: str, world_size: int = 1) -> dict[str, Any]:
    """{device, allocated, reserved, peak, rss} in bytes for this process; allocated/reserved are
    null on CPU. `devices`: every rank's figures ({rank, gpu, allocated, reserved, peak, total, rss}),
    on a GPU or with several processes. With world_size > 1 every rank must call it (a collective)."""
    if device.startswith("cuda"):
        import torch

        mine = {
            "device": "cuda",
            "allocated": int(torch.cuda.memory_allocated()),
            "reserved": int(torch.cuda.memory_reserved()),
            "peak": int(torch.cuda.max_memory_allocated()),
            "rss": _rss_bytes(),
        }
    else:
        mine = {"device": "cpu", "allocated": None, "reserved": None, "peak": _peak_rss_bytes(), "rss": _rss_bytes()}
    if device.startswith("cuda") or world_size > 1:
        mine["devices"] = _every_rank(mine, device, world_size)
    return mine


def _every_rank(mine: dict[str, Any], device: str, world_size: int) -> list[dict[str, Any]]:
    import torch

    row = dict(mine, rank=int(os.environ.get("RANK", 0)), gpu=None, total=None)
    if device.startswith("cuda"):
        index = torch.cuda.current_device()
        visible = visible_gpus()
        row["gpu"] = visible[index] if visible and index < len(visible) else index
        row["total"] = int(torch.cuda.get_device_properties(index).total_memory)
    values = torch.tensor([-1 if row[k] is None else int(row[k]) for k in DEVICE_FIELDS], dtype=torch.int64)
    dist = torch.distributed
    if world_size > 1 and dist.is_available() and dist.is_initialized():
        values = values.to("cuda" if device.startswith("cuda") else "cpu")
        rows = [torch.zeros_like(values) for _ in range(dist.get_world_size())]
        dist.all_gather(rows, values)
    else:
        rows = [values]
    return [{k: (None if v < 0 else v) for k, v in zip(DEVICE_FIELDS, r.tolist(), strict=True)} for r in rows]


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
