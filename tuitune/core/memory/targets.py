"""What a memory plan is checked against: one GPU of this machine, all of them, or a card size.

A plan needs three facts about the hardware: the bytes available per GPU, how many GPUs share the
run, and whether they do bfloat16. They come from the hardware report (free memory, read live) or,
on a machine without the GPU you mean to rent, from a card size ("24GB"). Interfaces list the
targets and let the user pick; `fit_plan.plan` takes the three facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.hardware import HardwareReport

# Sizes of the cards people most often rent or own (24 GB: RTX 3090/4090, A10G, L4; 48 GB: A6000,
# L40S; 80 GB: A100, H100). Cards are sold in binary sizes, so 24 GB means 24 GiB (core.units).
COMMON_CARDS_GIB = (24, 48, 80)


@dataclass(frozen=True)
class PlanTarget:
    """Where a plan would run. `kind`: gpu (one GPU here), chosen (the GPUs marked for the run, one
    process each), all (every GPU here, one run across them) or card (a card size, not necessarily here)."""

    kind: str
    available_bytes: int | None  # per GPU; None when the GPU's memory cannot be read
    n_gpus: int = 1
    bf16: bool = True
    index: int | None = None  # kind gpu: CUDA's number
    name: str = ""  # kind gpu: the card's name; kind all: the names joined when they differ
    total_bytes: int | None = None  # kind gpu: the card's memory; kind card: its size
    indices: tuple[int, ...] = ()  # kind chosen: the GPUs, as `tuitune hw` numbers them

    @property
    def key(self) -> str:
        """A stable identifier for choosers: "gpu:0", "gpus:0,2", "all", "card:25769803776"."""
        if self.kind == "gpu":
            return f"gpu:{self.index}"
        if self.kind == "chosen":
            return "gpus:" + ",".join(map(str, self.indices))
        if self.kind == "card":
            return f"card:{self.available_bytes}"
        return "all"

    @property
    def here(self) -> bool:
        """Memory read from this machine (changes as other processes come and go)."""
        return self.kind != "card"


def gpu_targets(report: HardwareReport) -> list[PlanTarget]:
    """Each GPU here by its free memory, then (with several) all of them for one multi-GPU run,
    planned per GPU against the fullest one: DDP and FSDP put the same share on every rank."""
    out = [
        PlanTarget("gpu", g.free_bytes, 1, g.bf16 is not False, g.index, g.name, g.total_bytes)
        for g in report.gpus
    ]
    if len(report.gpus) > 1:
        frees = [g.free_bytes for g in report.gpus]
        names = list(dict.fromkeys(g.name for g in report.gpus))
        out.append(
            PlanTarget(
                "all",
                None if None in frees else min(f for f in frees if f is not None),
                len(report.gpus),
                all(g.bf16 is not False for g in report.gpus),
                None,
                " + ".join(names),
                min((g.total_bytes or 0) for g in report.gpus) or None,
            )
        )
    return out


def chosen_target(report: HardwareReport, indices: list[int] | tuple[int, ...]) -> PlanTarget | None:
    """The GPUs chosen for a run (train.gpus), planned per GPU against the one with the least free
    memory; None when none is chosen or one of them is not here."""
    by_index = {g.index: g for g in report.gpus}
    if not indices or any(i not in by_index for i in indices):
        return None
    gpus = [by_index[i] for i in indices]
    frees = [g.free_bytes for g in gpus]
    return PlanTarget(
        "chosen",
        None if None in frees else min(f for f in frees if f is not None),
        len(gpus),
        all(g.bf16 is not False for g in gpus),
        None,
        " + ".join(dict.fromkeys(g.name for g in gpus)),
        min((g.total_bytes or 0) for g in gpus) or None,
        tuple(indices),
    )


def card_target(size: str | int) -> PlanTarget:
    """A card of this size: "24GB", "80 GiB", "24" (GB understood) or bytes as an int."""
    from tuitune.core.units import parse_bytes

    if isinstance(size, int):
        nbytes = size
    else:
        text = size.strip()
        if text.replace(".", "", 1).isdigit():
            text += "GB"  # a bare number is a card size in GB, the way cards are sold
        try:
            nbytes = parse_bytes(text)
        except ValueError as e:
            raise UserError(f"card size: {e}", "e.g. 24GB, 48GB, 80GB or 141GB") from None
    if nbytes < 2**30:
        raise UserError(f"card size {size!r} is less than 1 GB", "e.g. 24GB, 48GB, 80GB or 141GB")
    return PlanTarget("card", nbytes, total_bytes=nbytes)


def plan_targets(report: HardwareReport, cards: tuple[int, ...] = COMMON_CARDS_GIB) -> list[PlanTarget]:
    """The GPUs here (see gpu_targets), then the common card sizes."""
    return gpu_targets(report) + [card_target(gib * 2**30) for gib in cards]


def default_target(report: HardwareReport) -> PlanTarget:
    """The GPU with the most free memory (what a single-GPU run would pick), else a 24 GB card."""
    gpus = [t for t in gpu_targets(report) if t.kind == "gpu" and t.available_bytes is not None]
    if gpus:
        return max(gpus, key=lambda t: t.available_bytes or 0)
    return card_target(COMMON_CARDS_GIB[0] * 2**30)
