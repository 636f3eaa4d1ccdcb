"""`tuitune hw`: the GPUs, CPU, RAM, disk and libraries this machine has for training."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "show GPUs (memory, utilization, processes), CPU, RAM, disk and library versions"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import runs_dir
    from tuitune.core.hardware import probe

    report = probe(runs_dir(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    from rich.console import Console

    # Piped output (files, grep) gets wide lines instead of 80-column wrapping.
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 120)
    for part in render(report):
        console.print(part)
    return 0


def render(report) -> list:  # noqa: ANN001 - HardwareReport; rich renderables for the console
    from rich.table import Table
    from rich.text import Text

    from tuitune.core.units import format_bytes

    out: list = []
    if report.gpus:
        t = Table(title="GPUs", title_justify="left", show_lines=False)
        for col in ("#", "name", "memory free / total", "cc", "bf16", "util", "temp", "other processes"):
            t.add_column(col)
        for g in report.gpus:
            cc = f"{g.compute_capability[0]}.{g.compute_capability[1]}" if g.compute_capability else "?"
            procs = ", ".join(
                f"{p.name}[{p.pid}] {format_bytes(p.used_bytes)}" for p in g.processes
            ) or "-"
            t.add_row(
                str(g.index),
                g.name,
                f"{format_bytes(g.free_bytes)} / {format_bytes(g.total_bytes)}",
                cc,
                {True: "yes", False: "no", None: "?"}[g.bf16],
                "?" if g.utilization_pct is None else f"{g.utilization_pct}%",
                "?" if g.temperature_c is None else f"{g.temperature_c}°C",
                procs,
            )
        out.append(t)
        out.append(
            f"driver {report.driver_version or '?'}, CUDA driver {report.cuda_driver_version or '?'}, "
            f"torch built for CUDA {report.torch_cuda_version or 'none (CPU build)'}"
            + (" (fake GPUs from TUITUNE_FAKE_GPU)" if report.gpu_probe == "fake" else "")
        )
    else:
        out.append(
            Text(
                "No NVIDIA GPU found: CPU-only. Training works on the CPU for small models (the demo "
                "SmolLM2-135M); `tuitune estimate MODEL --gpu-memory 24GB` plans for a GPU you do not have here.",
                style="yellow",
            )
        )
    cpu, ram, disk = report.cpu, report.ram, report.disk
    m = Table(show_header=False, box=None, pad_edge=False)
    m.add_column(style="bold")
    m.add_column()
    m.add_row("CPU", f"{cpu.model} ({cpu.physical_cores or '?'} cores, {cpu.logical_cores or '?'} threads)")
    m.add_row("RAM", f"{format_bytes(ram.available_bytes)} free of {format_bytes(ram.total_bytes)}")
    m.add_row("Disk", f"{format_bytes(disk.free_bytes)} free at {disk.path}")
    fa = report.flash_attn
    m.add_row("FlashAttention-2", ("usable: " if fa.usable else "not usable: ") + fa.reason)
    libs = ", ".join(f"{k} {v or 'not installed'}" for k, v in report.libraries.items())
    m.add_row("Libraries", libs)
    out.append(m)
    for p in report.problems:
        out.append(Text(f"note: {p}", style="yellow"))
    return out
