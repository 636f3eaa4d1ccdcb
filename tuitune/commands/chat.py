"""`tuitune chat MODEL_OR_RUN`: talk to a tuned run (or any model), streamed, optionally base vs tuned."""

from __future__ import annotations

import argparse
import sys
import time

HELP = "chat with a tuned run or a model; --compare answers with the base and the tuned model"

INTERACTIVE_HELP = """commands:
  /reset          forget the conversation
  /system TEXT    set the system prompt (/system alone shows it; /system - removes it)
  /quit           leave (or ctrl+d)
ctrl+c stops a reply that is being written."""


def register(parser: argparse.ArgumentParser) -> None:
    from tuitune.commands._args import (
        add_runs_dir,
        add_trust_remote_code,
        non_negative_float,
        positive_int,
        top_p_value,
    )
    from tuitune.commands._gpus import add_gpus

    parser.add_argument("target", metavar="MODEL_OR_RUN", help="a run name (in --runs-dir), a run folder, a model folder, a .gguf file or a hub id")
    parser.add_argument("--prompt", "-p", default=None, help="answer this one prompt and exit (default: an interactive chat)")
    parser.add_argument("--compare", action="store_true", help="answer with the base model and the tuned model (same prompt, same seed)")
    parser.add_argument("--system", default=None, help="system prompt (default: the run's data.system)")
    parser.add_argument("--temperature", type=non_negative_float, default=0.7, help="0 = greedy; higher = more varied (default 0.7)")
    parser.add_argument("--top-p", type=top_p_value, default=0.9, help="nucleus sampling share in (0, 1] (default 0.9)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=256, help="longest reply in tokens (default 256)")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed: the same seed gives the same reply")
    add_trust_remote_code(parser)
    add_runs_dir(parser)
    add_gpus(parser)


def run(args: argparse.Namespace) -> int:
    from tuitune.commands._args import apply_trust_remote_code
    from tuitune.commands._args import runs_dir as runs_dir_of
    from tuitune.commands._gpus import use_gpus
    from tuitune.core.chat import ChatSession, GenerationSettings, same_seed
    from tuitune.core.errors import UserError
    from tuitune.core.tuned import quiet_libraries

    apply_trust_remote_code(args)
    runs_dir = runs_dir_of(args)
    settings = GenerationSettings(
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed, system=args.system
    )
    settings.check()
    from rich.console import Console

    from tuitune.commands.pull import download_bars
    from tuitune.core.models.hub_download import reporting
    from tuitune.core.tuned import resolve_target

    # Resolve before loading anything, so a wrong name or an unfinished run fails at once. A hub
    # model that is not cached yet is downloaded here, with progress bars.
    with download_bars(Console(stderr=True)) as show, reporting(show):
        resolve_target(args.target, runs_dir)
        use_gpus(args, args.target, runs_dir)
        quiet_libraries()
        start = time.perf_counter()
        _note(f"loading {args.target} ...")
        session = ChatSession.open(args.target, runs_dir)  # a run's base model may need a download too
    _note(f"loaded {session.label} in {time.perf_counter() - start:.1f} s")
    if args.compare:
        if not session.can_compare:
            raise UserError(f"--compare needs a run: {args.target} is a plain model", "give a run name or a run folder")
        _note(session.compare_note)
        settings = same_seed(settings)
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UserError("--prompt is empty", "give the text to answer")
        messages = [{"role": "user", "content": args.prompt}]
        if args.compare:
            _answer_both(session, messages, settings)
        else:
            _answer(session, messages, settings)
        return 0
    return _interactive(session, settings, args.compare)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _answer(session, messages, settings, *, use_adapter: bool = True) -> str:
    """Stream one reply to stdout. ctrl+c stops it and keeps what was written."""
    import threading

    cancel = threading.Event()
    parts: list[str] = []
    start = time.perf_counter()
    stream = session.stream(messages, settings, cancel, use_adapter=use_adapter)
    try:
        for piece in stream:
            parts.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        cancel.set()
        stream.close()
        sys.stdout.write(" [stopped]")
    sys.stdout.write("\n")
    sys.stdout.flush()
    if sys.stderr.isatty():
        _note(f"({time.perf_counter() - start:.1f} s)")
    return "".join(parts)


def _answer_both(session, messages, settings, histories=None) -> tuple[str, str]:
    base_label = "base (adapter off)" if session.loaded.kind == "adapter" else "base"
    print(f"--- {base_label} ---", flush=True)
    base = _answer(session, histories[0] if histories else messages, settings, use_adapter=False)
    print(f"--- tuned: {session.label} ---", flush=True)
    tuned = _answer(session, histories[1] if histories else messages, settings, use_adapter=True)
    return base, tuned


def _interactive(session, settings, compare: bool) -> int:
    from dataclasses import replace

    # With --compare, base and tuned each keep their own history: each sees its own earlier replies.
    histories: list[list[dict[str, str]]] = [[], []] if compare else [[]]
    system = session.default_system if settings.system is None else settings.system
    _note(f"chatting with {session.label}. /help for commands.")
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit", "/q"):
            return 0
        if text == "/help":
            print(INTERACTIVE_HELP)
            continue
        if text == "/reset":
            for h in histories:
                h.clear()
            _note("conversation cleared")
            continue
        if text == "/system" or text.startswith("/system "):
            value = text[len("/system"):].strip()
            if value:
                system = "" if value == "-" else value
                settings = replace(settings, system=system)
                _note(f"system prompt {'removed' if not system else 'set'}")
            else:
                print(f"system prompt: {system!r}")
            continue
        if text.startswith("/"):
            _note(f"unknown command {text.split()[0]}; /help lists them")
            continue
        for h in histories:
            h.append({"role": "user", "content": text})
        if compare:
            base, tuned = _answer_both(session, None, settings, histories)
            histories[0].append({"role": "assistant", "content": base})
            histories[1].append({"role": "assistant", "content": tuned})
        else:
            reply = _answer(session, histories[0], settings)
            histories[0].append({"role": "assistant", "content": reply})
