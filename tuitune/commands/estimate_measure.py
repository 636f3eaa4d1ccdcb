"""`tuitune estimate --measure RECIPE`: the estimate, then the real peak of two steps beside it.

The measurement is tuitune.core.engine.measure (the training engine's own model, batches,
optimizer and loss). The error compares it with the estimate for the batches that were really
measured (their width and share of labelled tokens), so it judges the estimator and not the data;
the planning estimate (cutoff_len, every token labelled) is shown too: it is the worst case.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def comparison(spec: Any, rec: Any, m: Any, device: str, bf16: bool) -> dict[str, Any]:
    """The estimate at the measured batch shape and its error against each measured phase."""
    from tuitune.core.memory import estimate

    out: dict[str, Any] = {}
    if not m.batch_size:
        return out
    e = estimate(spec, rec, device=device, bf16=bf16, batch_size=m.batch_size, seq_len=m.seq_len,
                 trained_fraction=m.trained_fraction)
    loaded = e.components["weights"] + e.components["adapter"]
    rows = {
        "after_load": (m.after_load_bytes, loaded),
        "train_step": (m.train_peak_bytes if m.fits else None, e.allocated_peak_bytes),
        "eval": (m.eval_peak_bytes, e.eval_peak_bytes),
    }
    for key, (measured, estimated) in rows.items():
        out[key] = {
            "measured_bytes": measured,
            "estimate_bytes": int(estimated),
            "error": None if not measured else round((estimated - measured) / measured, 4),
        }
    out["estimate_peak_phase"] = e.peak_phase
    return out


def run_measure(args: argparse.Namespace, rec: Any) -> int:
    from tuitune.commands.estimate import render
    from tuitune.core.engine.measure import measure_recipe
    from tuitune.core.errors import UserError
    from tuitune.core.memory.fit_plan import plan
    from tuitune.core.models.loading import bf16_supported, pick_device
    from tuitune.core.models.precision import cpu_bf16_native
    from tuitune.core.models.spec import model_spec

    here = pick_device()
    device = args.device or here
    if device == "cuda" and here != "cuda":
        raise UserError("--device cuda: no CUDA GPU is visible here", "measure on the CPU (leave out --device)")
    bf16 = bf16_supported(device) if device == "cuda" else cpu_bf16_native()
    spec = model_spec(rec.model_path)
    available, where = _available_here(args, device)
    result = plan(spec, rec, available, device=device, bf16=bf16)

    m = measure_recipe(rec, device)
    measured = m.to_dict()
    measured["comparison"] = comparison(spec, rec, m, device, bf16)
    measured["estimate_total_bytes"] = result.estimate.train_peak_bytes
    measured["estimate_allocated_bytes"] = result.estimate.allocated_peak_bytes
    result.estimate.measured = measured
    if args.json:
        d = result.to_dict()
        d["model"] = {"name": spec.name, "source": spec.source, "params": spec.total_params}
        d["method"] = rec.method.type
        d["available_from"] = where
        print(json.dumps(d, indent=2))
    else:
        from rich.console import Console

        console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
        for part in render(spec, rec, result, where, {}):
            console.print(part)
        for part in render_measured(m, measured, result.estimate):
            console.print(part)
    return 0 if m.fits else 1


def _available_here(args: argparse.Namespace, device: str) -> tuple[int | None, str]:
    from tuitune.commands.estimate import _available

    probe_args = argparse.Namespace(**{**vars(args), "device": device})
    available, where, _bf16 = _available(probe_args)
    return available, where


def render_measured(m: Any, measured: dict[str, Any], est: Any) -> list:
    from rich.table import Table
    from rich.text import Text

    from tuitune.core.engine.measure import STEPS
    from tuitune.core.units import format_bytes

    what = "torch.cuda.max_memory_allocated" if m.device == "cuda" else "live tensor bytes (TorchDispatchMode)"
    out: list = []
    for w in m.warnings:
        out.append(Text(f"warning: {w}", style="yellow"))
    if not m.fits:
        where = "while loading the model" if m.failed_at_step == 0 else f"measured at step {m.failed_at_step}"
        if m.failed_at_step and m.failed_at_step > STEPS:
            where = "measured in the evaluation batch"
        out.append(Text.assemble(("Measured: ", "bold"), (f"does not fit, {where}", "red"), f" on {m.device}: {m.failure}"))
    comp = measured.get("comparison") or {}
    if not comp:
        return out
    out.append(Text.assemble(
        ("Measured", "bold"),
        f" on {m.device} ({what}): {STEPS} training steps and 1 eval batch of {m.batch_size} x {m.seq_len} tokens, "
        f"{100 * m.trained_fraction:.0f}% of positions trained, {m.seconds:.1f} s",
    ))
    t = Table()
    t.add_column("phase")
    t.add_column("measured", justify="right")
    t.add_column("estimate", justify="right")
    t.add_column("error", justify="right")
    labels = {"after_load": "after load", "train_step": f"training step peak (step {m.peak_step})", "eval": "eval batch peak"}
    for key, label in labels.items():
        row = comp.get(key)
        if not row:
            continue
        got = row["measured_bytes"]
        err = row["error"]
        t.add_row(
            label,
            format_bytes(got) if got is not None else "-",
            format_bytes(row["estimate_bytes"]),
            f"{100 * err:+.1f}%" if err is not None else "-",
        )
    out.append(t)
    out.append(
        f"Estimate for the recipe's worst case ({est.setup.batch_size} x {est.setup.seq_len} tokens, every position "
        f"trained): {format_bytes(est.allocated_peak_bytes)} allocated, {format_bytes(est.train_peak_bytes)} total "
        "with CUDA context and allocator margin."
        if est.setup.device == "cuda"
        else f"Estimate for the recipe's worst case ({est.setup.batch_size} x {est.setup.seq_len} tokens, every position "
        f"trained): {format_bytes(est.allocated_peak_bytes)} allocated."
    )
    return out
