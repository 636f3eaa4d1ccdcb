"""Which GPUs a run (or a chat, an evaluation, an export) uses: read the user's choice, check it,
pick automatically, and name whoever else is on a chosen GPU.

Indices are the ones `tuitune hw` shows: CUDA's numbers in this process, which are nvidia-smi's
when CUDA_VISIBLE_DEVICES is not set. A child process is given `choice.env()`:
CUDA_DEVICE_ORDER=PCI_BUS_ID and CUDA_VISIBLE_DEVICES with the physical (NVML, PCI bus order)
numbers, so it sees exactly the chosen GPUs, in the order chosen, whatever this process's own
CUDA_VISIBLE_DEVICES says. `apply_to_environ` does the same for this process, before torch starts CUDA.

`auto` takes the GPUs with the most free memory that hold the memory estimate, idle ones first
(no other process, utilization under 10%), and says which it took and why.

Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tuitune.core.errors import UserError
from tuitune.core.units import format_bytes

if TYPE_CHECKING:
    from tuitune.core.hardware import GpuInfo

AUTO = "auto"
IDLE_UTILIZATION_PCT = 10  # below this, with no other process on it, a GPU counts as idle


def parse_gpus(text: str, flag: str = "--gpus") -> str | list[int]:
    """"auto", or "0,2" / "0 2" / "[0, 2]" as a list of distinct indices; UserError otherwise."""
    words = text.strip().strip("[]").replace(",", " ").split()
    if text.strip().lower() == AUTO:
        return AUTO
    if not words:
        raise UserError(f"{flag} {text!r}: no GPU given", f"{flag} 0,2 (the numbers `tuitune hw` shows) or {flag} auto")
    out: list[int] = []
    for word in words:
        if not word.isdigit():
            raise UserError(f"{flag} {text!r}: {word!r} is not a GPU index",
                            f"{flag} 0,2 (the numbers `tuitune hw` shows) or {flag} auto")
        if int(word) in out:
            raise UserError(f"{flag} {text!r}: GPU {word} is listed twice", f"{flag} 0,2")
        out.append(int(word))
    return out


def memory_text(g: GpuInfo) -> str:
    return f"{format_bytes(g.free_bytes)} free of {format_bytes(g.total_bytes)}" if g.free_bytes is not None else "memory unknown"


def describe(g: GpuInfo) -> str:
    """'GPU 1 (NVIDIA A100-SXM4-80GB, 41.6 GiB free of 80.0 GiB)'."""
    physical = f", physical {g.physical_index}" if g.physical_index not in (None, g.index) else ""
    return f"GPU {g.index} ({g.name}{physical}, {memory_text(g)})"


def holders(g: GpuInfo) -> str:
    """The other processes on a GPU: 'python3 (pid 40001, 38.0 GiB), ...'."""
    return ", ".join(
        f"{p.name} (pid {p.pid}" + (f", {format_bytes(p.used_bytes)})" if p.used_bytes is not None else ")")
        for p in g.processes
    )


def is_idle(g: GpuInfo) -> bool:
    return not g.processes and (g.utilization_pct is None or g.utilization_pct < IDLE_UTILIZATION_PCT)


def busy_warning(g: GpuInfo) -> str | None:
    """What to say about a chosen GPU that someone else uses (None when it is idle)."""
    if g.processes:
        return f"GPU {g.index} is in use by {holders(g)}: this run shares it"
    if not is_idle(g):
        return f"GPU {g.index} is {g.utilization_pct}% busy (a process this user cannot see): this run shares it"
    return None


def require_gpus(gpus: list[GpuInfo], indices: list[int], flag: str = "--gpus") -> list[GpuInfo]:
    """The GPUs with these indices, in this order; one UserError naming a wrong index and what exists."""
    by_index = {g.index: g for g in gpus}
    for i in indices:
        if i not in by_index:
            if not gpus:
                raise UserError(f"{flag}: GPU {i} does not exist: no GPU was found on this machine",
                                f"leave {flag} out (or use auto) to train on the CPU; `tuitune hw` shows what was found")
            there = ", ".join(f"GPU {g.index} ({g.name})" for g in gpus)
            raise UserError(f"{flag}: GPU {i} does not exist; this machine has {there}",
                            f"{flag} " + ",".join(str(g.index) for g in gpus[:2]) + f" or {flag} auto")
    return [by_index[i] for i in indices]


@dataclass
class GpuChoice:
    """The GPUs chosen (empty: none here, the CPU trains), how, and what to tell the user."""

    gpus: list[GpuInfo]
    auto: bool
    reason: str = ""  # for auto: which and why, in one sentence
    warnings: list[str] = field(default_factory=list)

    @property
    def indices(self) -> list[int]:
        return [g.index for g in self.gpus]

    @property
    def physical(self) -> list[int]:
        return [g.physical_index if g.physical_index is not None else g.index for g in self.gpus]

    @property
    def min_free_bytes(self) -> int | None:
        frees = [g.free_bytes for g in self.gpus]
        return None if not frees or None in frees else min(f for f in frees if f is not None)

    @property
    def bf16(self) -> bool:
        return all(g.bf16 is not False for g in self.gpus)

    def env(self) -> dict[str, str]:
        """What a child process needs to see only these GPUs (nothing when none were found here)."""
        if not self.gpus:
            return {}
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ",".join(map(str, self.physical))}

    def short_of_memory(self, need: int | None) -> list[GpuInfo]:
        """Chosen GPUs whose free memory is less than `need` bytes."""
        if not need:
            return []
        return [g for g in self.gpus if g.free_bytes is not None and g.free_bytes < need]


def _fits(g: GpuInfo, need: int | None) -> bool:
    return need is None or g.free_bytes is None or g.free_bytes >= need


def _ranked(gpus: list[GpuInfo], need: int | None) -> list[GpuInfo]:
    """Best first: fits the estimate, idle, most free memory, lowest index."""
    return sorted(gpus, key=lambda g: (not _fits(g, need), not is_idle(g), -(g.free_bytes or 0), g.index))


def choose_gpus(
    gpus: list[GpuInfo],
    request: str | list[int],
    *,
    count: int | None = None,
    need_for: Callable[[int], int | None] | None = None,
    grow: bool = False,
    flag: str = "--gpus",
) -> GpuChoice:
    """The GPUs for `request` ("auto" or indices) among `gpus` (the probe's).

    count: how many auto takes (default 1); need_for(n): bytes per GPU when n GPUs share the run
    (the memory estimate; None: unknown); grow: with no count, auto may take more GPUs until the
    estimate fits each (FSDP shards the model, so more GPUs need less each).
    """
    need_for = need_for or (lambda n: None)
    if request != AUTO:
        chosen = require_gpus(gpus, list(request), flag)
        return GpuChoice(chosen, False, "", [w for g in chosen if (w := busy_warning(g))])
    if not gpus:
        return GpuChoice([], True, "no GPU found here: the CPU trains")
    if count is not None and count > len(gpus):
        raise UserError(f"{count} processes need {count} GPUs but this machine has {len(gpus)}",
                        f"--nproc {len(gpus)} or fewer (one process per GPU)")
    n = count or 1
    if count is None and grow:
        while n < len(gpus) and not all(_fits(g, need_for(n)) for g in _ranked(gpus, need_for(n))[:n]):
            n += 1
        if not all(_fits(g, need_for(n)) for g in _ranked(gpus, need_for(n))[:n]):
            n = 1  # nothing fits: the best single GPU, refused or forced later
    need = need_for(n)
    chosen = _ranked(gpus, need)[:n]
    return GpuChoice(chosen, True, _reason(chosen, gpus, need), [w for g in chosen if (w := busy_warning(g))])


def _reason(chosen: list[GpuInfo], gpus: list[GpuInfo], need: int | None) -> str:
    names = ", ".join(str(g.index) for g in chosen)
    frees = ", ".join(format_bytes(g.free_bytes) for g in chosen)
    idle = all(is_idle(g) for g in chosen)
    why = f"the most free memory ({frees})" + (", idle" if idle else "")
    if need is not None:
        why += f"; the estimate needs {format_bytes(need)} per GPU"
    text = f"auto chose GPU {names}: {why}"
    passed = [g for g in gpus if g not in chosen and not is_idle(g) and g.processes]
    if passed:
        text += "; passed over " + "; ".join(f"GPU {g.index} (used by {holders(g)})" for g in passed)
    return text


def apply_to_environ(choice: GpuChoice, environ: dict[str, str] | None = None) -> None:
    """Make this process see only the chosen GPUs. Must run before torch initializes CUDA."""
    import sys

    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    torch = sys.modules.get("torch")
    if torch is not None and choice.gpus and torch.cuda.is_initialized():
        raise UserError("GPUs chosen after CUDA started in this process", "choose them first (--gpus)")
    environ.update(choice.env())
