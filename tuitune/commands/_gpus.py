"""`--gpus 0,2|auto` for the commands that load a model in their own process (chat, eval, export).

The choice becomes this process's CUDA_DEVICE_ORDER / CUDA_VISIBLE_DEVICES before torch starts
CUDA, so the model loads on the first GPU chosen and nothing touches the others. `auto` takes the
GPU with the most free memory, idle ones first, that holds the model for inference (the estimate
from its architecture, when it can be read). What was chosen, and who else uses it, goes to stderr.
"""

from __future__ import annotations

import argparse
import sys


def add_gpus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpus", default=None, metavar="0,2|auto",
                        help="the GPU to load on, as `tuitune hw` numbers it, or auto (default: what CUDA shows this process)")


def use_gpus(args: argparse.Namespace, target: str | None = None, runs_dir: str = "runs") -> list[int] | None:
    """Apply --gpus to this process; returns the indices chosen (None without --gpus)."""
    if getattr(args, "gpus", None) is None:
        return None
    from tuitune.core.gpu_choice import apply_to_environ, choose_gpus, parse_gpus
    from tuitune.core.hardware import select_gpu_probe

    request = parse_gpus(args.gpus)
    reading = select_gpu_probe().read()
    need = inference_bytes(target, runs_dir) if target and request == "auto" else None
    choice = choose_gpus(reading.gpus, request, count=1 if request == "auto" else None, need_for=lambda n: need)
    apply_to_environ(choice)
    if choice.gpus:
        first = choice.gpus[0]
        more = f" (GPUs {', '.join(map(str, choice.indices[1:]))} visible too)" if len(choice.gpus) > 1 else ""
        print(f"using GPU {first.index} ({first.name}){more}", file=sys.stderr)
    if choice.reason:
        print(choice.reason, file=sys.stderr)
    for w in choice.warnings + [p for p in reading.problems]:
        print(f"warning: {w}", file=sys.stderr)
    return choice.indices


def inference_bytes(target: str, runs_dir: str) -> int | None:
    """Memory to generate with `target` (a run or a model), from its architecture; None when unknown."""
    from tuitune.core.memory import estimate
    from tuitune.core.models.spec import model_spec
    from tuitune.core.recipe import new_recipe
    from tuitune.core.runs import locate_run

    try:
        run = locate_run(target, runs_dir)
        recipe = run.recipe if run is not None and run.is_run() else new_recipe("lora", target)
        return estimate(model_spec(recipe.model_path), recipe).inference_bytes
    except Exception:  # noqa: BLE001 - no estimate: the most free memory decides alone
        return None
