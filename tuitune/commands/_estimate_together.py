"""`tuitune estimate --together A B ...` (part of `estimate`): memory of recipes trained together on one
base beside the same recipes as separate runs; `--measure` trains two steps of each, together, here."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def load_recipes(args: argparse.Namespace) -> list[Any]:
    """Each --together recipe with the command line's options (--set, --batch-size, ...) applied."""
    from tuitune.commands.estimate import build_recipe

    return [build_recipe(argparse.Namespace(**{**vars(args), "recipe": path, "model": None})) for path in args.together]


def run_together(args: argparse.Namespace) -> int:
    from tuitune.commands.estimate import COMMON_CARDS_GIB, _available
    from tuitune.core.engine.together.plan import check_together
    from tuitune.core.errors import UserError
    from tuitune.core.memory import verdict_for
    from tuitune.core.memory.together import estimate_together
    from tuitune.core.models.spec import model_spec

    if args.model or args.recipe or isinstance(args.measure, str):
        raise UserError("with --together the recipes come after it", "tuitune estimate --together a.toml b.toml [--measure]")
    recipes = load_recipes(args)
    plan = check_together(recipes, args.schedule, distinct_runs=False)
    spec = model_spec(recipes[0].model_path)
    measured = None
    if args.measure:
        from tuitune.commands.estimate_measure import _available_here
        from tuitune.core.engine.together.measure import measure_together
        from tuitune.core.models.loading import bf16_supported, pick_device
        from tuitune.core.models.precision import cpu_bf16_native

        here = pick_device()
        device = args.device or here
        if device == "cuda" and here != "cuda":
            raise UserError("--device cuda: no CUDA GPU is visible here", "measure on the CPU (leave out --device)")
        bf16 = bf16_supported(device) if device == "cuda" else cpu_bf16_native()
        available, where = _available_here(args, device)
        measured = measure_together(recipes, device, plan.schedule)
        schedule = measured.schedule  # the engine may fall back to round-robin (and says why)
    else:
        device = args.device = args.device or "cuda"
        available, where, bf16 = _available(args)
        schedule = plan.schedule
    result = estimate_together(spec, recipes, available, schedule=schedule, device=device, bf16=bf16)
    if measured is not None:
        result.measured = measured.to_dict() | {"comparison": comparison(spec, recipes, measured, device, bf16)}
    cards = {}
    if available is None:
        for gib in COMMON_CARDS_GIB:
            cards[f"{gib}GB"] = (verdict_for(result.train_peak_bytes, gib * 2**30), verdict_for(result.separate_bytes, gib * 2**30))
    if args.json:
        d = result.to_dict() | {"model": {"name": spec.name, "source": spec.source, "params": spec.total_params},
                                "method": recipes[0].method.type, "jobs_count": len(recipes), "available_from": where}
        if cards:
            d["common_cards"] = {k: {"together": v[0], "separate": v[1]} for k, v in cards.items()}
        print(json.dumps(d, indent=2))
    else:
        from rich.console import Console

        console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
        for part in render(spec, recipes, result, where, cards):
            console.print(part)
    return 0 if measured is None or measured.fits else 1


def comparison(spec: Any, recipes: list[Any], m: Any, device: str, bf16: bool) -> dict[str, Any]:
    """The estimate at the measured shapes (each job's rows, the group's width, its trained share)."""
    from tuitune.core.memory.together import estimate_together

    e = estimate_together(spec, recipes, schedule=m.schedule, device=device, bf16=bf16, shapes=m.shapes)
    rows = {
        "after_load": (m.after_load_bytes, e.components["weights"] + e.components["adapter"]),
        "train_step": (m.train_peak_bytes if m.fits else None, e.allocated_peak_bytes),
    }
    out: dict[str, Any] = {}
    for key, (got, est) in rows.items():
        out[key] = {"measured_bytes": got, "estimate_bytes": int(est),
                    "error": None if not got else round((est - got) / got, 4)}
    out["estimate_peak_phase"] = e.peak_phase
    return out


def render(spec: Any, recipes: list[Any], result: Any, where: str, cards: dict[str, tuple[str, str]]) -> list:
    from rich.table import Table
    from rich.text import Text

    from tuitune.commands.estimate import VERDICT_STYLE
    from tuitune.core.memory import COMPONENT_LABELS
    from tuitune.core.units import format_bytes, format_count

    out: list = [
        f"[bold]{spec.name}[/] ({spec.source}, {format_count(spec.total_params)} parameters) · "
        f"{len(recipes)} {recipes[0].method.type} jobs together · {result.schedule}"
        f" · {result.alone[0].setup.device}"
    ]
    t = Table(title=f"Together: memory at the peak ({result.peak_phase})", title_justify="left")
    t.add_column("component")
    t.add_column("size", justify="right")
    for key, value in result.components.items():
        if value:
            t.add_row(COMPONENT_LABELS.get(key, key), format_bytes(value))
    t.add_row("[bold]total[/]", f"[bold]{format_bytes(result.train_peak_bytes)}[/]")
    out.append(t)
    jt = Table(title="Each job", title_justify="left")
    for col in ("job", "trainable", "adapter + optimizer", "gradients", "its step", "alone"):
        jt.add_column(col, justify="left" if col == "job" else "right")
    for j in result.jobs:
        jt.add_row(j.name, format_count(j.trainable_params), format_bytes(j.adapter_bytes + j.optimizer_bytes),
                   format_bytes(j.gradient_bytes), format_bytes(j.step_bytes), format_bytes(j.alone_bytes))
    out.append(jt)
    out.append(Text.assemble(
        ("Together ", "bold"), format_bytes(result.train_peak_bytes), " vs ", (f"{len(recipes)} separate runs ", "bold"),
        format_bytes(result.separate_bytes), f" (each its own base): {100 * result.saved_fraction:.0f}% less",
    ))
    if result.available_bytes is not None:
        out.append(Text.assemble(
            ("Verdict: ", "bold"), (result.verdict, VERDICT_STYLE.get(result.verdict, "")),
            f" together, against {format_bytes(result.available_bytes)} ({where}); separately: ",
            (verdict_for_separate := _separate_verdict(result), VERDICT_STYLE.get(verdict_for_separate, "")),
        ))
    if cards:
        ct = Table(title="Common cards", title_justify="left")
        ct.add_column("card")
        ct.add_column("together")
        ct.add_column("separate runs")
        for name, (together, separate) in cards.items():
            ct.add_row(name, f"[{VERDICT_STYLE[together]}]{together}[/]", f"[{VERDICT_STYLE[separate]}]{separate}[/]")
        out.append(ct)
    if result.measured:
        out += render_measured(result.measured)
    for note in result.notes:
        out.append(Text(f"note: {note}", style="dim"))
    return out


def _separate_verdict(result: Any) -> str:
    from tuitune.core.memory import verdict_for

    return verdict_for(result.separate_bytes, result.available_bytes)


def render_measured(m: dict[str, Any]) -> list:
    from rich.table import Table
    from rich.text import Text

    from tuitune.core.engine.measure import STEPS
    from tuitune.core.units import format_bytes

    out: list = [Text(f"warning: {w}", style="yellow") for w in m["warnings"]]
    if not m["fits"]:
        out.append(Text.assemble(("Measured: ", "bold"), ("does not fit", "red"), f" on {m['device']}: {m['failure']}"))
    what = "torch.cuda.max_memory_allocated" if m["device"] == "cuda" else "live tensor bytes (TorchDispatchMode)"
    shapes = ", ".join(f"{r} x {w}" for r, w, _ in m["shapes"])
    out.append(Text.assemble(("Measured", "bold"), f" on {m['device']} ({what}): {STEPS} steps of every job "
                             f"({m['schedule']}; batches {shapes}), {m['seconds']:.1f} s"))
    t = Table()
    for col in ("phase", "measured", "estimate", "error"):
        t.add_column(col, justify="left" if col == "phase" else "right")
    for key, label in (("after_load", "after load"), ("train_step", "training peak")):
        row = m["comparison"].get(key)
        if row:
            got, err = row["measured_bytes"], row["error"]
            t.add_row(label, format_bytes(got) if got is not None else "-", format_bytes(row["estimate_bytes"]),
                      f"{100 * err:+.1f}%" if err is not None else "-")
    out.append(t)
    return out
