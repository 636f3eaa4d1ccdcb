"""The fit planner: which methods fit, how far batch and sequence can go, and what would make it fit.

Built on `memory.estimate`, which is cheap enough to call a few hundred times. The searches rely
on the estimate growing with batch size and sequence length (checked by a property test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tuitune.core.memory.estimator import (
    VERDICT_FITS,
    VERDICT_NO,
    MemoryEstimate,
    estimate_setup,
    offloads,
    verdict_for,
)
from tuitune.core.memory.setup import Setup, resolve_setup
from tuitune.core.recipe.methods import trains_base_weights

if TYPE_CHECKING:
    from tuitune.core.models.spec import ModelSpec
    from tuitune.core.recipe import Recipe

# The rows of the methods table: (label, method.type, quantization.bits)
METHOD_ROWS = (
    ("full", "full", 0),
    ("freeze", "freeze", 0),
    ("lora", "lora", 0),
    ("qlora-8bit", "qlora", 8),
    ("qlora-4bit", "qlora", 4),
)
MAX_BATCH = 4096
# A suggestion must save at least this share of the estimate: 8-bit AdamW on a LoRA adapter saves
# a few MB of a 40 GB peak, which is no advice at all.
MIN_SAVING = 0.02
MIN_SEQ = 16
MAX_SEQ = 1 << 20


@dataclass
class MethodFit:
    label: str
    method: str
    bits: int
    total_bytes: int
    verdict: str
    trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.label,
            "total_bytes": self.total_bytes,
            "verdict": self.verdict,
            "trainable_params": self.trainable_params,
        }


@dataclass
class Suggestion:
    """A concrete change (recipe keys and values) and what the estimate becomes with it."""

    text: str
    changes: dict[str, Any]
    total_bytes: int
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.text, "set": dict(self.changes), "total_bytes": self.total_bytes, "verdict": self.verdict}


@dataclass
class FitPlan:
    estimate: MemoryEstimate
    methods: list[MethodFit]
    max_batch: int | None  # largest batch size that fits (0: not even 1; None: no memory figure)
    max_seq: int | None  # longest sequence that fits at the chosen batch size (0: not even MIN_SEQ)
    suggestions: list[Suggestion] = field(default_factory=list)
    available_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.estimate.to_dict()
        d.update(
            {
                "methods": [m.to_dict() for m in self.methods],
                "max_batch_size": self.max_batch,
                "max_seq_len": self.max_seq,
                "suggestions": [s.to_dict() for s in self.suggestions],
            }
        )
        return d


def _total(spec: ModelSpec, s: Setup) -> int:
    return estimate_setup(spec, s).train_peak_bytes


def _fits(spec: ModelSpec, s: Setup, available: int) -> bool:
    return _total(spec, s) <= available


def max_batch_size(spec: ModelSpec, s: Setup, available: int) -> int:
    """Largest batch size (1..MAX_BATCH) whose estimate fits in `available`; 0 when none does."""
    if not _fits(spec, replace(s, batch_size=1), available):
        return 0
    lo, hi = 1, 2
    while hi <= MAX_BATCH and _fits(spec, replace(s, batch_size=hi), available):
        lo, hi = hi, hi * 2
    hi = min(hi, MAX_BATCH + 1)
    while hi - lo > 1:  # lo fits, hi does not (or is past the cap)
        mid = (lo + hi) // 2
        if _fits(spec, replace(s, batch_size=mid), available):
            lo = mid
        else:
            hi = mid
    return lo


def max_seq_len(spec: ModelSpec, s: Setup, available: int, limit: int | None = None) -> int:
    """Longest sequence (MIN_SEQ..limit) that fits at the setup's batch size; 0 when none does."""
    limit = limit or MAX_SEQ
    if not _fits(spec, replace(s, seq_len=MIN_SEQ), available):
        return 0
    lo, hi = MIN_SEQ, limit + 1
    if _fits(spec, replace(s, seq_len=limit), available):
        return limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _fits(spec, replace(s, seq_len=mid), available):
            lo = mid
        else:
            hi = mid
    return lo if lo < 64 else lo - lo % 64  # round to a multiple of 64, the way people set it


def _method_setup(s: Setup, method: str, bits: int) -> Setup:
    return replace(s, method=method, quant_bits=bits)


def plan(
    spec: ModelSpec,
    recipe: Recipe,
    available_bytes: int | None,
    *,
    device: str = "cuda",
    bf16: bool = True,
    n_gpus: int = 1,
    batch_size: int | None = None,
    seq_len: int | None = None,
) -> FitPlan:
    """Estimate the recipe, compare the methods, search batch/sequence limits, suggest fixes."""
    s = resolve_setup(recipe, device=device, bf16=bf16, n_gpus=n_gpus, batch_size=batch_size, seq_len=seq_len)
    est = estimate_setup(spec, s, available_bytes)
    methods = []
    for label, method, bits in METHOD_ROWS:
        e = estimate_setup(spec, _method_setup(s, method, bits), available_bytes)
        methods.append(MethodFit(label, method, bits, e.train_peak_bytes, e.verdict, e.trainable_params))
    if available_bytes is None:
        return FitPlan(est, methods, None, None, [], None)
    limit = spec.max_position_embeddings or None
    mb = max_batch_size(spec, s, available_bytes)
    ms = max_seq_len(spec, s, available_bytes, limit)
    suggestions = suggest(spec, s, available_bytes, est) if est.verdict != VERDICT_FITS else []
    return FitPlan(est, methods, mb, ms, suggestions, available_bytes)


def suggest(spec: ModelSpec, s: Setup, available: int, est: MemoryEstimate) -> list[Suggestion]:
    """Changes that would make a setup that does not fit (or is tight) fit, each one estimated.

    Single changes first, cheapest in quality and speed first; when none is enough alone, the
    combination of all memory savers is tried as well.
    """
    out: list[Suggestion] = []

    def add(text: str, changes: dict[str, Any], new: Setup) -> None:
        total = _total(spec, new)
        if est.train_peak_bytes - total >= MIN_SAVING * est.train_peak_bytes:
            out.append(Suggestion(text, changes, total, verdict_for(total, available)))

    savers: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    if not s.gradient_checkpointing:
        savers.append(
            (
                "turn on gradient checkpointing (~20-30% slower, far fewer saved activations)",
                {"train.gradient_checkpointing": True},
                {"gradient_checkpointing": True},
            )
        )
    if s.device == "cuda" and not offloads(s):
        # Offloading only pays where checkpointing alone is not enough (it costs PCIe copies).
        ckpt = replace(s, gradient_checkpointing=True)
        if verdict_for(_total(spec, ckpt), available) != VERDICT_FITS:
            savers.append(
                (
                    "gradient checkpointing with its checkpoints offloaded to CPU RAM (slower by the PCIe copies)",
                    {"train.gradient_checkpointing": True, "train.offload_activations": True},
                    {"gradient_checkpointing": True, "offload_activations": True},
                )
            )
    if s.device == "cuda" and s.optimizer in ("adamw_torch", "paged_adamw_32bit"):
        savers.append(
            ("use the 8-bit AdamW optimizer (bitsandbytes)", {"train.optimizer": "adamw_8bit"}, {"optimizer": "adamw_8bit"})
        )
    if s.attention == "eager":
        savers.append(
            ("use sdpa attention instead of eager", {"model.attn_implementation": "sdpa"}, {"attention": "sdpa"})
        )
    if trains_base_weights(s.method):
        savers.append(("train LoRA adapters instead of the full model", {"method.type": "lora"}, {"method": "lora"}))
    if s.method == "lora" or trains_base_weights(s.method) or (s.method == "qlora" and s.quant_bits == 8):
        savers.append(
            (
                "use QLoRA: 4-bit NF4 base weights with LoRA adapters",
                {"method.type": "qlora", "quantization.bits": 4},
                {"method": "qlora", "quant_bits": 4},
            )
        )
    for text, changes, fields in savers:
        add(text, changes, replace(s, **fields))

    if s.batch_size > 1:
        mb = max_batch_size(spec, s, available)
        if mb >= 1:
            accum = math.ceil(s.batch_size * s.gradient_accumulation / mb)
            add(
                f"batch size {mb} with gradient accumulation {accum} (same effective batch, slower)",
                {"train.batch_size": mb, "train.gradient_accumulation": accum},
                replace(s, batch_size=mb, gradient_accumulation=accum),
            )
    ms = max_seq_len(spec, s, available)
    if 0 < ms < s.seq_len:
        add(
            f"shorter sequences: cutoff_len {ms} (longer examples are truncated)",
            {"data.cutoff_len": ms},
            replace(s, seq_len=ms),
        )

    if not any(x.verdict != VERDICT_NO for x in out) and savers:
        combined: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        useful = [(t, c, f) for t, c, f in savers if any(x.changes == c for x in out)]
        for _text, changes, f in useful:
            if "method.type" in changes and changes.get("method.type") == "lora" and any(
                c.get("method.type") == "qlora" for _, c, _ in useful
            ):
                continue  # QLoRA supersedes plain LoRA in the combination
            combined.update(changes)
            fields.update(f)
        if s.batch_size > 1:
            combined.update({"train.batch_size": 1, "train.gradient_accumulation": s.batch_size * s.gradient_accumulation})
            fields.update({"batch_size": 1, "gradient_accumulation": s.batch_size * s.gradient_accumulation})
        new = replace(s, **fields)
        ms = max_seq_len(spec, new, available)
        if 0 < ms < s.seq_len:
            combined["data.cutoff_len"] = ms
            new = replace(new, seq_len=ms)
        add("all of these together: " + ", ".join(f"{k} = {_show(v)}" for k, v in combined.items()), combined, new)
    if not any(x.verdict != VERDICT_NO for x in out):
        out.append(
            Suggestion(
                "no single-GPU setup found: use several GPUs with FSDP (tuitune train --nproc N, "
                "distributed.strategy = \"fsdp\"), a larger GPU, or a smaller model",
                {},
                est.train_peak_bytes,
                VERDICT_NO,
            )
        )
    # Fitting suggestions first, then the rest, each group in the order above.
    out.sort(key=lambda x: x.verdict == VERDICT_NO)
    return out


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)
