"""`tuitune export RUN --adapter OUT | --merge OUT | --gguf DIR [--quant Q] [--ollama] | --vllm DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "save a run's adapter, a merged model, a GGUF for llama.cpp/Ollama (checked) or a vLLM serve command"
QUANT_CHOICES = ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_k_s", "q4_k_m", "q4_k_s", "q3_k_m")


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import add_runs_dir, add_trust_remote_code
    from tuitune.commands._gpus import add_gpus

    parser.add_argument("target", metavar="RUN", help="a run name (in --runs-dir) or a run folder; --gguf also takes a model")
    parser.add_argument("--adapter", metavar="OUT", help="copy the adapter to OUT with a README naming the base model and the recipe")
    parser.add_argument("--merge", metavar="OUT", help="merge the adapter into the base and save a full safetensors model to OUT")
    parser.add_argument("--gguf", metavar="DIR", help="write DIR/NAME-QUANT.gguf for llama.cpp/Ollama and check it answers like the merged model")
    parser.add_argument("--quant", default="q8_0", type=str.lower, choices=QUANT_CHOICES, metavar="Q",
                        help="GGUF type: f32, f16, bf16, q8_0 (default); k-quants q6_k, q5_k_m, q4_k_m... need llama-cpp-python")
    parser.add_argument("--ollama", action="store_true", help="with --gguf: write an Ollama Modelfile next to the GGUF")
    parser.add_argument("--vllm", metavar="DIR", help="write DIR/serve.sh with the vllm serve command (and the adapter or merged model)")
    parser.add_argument(
        "--qlora-base",
        choices=("original", "quantized"),
        default="quantized",
        help="QLoRA merges: into the dequantized 4/8-bit base (default: the model as trained and tested) or the original unquantized weights",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress goes to stderr)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists and is not empty")
    add_trust_remote_code(parser)
    add_runs_dir(parser)
    add_gpus(parser)


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import apply_trust_remote_code
    from tuitune.commands._args import runs_dir as runs_dir_of
    from tuitune.commands._gpus import use_gpus
    from tuitune.core import export
    from tuitune.core.errors import UserError
    from tuitune.core.runs import find_run
    from tuitune.core.tuned import quiet_libraries

    apply_trust_remote_code(args)
    if args.ollama and not args.gguf:
        raise UserError("--ollama writes a Modelfile for a GGUF", "add --gguf DIR")
    if not (args.adapter or args.merge or args.gguf or args.vllm):
        raise UserError("nothing to export", "give --adapter OUT, --merge OUT, --gguf DIR or --vllm DIR")
    if args.adapter and args.merge:
        raise UserError("--adapter and --merge are two exports", "run the command once for each")
    runs_dir = runs_dir_of(args)
    results: list[dict] = []

    def show(p) -> None:
        print(f"  [{p.stage}] {p.message}", file=sys.stderr, flush=True)

    def say(line: str = "") -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    # Every refusal comes before the slow imports and loading.
    run_path = find_run(args.target, runs_dir).path if (args.adapter or args.merge or args.vllm) else None
    if args.merge:
        _, warnings = export.check_merge(run_path, args.qlora_base)
        export.check_output(args.merge, args.force)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr, flush=True)
    if args.gguf:
        from tuitune.core.gguf_export import check_gguf_export

        check_gguf_export(args.target, args.gguf, args.quant, runs_dir=runs_dir, overwrite=args.force)
    if args.vllm:
        from tuitune.core.runs import open_finished_run
        from tuitune.core.vllm import plan_vllm

        plan_vllm(open_finished_run(run_path))
        export.check_output(args.vllm, args.force)
    # Before anything loads a model: CUDA must see only the chosen GPU when it starts.
    use_gpus(args, args.target, runs_dir)

    quiet_libraries()
    merged = None
    if args.adapter:
        result = export.export_adapter(run_path, args.adapter, overwrite=args.force, progress=show)
        results.append(_plain(result))
        say(_wrote(result))
    if args.merge:
        result = export.merge_run(run_path, args.merge, overwrite=args.force, progress=show, qlora_base=args.qlora_base)
        merged = result.path
        results.append(_plain(result))
        say(_wrote(result))
    passed = True
    if args.gguf:
        from tuitune.core.gguf_export import export_gguf

        gguf = export_gguf(args.target, args.gguf, quant=args.quant, runs_dir=runs_dir, ollama=args.ollama,
                           overwrite=args.force, merged_dir=merged, progress=show)
        results.append(gguf.to_dict())
        passed = gguf.passed
        for line in gguf_report(gguf):
            say(line)
    if args.vllm:
        from tuitune.core.vllm import export_vllm

        served = export_vllm(run_path, args.vllm, overwrite=args.force, merged_dir=merged, progress=show)
        results.append(served.to_dict())
        say(f"vllm: wrote {served.path}")
        for note in served.plan.notes:
            say(f"  note: {note}")
        say(f"  {served.command}")
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False, default=str))
    return 0 if passed else 1


def gguf_report(result) -> list[str]:
    """What the CLI prints after a GGUF export: the file, the parity check, the commands."""
    lines = [f"gguf: wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.quant})"]
    lines += [f"  warning: {w}" for w in result.warnings]
    if result.modelfile:
        lines.append(f"ollama: wrote {result.modelfile}")
    parity = result.parity
    if parity is not None:
        lines.append(f"parity ({len(parity.engines[0].prompts) if parity.engines else 0} prompts, {parity.prompt_source}):")
        lines += [f"  {line}" for line in parity.summary_lines()]
        lines += [f"  note: {n}" for n in parity.notes]
        if not parity.passed:
            lines.append(f"parity check FAILED: the files are kept in {Path(result.path).parent} for inspection")
    lines.append("run it:")
    lines += [f"  {c}" for c in result.commands]
    return lines


def _plain(result) -> dict:
    return {"kind": result.kind, "path": str(result.path), "files": len(result.files), "size_bytes": result.size_bytes,
            "warnings": result.warnings, "seconds": round(result.seconds, 2)}


def _wrote(result) -> str:
    return f"{result.kind}: wrote {result.path} ({len(result.files)} files, {result.size_bytes / 1e6:.1f} MB) in {result.seconds:.1f} s"
