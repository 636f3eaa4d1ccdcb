"""`tuitune data preview FILE`: the rows, one row as the model sees it (trained tokens coloured),
token-length stats and every problem with its line.

Exit 0 whatever problems the rows have; exit 2 only when the source cannot be read at all (or a
--model given explicitly cannot be found). Only the tokenizer is loaded, never model weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "preview a dataset: rows, the chat-template rendering with trained tokens, stats and problems"

STYLE_TRAINED = "bold green"
STYLE_MASKED = "grey58"
STYLE_CUT = "red strike"
SHOWN_PROBLEMS = 25  # in the table view; --json lists them all (up to the loader's cap)
# Rendering and tokenizing runs at ~2,000 rows/s on one core: token stats of a million-row file
# would take minutes, so by default they come from the first rows (problems still cover every row).
STATS_ROWS = 20_000
TEXT_SPLITS = ("auto", "line", "paragraph", "file")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = sub.add_parser("preview", help=HELP, description=HELP)
    p.add_argument(
        "file", metavar="FILE",
        help="a .jsonl/.json/.csv/.tsv/.parquet/.txt file, a folder, a LLaMA-Factory dataset_info.json (or its folder), or a hub dataset name",
    )
    p.add_argument("--dataset", default="", metavar="NAME", help="the entry of a LLaMA-Factory dataset_info.json to read")
    p.add_argument("--format", default="auto", help="auto, alpaca, sharegpt, messages, text or prompt-completion (default: auto)")
    p.add_argument("--columns", default="", metavar="STD=YOURS,...", help="map your columns, e.g. instruction=question,output=answer")
    p.add_argument("--model", default=None, help="whose tokenizer and chat template to use (default: the demo model)")
    p.add_argument("--template", default="auto", help="chat template: auto (the model's), chatml, llama3, alpaca, zephyr, plain")
    p.add_argument("--system", default="", help="system prompt for rows that have none (default: the template's)")
    p.add_argument("--rows", type=int, default=10, metavar="N", help="rows shown in the table (default 10)")
    p.add_argument("--row", type=int, default=1, metavar="I", help="which row (1 = first usable row) to render with its mask")
    p.add_argument("--cutoff-len", type=int, default=None, metavar="N", help="token limit for the stats (default: the recipe default)")
    p.add_argument("--train-on-prompt", action="store_true", help="show the prompt as trained too")
    p.add_argument("--split", default="train", help="split of a hub dataset (default train)")
    p.add_argument("--text-split", default="auto", choices=TEXT_SPLITS, help=".txt files: one example per line, paragraph or file (default auto)")
    p.add_argument("--chunk-long-text", action="store_true", help="split plain-text rows longer than --cutoff-len into chunks (as training would)")
    p.add_argument("--max-rows", type=int, default=0, metavar="N", help="read at most N usable rows (0 = all)")
    p.add_argument(
        "--stats-rows", type=int, default=STATS_ROWS, metavar="N",
        help=f"token stats from the first N usable rows (default {STATS_ROWS}; 0 = all, slow on huge files)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    if args.data_command != "preview":
        return 2
    from tuitune.core.data import (
        chat_template_for,
        encode_examples,
        label_mask_preview,
        length_stats,
        load_examples,
        parse_columns,
        read_page,
    )
    from tuitune.core.data.long_rows import long_row_problems, long_rows_summary
    from tuitune.core.data.tool_rendering import tools_note
    from tuitune.core.errors import UserError
    from tuitune.core.recipe import DEMO_MODEL, FIELDS

    columns = parse_columns(args.columns) if args.columns else {}
    cutoff = args.cutoff_len or FIELDS["data.cutoff_len"].default
    if cutoff < 1 or args.rows < 0 or args.row < 1:
        raise UserError("--cutoff-len and --row must be at least 1, --rows at least 0")
    source = {"dataset": args.dataset, "text_split": args.text_split}
    loaded = load_examples(args.file, args.format, columns, args.max_rows, args.split, **source)
    page = read_page(args.file, args.format, columns, 0, args.rows, args.split, **source) if args.rows else None

    tokenizer, tokenizer_note = _tokenizer(args.model or DEMO_MODEL, explicit=args.model is not None)
    problems = list(loaded.problems)
    notes = list(loaded.notes)
    stats = preview = None
    sample = loaded.examples[: args.stats_rows] if args.stats_rows > 0 else loaded.examples
    if tokenizer is not None and loaded.examples:
        note = tools_note(sample, tokenizer, chat_template_for(tokenizer, args.template)[0])
        encoded, render_problems = encode_examples(
            sample, tokenizer, cutoff, args.train_on_prompt, args.template, args.system, chunk_long_text=args.chunk_long_text
        )
        problems += render_problems + long_row_problems(encoded, cutoff)
        notes += [n for n in (note, long_rows_summary(encoded, cutoff)) if n]
        stats = length_stats([e.full_length for e in encoded], cutoff)
        if args.row <= len(loaded.examples):
            example = loaded.examples[args.row - 1]
            try:
                preview = (example, label_mask_preview(example, tokenizer, cutoff, args.train_on_prompt, args.template, args.system))
            except UserError as e:
                problems.append(_problem(example.line, str(e)))
    if args.json:
        _print_json(args, loaded, page, stats, problems, preview, tokenizer_note, notes)
    else:
        _print_rich(args, loaded, page, stats, problems, preview, tokenizer_note, len(sample), notes)
    return 0


def _problem(line: int | None, message: str):
    from tuitune.core.data import DataProblem

    return DataProblem(line, message)


def _tokenizer(model: str, explicit: bool) -> tuple[Any, str]:
    """(tokenizer or None, a note). An explicit --model must load; the default demo may be missing."""
    from tuitune.core.data.tokenizer import load_tokenizer_only
    from tuitune.core.errors import UserError

    try:
        return load_tokenizer_only(model), model
    except UserError as e:
        if explicit:
            raise
        return None, f"no tokenizer ({e.message}); token stats skipped"


# --------------------------------------------------------------------------- JSON


def _print_json(args, loaded, page, stats, problems, preview, note, notes) -> None:
    from tuitune.core.data.raw import shown_value

    out: dict[str, Any] = {
        "file": args.file,
        "dataset": args.dataset or None,
        "format": loaded.format,
        "rows": loaded.total_rows,
        "examples": len(loaded.examples),
        "columns": loaded.columns,
        "stats": stats.to_dict() if stats else None,  # stats["rows"]: how many rows the stats cover
        "problems": [p.to_dict() for p in problems],
        "notes": notes,  # how the rows were read and rendered: text split, tools fallback, long rows
        "model": note,
        "preview": [
            {"line": r.line, **({"file": r.file} if r.file else {}), "record": shown_value(r.record),
             "messages": r.example.messages if r.example else None, "text": r.example.text if r.example else None,
             "tools": r.example.tools if r.example else None,
             "problems": [p.message for p in r.problems]}
            for r in (page.rows if page else [])
        ],
        "rendered": None,
    }
    if preview:
        example, mask = preview
        out["rendered"] = {
            "row": args.row,
            "line": example.line,
            "template": mask.template,
            "tokens": mask.tokens,
            "tokens_estimated": mask.estimated,
            "trained_tokens": mask.trained_tokens,
            "truncated": mask.truncated,
            "notes": mask.notes,
            "pieces": [{"text": p.text, "trained": p.trained, "cut": p.cut, "tokens": p.tokens} for p in mask.pieces],
        }
    json.dump(out, sys.stdout, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


# --------------------------------------------------------------------------- tables


def _print_rich(args, loaded, page, stats, problems, preview, note, sampled: int, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    console.print(
        Text.assemble(
            (f"{args.file}", "bold"),
            f"  format {loaded.format}  ·  {loaded.total_rows} rows, {len(loaded.examples)} usable  ·  ",
            (f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", "yellow" if problems else "green"),
        )
    )
    for line in notes:
        console.print(Text(f"  {line}", style="cyan"))
    if page and page.rows:
        console.print(_rows_table(page, loaded.format, Table, Text))
    if preview:
        example, mask = preview
        console.print(
            Text.assemble(
                (f"\nRow {args.row} (line {example.line}) as the model reads it", "bold"),
                f" — template {mask.template}, {'about ' if mask.estimated else ''}{mask.tokens:,} tokens, "
                f"{mask.trained_tokens:,} trained",
                (" (truncated)" if mask.truncated else ""),
            )
        )
        for line in mask.notes:
            if line not in notes:  # said once: the notes above already hold it
                console.print(Text(line, style="cyan"))
        body = Text()
        for piece in mask.pieces:
            body.append(piece.text, style=STYLE_CUT if piece.cut else STYLE_TRAINED if piece.trained else STYLE_MASKED)
        console.print(body)
        console.print(
            Text.assemble(("trained", STYLE_TRAINED), "  ", ("masked (no loss)", STYLE_MASKED), "  ", ("cut by cutoff_len", STYLE_CUT))
        )
    console.print(Text(f"\nTokenizer: {note}", style="dim"))
    if stats and stats.rows:
        console.print(_stats_table(stats, Table))
        if sampled < len(loaded.examples):
            console.print(Text(f"token stats from the first {sampled} of {len(loaded.examples)} usable rows (--stats-rows 0: all)", style="dim"))
    if problems:
        console.print(Text(f"\nProblems ({len(problems)})", style="bold yellow"))
        for p in problems[:SHOWN_PROBLEMS]:
            console.print(Text(f"  {p}"))
        if len(problems) > SHOWN_PROBLEMS:
            console.print(Text(f"  ... {len(problems) - SHOWN_PROBLEMS} more (see --json)", style="dim"))
    else:
        console.print(Text("\nNo problems found.", style="green"))


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(str(text)[: width * 4].split())  # a 50 MB cell is cut before it is looked at
    return text if len(text) <= width else text[: width - 1] + "…"


def _reply(msgs: list[dict[str, Any]]) -> str:
    """The first assistant turn: its text, or the tools it calls."""
    from tuitune.core.data.tool_calls import call_summary

    m = next((m for m in msgs if m["role"] == "assistant"), None)
    if m is None:
        return ""
    calls = " ".join("→ " + call_summary(c) for c in m.get("tool_calls") or ())
    return " ".join(p for p in (m["content"], calls) if p)


def _rows_table(page, fmt: str, Table, Text):
    table = Table(title=f"First {len(page.rows)} rows", title_justify="left", show_lines=False, expand=False)
    table.add_column("line", justify="right", style="dim")
    if fmt == "text":
        table.add_column("text", overflow="fold")
        table.add_column("chars", justify="right")
    else:
        table.add_column("system", overflow="fold", max_width=24)
        table.add_column("user", overflow="fold")
        table.add_column("assistant", overflow="fold")
        table.add_column("turns", justify="right")
    table.add_column("problems", style="yellow", overflow="fold", max_width=40)
    for row in page.rows:
        where = f"{row.file}:{row.line}" if row.file else str(row.line)
        note = "; ".join(p.message for p in row.problems)
        ex = row.example
        if fmt == "text":
            cells = [_clip(ex.text) if ex and ex.text is not None else "", str(len(ex.text)) if ex and ex.text else ""]
        elif ex and ex.messages:
            msgs = ex.messages
            system = next((m["content"] for m in msgs if m["role"] == "system"), "")
            user = next((m["content"] for m in msgs if m["role"] == "user"), "")
            if ex.tools:
                system = f"[{len(ex.tools)} tool{'s' if len(ex.tools) != 1 else ''}] {system}"
            cells = [_clip(system, 24), _clip(user), _clip(_reply(msgs)), str(sum(m["role"] != "system" for m in msgs))]
        else:
            from tuitune.core.data.raw import shown_value

            raw = json.dumps(shown_value(row.record), ensure_ascii=False) if row.record else ""
            cells = ["", _clip(raw), "", ""]
        table.add_row(where, *[Text(c) for c in cells], Text(_clip(note, 80)))
    return table


def _stats_table(stats, Table):
    table = Table(title=f"Token lengths (cutoff_len {stats.cutoff_len})", title_justify="left", show_header=True)
    for name in ("rows", "min", "median", "p95", "max", "over cutoff"):
        table.add_column(name, justify="right")
    table.add_row(
        str(stats.rows), str(stats.min), f"{stats.median:g}", str(stats.p95), str(stats.max),
        f"[red]{stats.over_cutoff}[/red]" if stats.over_cutoff else "0",
    )
    from rich.console import Group
    from rich.text import Text

    peak = max((n for _, _, n in stats.histogram), default=0) or 1
    bars = Text()
    for lo, hi, n in stats.histogram:
        over = lo >= stats.cutoff_len
        bars.append(f"{lo:>7}-{hi - 1:<7} ", style="dim")
        bars.append("█" * max(1 if n else 0, round(30 * n / peak)), style="red" if over else "cyan")
        bars.append(f" {n}\n")
    return Group(table, bars)
