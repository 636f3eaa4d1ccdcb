"""`tuitune estimate MODEL`: will it fit, and how. Breakdown, methods, limits and fixes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "estimate training memory for a model and recipe; compare methods; find what fits"

# Cards to compare against when there is no GPU here and no --gpu-memory.
COMMON_CARDS_GIB = (24, 48, 80)
VERDICT_STYLE = {"fits": "green", "tight": "yellow", "does not fit": "red", "unknown": "dim"}


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.core.recipe import METHODS, OPTIMIZERS

    parser.add_argument("model", nargs="?", default=None, help="hub id, local folder, .gguf file or catalog name")
    parser.add_argument("--recipe", metavar="FILE", help="take method, batch, sequence and the rest from a recipe")
    parser.add_argument("--method", choices=METHODS, help="method.type (default: lora, or the recipe's)")
    parser.add_argument("--batch-size", type=int, metavar="B", help="train.batch_size")
    parser.add_argument("--seq-len", type=int, metavar="S", help="data.cutoff_len (tokens per sequence)")
    parser.add_argument("--lora-r", type=int, metavar="R", help="lora.r")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="train.optimizer")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--gpu-memory", metavar="SIZE", help="plan for a GPU of this size (24GB, 80GiB) instead of the free memory here")
    parser.add_argument("--gpus", default=None, metavar="0,2|auto",
                        help="plan for these GPUs here (their free memory; one process each), or auto: those train would choose")
    parser.add_argument("--n-gpus", type=int, default=None, metavar="N",
                        help="GPUs per run when planning for a card size or the roomiest GPU (distributed.strategy decides ddp/fsdp)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default=None,
                        help="plan GPU training (default) or CPU training; with --measure: where to measure (default: a GPU if present)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any recipe key, e.g. data.packing=true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--list-models", action="store_true", help="list the built-in catalog and exit")
    parser.add_argument(
        "--measure", metavar="RECIPE", nargs="?", const=True,
        help="also run two real training steps and one eval batch of RECIPE here (as `tuitune train` would) "
        "and show the measured peak beside the estimate; exit 1 when it runs out of memory. With --together: "
        "two steps of every recipe, trained together",
    )
    parser.add_argument("--together", nargs="+", metavar="RECIPE",
                        help="memory of these LoRA recipes trained together on one base (tuitune train --together), "
                        "beside the same runs as separate processes; a recipe may repeat")
    parser.add_argument("--schedule", choices=("fused", "round-robin"), default="fused", help="with --together")


def build_recipe(args: argparse.Namespace) -> Any:
    """The recipe the estimate is for: --recipe (or defaults) with the command-line options applied."""
    from tuitune.core import recipe as r
    from tuitune.core.errors import UserError

    if args.recipe:
        rec, problems = r.load_recipe(args.recipe)
        if problems:
            raise UserError("; ".join(p.format(args.recipe) for p in problems), "fix the recipe (tuitune recipe validate)")
        if args.method:
            rec.method.type = args.method
    else:
        rec = r.new_recipe(args.method or "lora")
    if args.model:
        rec.model.name_or_path = args.model
    sets = list(args.set)
    for flag, key in (("batch_size", "train.batch_size"), ("seq_len", "data.cutoff_len"), ("lora_r", "lora.r"), ("optimizer", "train.optimizer")):
        value = getattr(args, flag)
        if value is not None:
            sets.append(f"{key}={value}")
    if args.gradient_checkpointing is not None:
        sets.append(f"train.gradient_checkpointing={str(args.gradient_checkpointing).lower()}")
    problems = r.apply_overrides(rec, sets)
    if problems:
        raise UserError("; ".join(p.format("--") for p in problems), "see `tuitune recipe fields`")
    return rec


def run(args: argparse.Namespace) -> int:
    from tuitune.core.errors import UserError

    if args.list_models:
        from tuitune.core.models.catalog import ALIASES, catalog_names

        short = {v: k for k, v in ALIASES.items()}
        for name in catalog_names():
            print(f"{name:40s} {short.get(name, '')}")
        return 0
    if args.together:
        from tuitune.commands._estimate_together import run_together

        return run_together(args)
    if args.measure is True:
        raise UserError("--measure needs a RECIPE (or --together RECIPE...)", "tuitune estimate --measure recipe.toml")
    if args.measure:
        if args.recipe and args.recipe != args.measure:
            raise UserError("give the recipe once: --measure RECIPE (or --recipe RECIPE), not both")
        args.recipe = args.measure
        from tuitune.commands._gpus import use_gpus
        from tuitune.commands.estimate_measure import run_measure

        use_gpus(args)  # before the measurement touches CUDA

        return run_measure(args, build_recipe(args))
    args.device = args.device or "cuda"
    rec = build_recipe(args)
    if not args.model and not args.recipe:
        raise UserError("no model given", "tuitune estimate MODEL (a hub id, folder, .gguf or catalog name such as llama-3-8b)")
    if args.n_gpus is not None and args.n_gpus < 1:
        raise UserError(f"--n-gpus {args.n_gpus}: must be at least 1")
    if args.gpus is not None and args.gpu_memory:
        raise UserError("--gpus plans for GPUs here, --gpu-memory for a card size: give one of them")

    from tuitune.core.memory.fit_plan import plan
    from tuitune.core.models.spec import model_spec

    spec = model_spec(rec.model_path)
    if args.gpus is not None:
        available, where, bf16, n_gpus = _chosen(args, spec, rec)
    else:
        (available, where, bf16), n_gpus = _available(args), args.n_gpus or 1
    result = plan(spec, rec, available, device=args.device, bf16=bf16, n_gpus=n_gpus)
    cards = {}
    if available is None:
        from tuitune.core.memory import verdict_for

        for gib in COMMON_CARDS_GIB:
            cards[f"{gib}GB"] = [verdict_for(m.total_bytes, gib * 2**30) for m in result.methods]
    if args.json:
        d = result.to_dict()
        d["model"] = {"name": spec.name, "source": spec.source, "params": spec.total_params}
        d["method"] = rec.method.type
        d["available_from"] = where
        if cards:
            d["common_cards"] = {k: dict(zip([m.label for m in result.methods], v, strict=True)) for k, v in cards.items()}
        print(json.dumps(d, indent=2))
        return 0
    from rich.console import Console

    # Piped output (files, grep) gets wide lines instead of 80-column wrapping.
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
    for part in render(spec, rec, result, where, cards):
        console.print(part)
    return 0


def _chosen(args: argparse.Namespace, spec, rec) -> tuple[int | None, str, bool, int]:  # noqa: ANN001
    """(bytes available per GPU, where, bf16, GPUs) for --gpus: as `tuitune train` would choose them."""
    from tuitune.core.gpu_choice import choose_gpus, parse_gpus
    from tuitune.core.hardware import select_gpu_probe
    from tuitune.core.memory import estimate

    reading = select_gpu_probe().read()
    bf16 = all(g.bf16 is not False for g in reading.gpus)
    choice = choose_gpus(
        reading.gpus, parse_gpus(args.gpus), count=args.n_gpus,
        need_for=lambda n: estimate(spec, rec, n_gpus=n, device=args.device, bf16=bf16).train_peak_bytes,
        grow=rec.distributed.strategy == "fsdp",
    )  # fmt: skip
    if not choice.gpus:
        return None, "no GPU here", True, args.n_gpus or 1
    for line in ([choice.reason] if choice.reason else []) + [f"warning: {w}" for w in choice.warnings]:
        print(line, file=sys.stderr)
    names = ", ".join(map(str, choice.indices))
    where = f"free on GPU {names}" + (" (the least free of them, per GPU)" if len(choice.gpus) > 1 else f" ({choice.gpus[0].name})")
    return choice.min_free_bytes, where, choice.bf16, len(choice.gpus)


def _available(args: argparse.Namespace) -> tuple[int | None, str, bool]:
    """(bytes available per GPU, where that figure comes from, bf16 support)."""
    from tuitune.core.errors import UserError

    if args.gpu_memory:
        from tuitune.core.units import parse_bytes

        try:
            return parse_bytes(args.gpu_memory), f"--gpu-memory {args.gpu_memory}", True
        except ValueError as e:
            raise UserError(f"--gpu-memory: {e}") from e
    if args.device == "cpu":
        from tuitune.core.hardware import ram_info

        ram = ram_info().available_bytes
        return ram, "free RAM here", False
    from tuitune.commands._args import runs_dir
    from tuitune.core.hardware import probe

    report = probe(runs_dir(args))
    if not report.gpus:
        return None, "no GPU here", True
    usable = [g for g in report.gpus if g.free_bytes is not None]
    if not usable:
        return None, "GPU memory could not be read", True
    best = max(usable, key=lambda g: g.free_bytes or 0)
    bf16 = all(g.bf16 is not False for g in report.gpus)
    return best.free_bytes, f"free on GPU {best.index} ({best.name})", bf16


def render(spec, rec, result, where: str, cards: dict[str, list[str]]) -> list:  # noqa: ANN001
    from rich.table import Table
    from rich.text import Text

    from tuitune.core.memory import COMPONENT_LABELS
    from tuitune.core.units import format_bytes, format_count

    est = result.estimate
    s = est.setup
    out: list = []
    head = (
        f"[bold]{spec.name}[/] ({spec.source}, {format_count(spec.total_params)} parameters) · {rec.method.type}"
        + (f" {s.quant_bits}-bit" if s.quant_bits else "")
        + f" · batch {s.batch_size} x {s.seq_len} tokens · {s.attention}"
        + (" · checkpointing" if s.gradient_checkpointing else "")
        + f" · {s.optimizer} · {s.device}"
    )
    out.append(head)
    t = Table(title="Training memory at the peak (" + est.peak_phase + ")", title_justify="left")
    t.add_column("component")
    t.add_column("size", justify="right")
    t.add_column("share", justify="right")
    for key, value in est.components.items():
        if value:
            t.add_row(COMPONENT_LABELS.get(key, key), format_bytes(value), f"{100 * value / est.train_peak_bytes:.0f}%")
    t.add_row("[bold]total[/]", f"[bold]{format_bytes(est.train_peak_bytes)}[/]", "")
    out.append(t)
    verdict = est.verdict
    if result.available_bytes is not None:
        out.append(
            Text.assemble(
                ("Verdict: ", "bold"),
                (verdict, VERDICT_STYLE.get(verdict, "")),
                f" against {format_bytes(result.available_bytes)} ({where}); "
                f"inference needs {format_bytes(est.inference_bytes)}; trainable {format_count(est.trainable_params)}",
            )
        )
    else:
        out.append(
            f"No GPU here: absolute numbers, compared with common cards below. Inference needs "
            f"{format_bytes(est.inference_bytes)}; trainable {format_count(est.trainable_params)}."
        )

    mt = Table(title="Methods", title_justify="left")
    mt.add_column("method")
    mt.add_column("trainable", justify="right")
    mt.add_column("peak", justify="right")
    if cards:
        for name in cards:
            mt.add_column(name)
    else:
        mt.add_column("verdict")
    for i, m in enumerate(result.methods):
        row = [m.label, format_count(m.trainable_params), format_bytes(m.total_bytes)]
        if cards:
            row += [f"[{VERDICT_STYLE[v[i]]}]{v[i]}[/]" for v in cards.values()]
        else:
            row.append(f"[{VERDICT_STYLE.get(m.verdict, '')}]{m.verdict}[/]")
        mt.add_row(*row)
    out.append(mt)
    if result.available_bytes is not None:
        out.append(
            f"With {rec.method.type}: largest batch size that fits {result.max_batch or 'none'} "
            f"(at {s.seq_len} tokens); longest sequence {result.max_seq or 'none'} (at batch {s.batch_size})."
        )
    if result.suggestions:
        out.append(Text("To make it fit:", style="bold"))
        for sug in result.suggestions:
            out.append(
                Text.assemble(
                    "  - ",
                    sug.text,
                    " → ",
                    (f"{format_bytes(sug.total_bytes)}, {sug.verdict}", VERDICT_STYLE.get(sug.verdict, "")),
                )
            )
    for note in est.notes:
        out.append(Text(f"note: {note}", style="dim"))
    return out
