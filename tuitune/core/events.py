"""Training events as terminal lines (rich), for `tuitune train` and `tuitune runs watch`.

Not a subcommand: shared by both. One line per event keeps the output readable in a log file or
over a slow SSH link, where a redrawing progress bar would not be.
"""

from __future__ import annotations

import math
import time
from typing import Any


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB", "MiB") else f"{n:.1f} {unit}"
        n /= 1024
    return "-"


def _memory(mem: Any) -> str:
    if not isinstance(mem, dict):
        return "-"
    if mem.get("device") == "cuda":
        return f"gpu {size(mem.get('allocated'))} (peak {size(mem.get('peak'))})"
    return f"ram {size(mem.get('rss'))}"


def event_markup(e: dict[str, Any]) -> str | None:
    """Rich markup for one event, or None for events not worth a line."""
    from rich.markup import escape

    t = e.get("type")
    clock = time.strftime("%H:%M:%S", time.localtime(e.get("time", time.time())))
    head = f"[dim]{clock}[/] "
    if t == "step":
        return head + (
            f"step {e.get('step')}/{e.get('max_steps')}  epoch {_num(e.get('epoch'), '.2f')}  "
            f"loss [bold]{_num(e.get('loss'), '.4f')}[/]  lr {_num(e.get('lr'), '.2e')}  "
            f"grad {_num(e.get('grad_norm'), '.2f')}  {_num(e.get('tokens_per_s'), ',.0f')} tok/s  "
            f"elapsed {duration(e.get('elapsed_s'))}  eta {duration(e.get('eta_s'))}  {_memory(e.get('memory'))}"
        )
    if t == "eval":
        return head + f"[cyan]eval[/] step {e.get('step')}  loss [bold]{_num(e.get('eval_loss'), '.4f')}[/]  perplexity {_num(e.get('perplexity'), '.2f')}"
    if t == "status":
        message = escape(str(e.get("message") or ""))
        return head + f"[blue]{e.get('status')}[/]" + (f"  {message}" if message and message != e.get("status") else "")
    if t == "start":
        resumed = f", resumed from step {e['resumed_from']}" if e.get("resumed_from") else ""
        return head + escape(
            f"{e.get('method')} on {e.get('model')} ({', '.join(str(x) for x in (e.get('device'), e.get('precision')) if x)}): "
            f"{e.get('num_train')} train rows, "
            f"{e.get('num_eval')} eval rows, {e.get('max_steps')} steps, "
            f"{e.get('trainable_params'):,} of {e.get('total_params'):,} parameters trainable{resumed}"
        )
    if t == "checkpoint":
        return head + f"[dim]checkpoint step {e.get('step')}: {escape(str(e.get('path')))}[/]"
    if t == "warning":
        return head + f"[yellow]warning:[/] {escape(str(e.get('message')))}"
    if t == "log":
        return head + escape(str(e.get("message")))
    if t == "error":
        hint = f"\n  [dim]hint: {escape(str(e['hint']))}[/]" if e.get("hint") else ""
        return head + f"[red bold]error ({e.get('kind')}):[/] {escape(str(e.get('message')))}{hint}"
    if t == "done":
        best = e.get("best_eval_loss")
        best_text = f", best eval loss {_num(best, '.4f')}" if best is not None else ""
        return head + (
            f"[green bold]done:[/] {e.get('steps')} steps in {duration(e.get('duration_s'))}, "
            f"train loss {_num(e.get('train_loss'), '.4f')}{best_text}; result in {escape(str(e.get('output')))}"
        )
    return None


def print_events(console: Any, events: Any) -> dict[str, Any] | None:
    """Print events as they come; returns the last one."""
    last = None
    for event in events:
        line = event_markup(event)
        if line is not None:
            console.print(line, highlight=False, soft_wrap=True)
        last = event
    return last
