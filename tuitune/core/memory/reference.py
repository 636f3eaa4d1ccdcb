"""Reference points for the estimator: published GPU peaks and CPU setups measured here.

Shared by tests/core/test_memory_accuracy.py (which asserts the tolerances) and
bench/memory_accuracy.py (which prints the table), so both check exactly the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tuitune.core.recipe import DEMO_MODEL, Recipe, derive_defaults, new_recipe

GiB = 2**30


@dataclass(frozen=True)
class PublishedPeak:
    """A peak memory figure someone measured on a GPU, and the setup it was measured with."""

    label: str
    model: str  # catalog name
    method: str
    values: dict[str, Any]  # recipe keys
    published_bytes: int
    # "allocated": torch.cuda.max_memory_allocated; "total": a whole-GPU reading (nvidia-smi-like),
    # compared with the estimate's total, which adds the CUDA context and the allocator margin.
    compare: str = "allocated"
    tolerance: float = 0.15
    note: str = ""

    def recipe(self) -> Recipe:
        return build_recipe(self.method, self.values)


def build_recipe(method: str, values: dict[str, Any]) -> Recipe:
    r = new_recipe(method)
    for key, value in values.items():
        r.set(key, value)
    derive_defaults(r, given=values, changed=values)
    return r


_MISTRAL = {
    "model.dtype": "bfloat16",
    "model.attn_implementation": "flash_attention_2",
    "lora.r": 16,
    "lora.target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "train.batch_size": 4,
    "data.cutoff_len": 4096,
    "data.packing": True,
    "train.gradient_checkpointing": True,
}


def _llama2_qlora(seq: int) -> dict[str, Any]:
    return {
        "model.dtype": "bfloat16",
        "model.attn_implementation": "flash_attention_2",
        "lora.r": 8,
        "lora.target_modules": "all-linear",
        "train.batch_size": 1,
        "data.cutoff_len": seq,
        "data.packing": True,
        "train.gradient_checkpointing": True,
    }


# The measurements quoted in issue 4 (peak memory of real fine-tuning runs on NVIDIA GPUs).
PUBLISHED: tuple[PublishedPeak, ...] = (
    PublishedPeak("Mistral-7B LoRA r16 qkvo, bf16, FA2, 4x4096 packed, checkpointing", "mistral-7b", "lora", _MISTRAL, int(24.87 * GiB)),
    PublishedPeak("Mistral-7B QLoRA NF4, same setup", "mistral-7b", "qlora", _MISTRAL, int(15.25 * GiB)),
    PublishedPeak(
        "Llama-3.2-3B full, pure bf16 AdamW, 2x4096, no checkpointing",
        "llama-3.2-3b",
        "full",
        {
            "model.dtype": "bfloat16",
            "train.mixed_precision": "no",
            "train.batch_size": 2,
            "data.cutoff_len": 4096,
            "data.packing": True,
            "train.gradient_checkpointing": False,
        },
        int(60.0 * GiB),
    ),
    *(
        PublishedPeak(
            f"Llama-2-7B QLoRA r8 all-linear, batch 1, checkpointing, FA2, seq {seq // 1024}k",
            "llama-2-7b",
            "qlora",
            _llama2_qlora(seq),
            gb * 10**9,
            compare="total",
            note="'about N GB' whole-GPU readings",
        )
        for seq, gb in ((1024, 6), (4096, 9), (8192, 12), (16384, 19), (32768, 32))
    ),
)


@dataclass(frozen=True)
class CpuSetup:
    """A training setup for the demo model measured on this machine's CPU."""

    method: str
    gradient_checkpointing: bool
    seq_len: int
    batch_size: int = 1
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        extra = "".join(f", {k.split('.')[-1]}={v}" for k, v in self.values.items())
        gc = "checkpointing" if self.gradient_checkpointing else "no checkpointing"
        return f"SmolLM2-135M {self.method}, {gc}, {self.batch_size}x{self.seq_len}{extra}"

    def recipe(self) -> Recipe:
        values = {
            "model.name_or_path": DEMO_MODEL,
            "train.batch_size": self.batch_size,
            "data.cutoff_len": self.seq_len,
            "data.packing": True,  # the measured batches are full-length rows without padding
            "train.gradient_checkpointing": self.gradient_checkpointing,
            **self.values,
        }
        return build_recipe(self.method, values)


# full / LoRA / QLoRA 4-bit x checkpointing on/off x two sequence lengths. Full fine-tuning of
# this small model peaks after the backward pass (every gradient plus the tied embedding's two being
# summed) or in the AdamW step, whatever the batch; freeze-tuning (last 2 layers) shows the
# activations of layers whose own weights train.
CPU_SETUPS: tuple[CpuSetup, ...] = (
    CpuSetup("full", False, 64),
    CpuSetup("full", True, 128, values={"train.optimizer": "sgd"}),
    CpuSetup("freeze", False, 128),
    CpuSetup("freeze", True, 128),
    CpuSetup("lora", False, 64),
    CpuSetup("lora", True, 64),
    CpuSetup("lora", False, 128),
    CpuSetup("lora", True, 128),
    CpuSetup("qlora", False, 64),
    CpuSetup("qlora", True, 64),
    CpuSetup("qlora", False, 128),
    CpuSetup("qlora", True, 128),
)


@dataclass(frozen=True)
class AccuracyRow:
    label: str
    reference_bytes: int
    estimate_bytes: int
    kind: str  # published | measured

    @property
    def error(self) -> float:
        return (self.estimate_bytes - self.reference_bytes) / self.reference_bytes


def published_rows() -> list[AccuracyRow]:
    from tuitune.core.memory import estimate
    from tuitune.core.models.spec import model_spec

    rows = []
    for p in PUBLISHED:
        # Measured with other tools' plain head (full logits), not the engine's chunked one.
        e = estimate(model_spec(p.model), p.recipe(), chunked_head=False)
        value = e.allocated_peak_bytes if p.compare == "allocated" else e.train_peak_bytes
        rows.append(AccuracyRow(p.label + (f" [{p.compare}]" if p.compare != "allocated" else ""), p.published_bytes, value, "published"))
    return rows


def measured_rows(setups: tuple[CpuSetup, ...] = CPU_SETUPS) -> list[AccuracyRow]:
    """Measure each setup on the CPU (one model load per method and optimizer) beside its estimate."""
    from tuitune.core.memory import estimate
    from tuitune.core.memory.probe import TrainingMemoryProbe
    from tuitune.core.models.spec import model_spec

    spec = model_spec(DEMO_MODEL)
    groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[int]] = {}
    for i, s in enumerate(setups):
        groups.setdefault((s.method, tuple(sorted(s.values.items()))), []).append(i)
    by_index: dict[int, AccuracyRow] = {}
    for indices in groups.values():
        probe = TrainingMemoryProbe(setups[indices[0]].recipe(), device="cpu")
        for i in indices:
            s = setups[i]
            m = probe.measure(batch_size=s.batch_size, seq_len=s.seq_len, gradient_checkpointing=s.gradient_checkpointing)
            e = estimate(spec, s.recipe(), device="cpu")
            by_index[i] = AccuracyRow(s.label, m.peak_bytes, e.allocated_peak_bytes, "measured")
        del probe
    return [by_index[i] for i in range(len(setups))]
