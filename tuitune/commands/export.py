"""`tuitune export RUN --adapter OUT | --merge OUT`: save the adapter, or a merged full model."""

from __future__ import annotations

import argparse
import sys

HELP = "save a run's adapter (--adapter OUT) or a merged full model (--merge OUT)"


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir

    parser.add_argument("target", metavar="RUN", help="a run name (in --runs-dir) or a run folder")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--adapter", metavar="OUT", help="copy the adapter to OUT with a README naming the base model and the recipe")
    what.add_argument("--merge", metavar="OUT", help="merge the adapter into the base and save a full safetensors model to OUT")
    parser.add_argument(
        "--qlora-base",
        choices=("original", "quantized"),
        default="quantized",
        help="QLoRA merges: into the dequantized 4/8-bit base (default: the model as trained and tested) or the original unquantized weights",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists and is not empty")
    add_runs_dir(parser)


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import runs_dir
    from tuitune.core import export
    from tuitune.core.runs import find_run
    from tuitune.core.tuned import quiet_libraries

    run_path = find_run(args.target, runs_dir(args)).path

    def show(p) -> None:
        print(f"  {p.message}", file=sys.stderr, flush=True)

    if args.adapter:
        result = export.export_adapter(run_path, args.adapter, overwrite=args.force, progress=show)
    else:
        # Checked before the slow imports and loading: a merge that cannot work fails at once.
        _, warnings = export.check_merge(run_path, args.qlora_base)
        export.check_output(args.merge, args.force)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr, flush=True)
        quiet_libraries()
        result = export.merge_run(run_path, args.merge, overwrite=args.force, progress=show, qlora_base=args.qlora_base)
    size_mb = result.size_bytes / 1e6
    print(f"{result.kind}: wrote {result.path} ({len(result.files)} files, {size_mb:.1f} MB) in {result.seconds:.1f} s")
    return 0
