"""`tuitune eval RUN`: perplexity and answer metrics (EM, F1, ROUGE, BLEU) of the base and the tuned
model; `tuitune eval RUN --tasks ...`: benchmarks through lm-eval, base vs tuned."""

from __future__ import annotations

import argparse

HELP = "evaluate a run, base vs tuned: perplexity, EM, F1, ROUGE, BLEU; or benchmarks through lm-eval (--tasks)"


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands import eval_benchmarks
    from tuitune.commands._args import add_runs_dir, add_trust_remote_code, non_negative_int, positive_int
    from tuitune.commands._gpus import add_gpus

    parser.add_argument("target", metavar="RUN", help="a run name (in --runs-dir) or a run folder")
    parser.add_argument("--data", default=None, metavar="FILE", help="evaluate on FILE (read like the run's data) instead of its eval split")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--max-samples", type=non_negative_int, default=100, help="score at most N examples, 0 = all (default 100)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=64, help="longest generated answer (default 64)")
    parser.add_argument("--samples", type=non_negative_int, default=5, help="sample predictions to show (default 5)")
    add_trust_remote_code(parser)
    add_runs_dir(parser)
    add_gpus(parser)
    eval_benchmarks.register(parser)


def run(args: argparse.Namespace) -> int:
    from tuitune.commands import eval_benchmarks
    from tuitune.commands._args import apply_trust_remote_code, runs_dir
    from tuitune.commands._gpus import use_gpus
    from tuitune.core.evaluate import evaluate_run
    from tuitune.core.runs import find_run
    from tuitune.core.tuned import quiet_libraries

    eval_benchmarks.check_flags(args)
    apply_trust_remote_code(args)
    run_path = find_run(args.target, runs_dir(args)).path
    use_gpus(args, str(run_path))
    if args.tasks:
        return eval_benchmarks.run(args, run_path)
    quiet_libraries()
    result = evaluate_run(
        run_path, data=args.data, max_samples=args.max_samples, max_new_tokens=args.max_new_tokens,
        progress=eval_benchmarks.stage_printer(),
    )
    if args.json:
        print(result.to_json())
    else:
        _print_report(result, args.samples)
    return 0


# Short titles: the table fits 80 columns; the caption says what they are.
ANSWER_COLUMNS = (("exact_match", "EM"), ("f1", "F1"), ("rouge1", "R-1"), ("rouge2", "R-2"), ("rougeL", "R-L"),
                  ("bleu4", "BLEU-4"))


def _fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _fmt_ppl(value: float) -> str:
    import math

    return "-" if not math.isfinite(value) else f"{value:.3f}"


def _print_report(r, n_samples: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{r.run}[/] ({r.method} on {r.base_model})")
    console.print(f"data: {r.data}; {r.examples} examples, {r.tokens} scored tokens, {r.answered} answered")
    table = Table(show_edge=False, caption="answers in %: exact match, token F1, ROUGE-1/2/L, BLEU-4",
                  caption_style="dim", caption_justify="left")
    table.add_column("")
    table.add_column("perplexity", justify="right", no_wrap=True)
    table.add_column("loss", justify="right")
    for _, title in ANSWER_COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for who, s in (("base", r.base), ("tuned", r.tuned)):
        answers = (_fmt_pct(getattr(s, key)) for key, _ in ANSWER_COLUMNS)
        table.add_row(who, _fmt_ppl(s.perplexity), f"{s.loss:.4f}", *answers)
    console.print(table)
    if r.samples and n_samples:
        samples = Table(title="sample predictions", show_lines=True)
        for name in ("line", "prompt", "reference", "base", "tuned"):
            samples.add_column(name, overflow="fold")
        for s in r.samples[:n_samples]:
            samples.add_row(str(s.line), _cut(s.prompt), _cut(s.reference), _cut(s.base), _cut(s.tuned))
        console.print(samples)
    for note in r.notes:
        console.print(f"note: {note}")
    console.print(f"exact match and F1 after: {r.normalization}", style="dim")
    console.print(f"{r.segmentation}", style="dim")
    if r.path:
        console.print(f"report: {r.path} ({r.seconds:.1f} s)")


def _cut(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
