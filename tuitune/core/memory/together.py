"""Memory of several LoRA jobs trained together on one base (`tuitune estimate --together`).

The base weights are counted once; each job adds its adapter, its optimizer states and, while it
steps, its gradients (the estimator's `state_memory` per job). What is alive at once depends on
the schedule (engine.together):
- round-robin: one job's step at a time; the others hold their adapter and optimizer states only
  (their gradients were zeroed after their step). Peak = base + every job's states + the largest
  job's step.
- fused: every job's micro-batch runs in one forward, right-padded to the widest row, so the saved
  activations of all jobs are alive together (each at the group's width); the losses are formed
  one job at a time (only one job's logits alive), then one backward gives every job its
  gradients, which stay until each job has stepped.
Beside it: the same jobs as separate processes (each its own base, CUDA context and margin).
Pure arithmetic, like the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuitune.core.memory.estimator import (
    ALLOCATOR_MARGIN,
    CUDA_CONTEXT_BYTES,
    MemoryEstimate,
    activation_memory,
    estimate_setup,
    state_memory,
    step_phases,
    verdict_for,
)
from tuitune.core.memory.parameters import optimizer_temporaries
from tuitune.core.memory.setup import Setup, resolve_setup

if TYPE_CHECKING:
    from tuitune.core.models.spec import ModelSpec
    from tuitune.core.recipe import Recipe


@dataclass
class JobShare:
    """One job's part of the group: what it keeps for the whole run and what its step adds."""

    name: str
    adapter_bytes: int
    optimizer_bytes: int
    gradient_bytes: int
    step_bytes: int  # its step's peak above the states (activations, logits, gradients, temporaries)
    alone_bytes: int  # the same recipe trained alone (its own process)
    trainable_params: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GroupEstimate:
    schedule: str
    components: dict[str, int]  # the estimator's keys, at the group's peak
    allocated_peak_bytes: int
    train_peak_bytes: int
    peak_phase: str
    phases: dict[str, int]
    verdict: str
    available_bytes: int | None
    jobs: list[JobShare]
    alone: list[MemoryEstimate]
    notes: list[str] = field(default_factory=list)
    measured: Any = None  # estimate --measure --together

    @property
    def separate_bytes(self) -> int:
        """The jobs as separate processes at the same time: every one holds its own base."""
        return sum(e.train_peak_bytes for e in self.alone)

    @property
    def saved_fraction(self) -> float:
        return 1 - self.train_peak_bytes / self.separate_bytes if self.separate_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = {
            "schedule": self.schedule,
            "total_bytes": self.train_peak_bytes,
            "allocated_peak_bytes": self.allocated_peak_bytes,
            "components": dict(self.components),
            "peak_phase": self.peak_phase,
            "phases": dict(self.phases),
            "verdict": self.verdict,
            "available_bytes": self.available_bytes,
            "separate_total_bytes": self.separate_bytes,
            "separate_verdict": verdict_for(self.separate_bytes, self.available_bytes),
            "saved_fraction": round(self.saved_fraction, 4),
            "jobs": [j.to_dict() for j in self.jobs],
            "notes": list(self.notes),
        }
        if self.measured is not None:
            out["measured"] = self.measured
        return out


def estimate_together(
    spec: ModelSpec,
    recipes: list[Recipe],
    available_bytes: int | None = None,
    *,
    schedule: str = "fused",
    device: str = "cuda",
    bf16: bool = True,
    shapes: list[tuple[int, int, float]] | None = None,
) -> GroupEstimate:
    """The group's training peak under `schedule`, and each job alone.

    shapes: per job (batch rows, width, trained fraction) when the batches are known (`--measure`);
    else each recipe's batch size and cutoff_len with every token trained (the planner's worst case).
    """
    if schedule == "fused" and shapes is None:
        width = max(r.data.cutoff_len for r in recipes)  # rows are padded to the group's widest
        shapes = [(r.train.batch_size, width, 1.0) for r in recipes]
    setups = [
        resolve_setup(r, device=device, bf16=bf16, batch_size=sh[0], seq_len=sh[1], trained_fraction=sh[2])
        if sh else resolve_setup(r, device=device, bf16=bf16)
        for r, sh in zip(recipes, shapes or [None] * len(recipes), strict=True)
    ]
    states = [state_memory(spec, s) for s in setups]
    acts = [activation_memory(spec, s) for s in setups]
    static = states[0].weights + sum(st.adapter + st.optimizer + st.master for st in states)
    if schedule == "fused":
        phases = _fused_phases(spec, setups, states, acts)
    else:
        phases = {}
        for r, s, st, act in zip(recipes, setups, states, acts, strict=True):
            for phase, parts in step_phases(spec, s, st, act).items():
                phases[f"{r.name}: {phase}"] = parts
    totals = {k: static + sum(v.values()) for k, v in phases.items()}
    peak_phase = max(totals, key=lambda k: totals[k])
    allocated = int(totals[peak_phase])
    at_peak = phases[peak_phase]
    components = {
        "weights": int(states[0].weights),
        "adapter": int(sum(st.adapter for st in states)),
        "gradients": int(at_peak["gradients"]),
        "optimizer": int(sum(st.optimizer for st in states)),
        "master_weights": int(sum(st.master for st in states)),
        "activations": int(at_peak["activations"]),
        "logits": int(at_peak["logits"]),
        "workspace": int(at_peak["workspace"]),
        "cuda_context": CUDA_CONTEXT_BYTES if device == "cuda" else 0,
        "allocator_margin": int(ALLOCATOR_MARGIN * allocated),
    }
    total = sum(components.values())
    alone = [estimate_setup(spec, resolve_setup(r, device=device, bf16=bf16), available_bytes) for r in recipes]
    jobs = [
        JobShare(
            name=r.name,
            adapter_bytes=int(st.adapter),
            optimizer_bytes=int(st.optimizer),
            gradient_bytes=int(st.gradients),
            step_bytes=int(max(sum(p.values()) for p in step_phases(spec, s, st, act).values())),
            alone_bytes=e.train_peak_bytes,
            trainable_params=st.trainable,
        )
        for r, s, st, act, e in zip(recipes, setups, states, acts, alone, strict=True)
    ]
    notes = []
    if schedule == "fused" and len({r.data.cutoff_len for r in recipes}) > 1:
        notes.append("fused: every job's rows are padded to the widest job's (cutoff_len differs between the recipes)")
    return GroupEstimate(
        schedule=schedule,
        components=components,
        allocated_peak_bytes=allocated,
        train_peak_bytes=int(total),
        peak_phase=peak_phase,
        phases={k: int(v) for k, v in totals.items()},
        verdict=verdict_for(int(total), available_bytes),
        available_bytes=available_bytes,
        jobs=jobs,
        alone=alone,
        notes=notes,
    )


def _fused_phases(spec: ModelSpec, setups: list[Setup], states: list[Any], acts: list[Any]) -> dict[str, dict[str, float]]:
    """The moments of one fused step (engine.together.fused.fused_step), beyond the static states."""
    saved = sum(a.saved for a in acts)
    during = sum(st.grads_during_forward for st in states)
    transient = max(a.transient for a in acts)
    # The last hidden states' gradient, filled job by job by the losses' backward, alive until the
    # decoder's backward ends: every row x hidden, in the dtype of the residual stream.
    hidden_grad = sum(s.tokens for s in setups) * spec.hidden_size * setups[0].weight_bytes
    gradients = sum(st.gradients for st in states)
    temporaries = max(optimizer_temporaries(spec, s, st.trainable) for s, st in zip(setups, states, strict=True))
    return {
        "forward": {"activations": saved, "logits": 0.0, "gradients": during, "workspace": transient},
        "loss": {"activations": saved, "logits": max(a.loss_forming for a in acts), "gradients": during,
                 "workspace": hidden_grad},
        "loss backward": {"activations": saved, "logits": max(a.loss_backward for a in acts), "gradients": during,
                          "workspace": hidden_grad},
        "layer backward": {
            "activations": saved - sum(a.final_norm for a in acts) + sum(a.recompute for a in acts),
            "logits": 0.0,
            "gradients": during,
            "workspace": hidden_grad + sum(a.layer_workspace for a in acts) + transient,
        },
        "backward end": {"activations": 0.0, "logits": 0.0, "gradients": gradients, "workspace": hidden_grad},
        "optimizer step": {"activations": 0.0, "logits": 0.0, "gradients": gradients, "workspace": temporaries},
    }
