"""`tuitune eval RUN --tasks ...`: lm-eval benchmarks, base vs tuned. Not a subcommand: the part of
`tuitune eval` that runs benchmarks (flags, progress lines, the before/after table)."""

from __future__ import annotations

import argparse
import os
import sys


def batch_size_value(text: str) -> int | str:
    if text == "auto":
        return text
    from tuitune.commands._args import positive_int

    return positive_int(text)


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import non_negative_int, positive_int

    group = parser.add_argument_group(
        "benchmarks (lm-eval)",
        "score the base and the tuned model on lm-eval tasks, e.g. --tasks mmlu,cmmlu,ceval-valid,gsm8k; "
        "lm-eval fetches each task's data from the Hugging Face hub on first use",
    )
    group.add_argument("--tasks", default=None, metavar="LIST", help="lm-eval task, group or tag names (or task .yaml files), comma-separated")
    group.add_argument("--include", action="append", default=[], metavar="DIR",
                       help="a folder of task YAML files of your own (lm-eval's include_path); repeatable")
    group.add_argument("--limit", type=positive_int, default=None, metavar="N", help="at most N examples per task (a quick look)")
    group.add_argument("--num-fewshot", type=non_negative_int, default=None, metavar="K",
                       help="examples shown before each question (default: each task's own)")
    group.add_argument("--batch-size", type=batch_size_value, default=None, metavar="N|auto",
                       help="requests per forward pass (default 8; auto finds the largest that fits a GPU)")
    group.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=None,
                       help="render prompts with the run's chat template (default: when it trained on chat data)")


def check_flags(args: argparse.Namespace) -> None:
    """Flags that belong to one kind of evaluation only."""
    from tuitune.core.errors import UserError

    bench_only = {"--include": args.include, "--limit": args.limit, "--num-fewshot": args.num_fewshot,
                  "--batch-size": args.batch_size, "--chat-template": args.chat_template}
    if not args.tasks:
        given = [flag for flag, value in bench_only.items() if value not in (None, [])]
        if given:
            raise UserError(f"{given[0]} applies to benchmarks only", "add --tasks NAMES (e.g. --tasks mmlu)")
    elif args.data is not None:
        raise UserError("--data applies to the perplexity and answer evaluation, not to --tasks",
                        "put your own data in an lm-eval task YAML and give its folder with --include DIR")


def run(args: argparse.Namespace, run_path) -> int:
    # lm-eval and datasets draw progress bars on stderr for every task; tuitune prints one line per
    # stage instead. tqdm reads this when first imported, which has not happened yet in a CLI run.
    os.environ.setdefault("TQDM_DISABLE", "1")
    from tuitune.core.benchmarks import DEFAULT_BATCH_SIZE, run_benchmarks
    from tuitune.core.tuned import quiet_libraries

    quiet_libraries()
    quiet_lm_eval()
    result = run_benchmarks(
        run_path,
        args.tasks,
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        include=args.include,
        chat_prompts=args.chat_template,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
        progress=stage_printer(),
    )
    if args.json:
        print(result.to_json())
    else:
        print_report(result)
    return 0


def stage_printer():
    """A progress callback printing a line on stderr when a stage begins and at each tenth of it, not
    one per batch: enough to follow (the TUI shows these lines), while stdout keeps the report alone."""
    last = {"stage": "", "tenth": -1}

    def show(p) -> None:
        tenth = 10 * p.done // p.total if p.total else -1
        if p.stage != last["stage"] or tenth > last["tenth"]:
            last["stage"], last["tenth"] = p.stage, tenth
            print(f"  {p.message}", file=sys.stderr, flush=True)

    return show


def quiet_lm_eval() -> None:
    """lm-eval logs every default it fills in and every task it builds; keep its errors only."""
    import logging

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    try:
        from datasets.utils.logging import disable_progress_bar
    except ImportError:  # pragma: no cover - datasets is a dependency
        return
    disable_progress_bar()


CHAT_PROMPTS = "through the run's chat template and system prompt, as in training"
PLAIN_PROMPTS = "plain text, no chat template (lm-eval's default for base models)"


def _value(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" + (f"±{stderr:.4f}" if stderr is not None else "")


def _change(metric) -> str:
    change = metric.change
    if change is None:
        return "-"
    if change == 0:
        return "0"
    good = (change > 0) == metric.higher_is_better
    return f"[{'green' if good else 'red'}]{change:+.4f}[/]"


def print_report(r) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(r.run)}[/] ({r.method} on {escape(r.base_model)}): lm-eval {r.lm_eval_version}")
    table = Table(show_edge=False, title="before (base) and after (tuned); ± lm-eval's standard error", title_style="dim")
    for name, justify in (("task", "left"), ("metric", "left"), ("base", "right"), ("tuned", "right"),
                          ("change", "right"), ("n", "right")):
        text = name in ("task", "metric")  # names fold onto a second line; numbers never do
        table.add_column(name, justify=justify, no_wrap=not text, overflow="fold", ratio=1 if text else None)
    for task in r.tasks:
        details = [f"{task.subtasks} tasks"] if task.subtasks else []
        details += [f"{task.fewshot}-shot"] if task.fewshot else []
        label = task.task + (f" ({', '.join(details)})" if details else "")
        for i, m in enumerate(task.metrics):
            table.add_row(
                escape(label) if i == 0 else "",
                escape(m.label),
                _value(m.base, m.base_stderr),
                _value(m.tuned, m.tuned_stderr),
                _change(m),
                str(task.samples) if i == 0 else "",
            )
    console.print(table)
    console.print("prompts: " + (CHAT_PROMPTS if r.chat_prompts else PLAIN_PROMPTS))
    for note in r.notes:
        console.print(f"note: {escape(note)}")
    if r.path:
        console.print(f"report: {escape(r.path)} ({r.seconds:.1f} s)")
