"""What the subcommands share in argparse: value types with clear messages (exit 2) and `--runs-dir`."""

from __future__ import annotations

import argparse
import math

# Where each parser level keeps its --runs-dir, most specific first: a nested action (`runs watch`),
# the subcommand, then `tuitune --runs-dir DIR COMMAND` (argparse copies a subparser's defaults over
# its parent's values, so every level needs a name of its own).
_RUNS_DIR_DESTS = ("action_runs_dir", "command_runs_dir", "runs_dir")


def add_runs_dir(parser: argparse.ArgumentParser, nested: bool = False) -> None:
    """Give a (sub)command `--runs-dir`; read it back with `runs_dir(args)`."""
    parser.add_argument("--runs-dir", dest=_RUNS_DIR_DESTS[0 if nested else 1], default=None, metavar="RUNS_DIR",
                        help="where runs live (default: ./runs)")


def runs_dir(args: argparse.Namespace) -> str:
    """The runs folder the command line names, at whichever level it was given; ./runs by default."""
    for dest in _RUNS_DIR_DESTS:
        value = getattr(args, dest, None)
        if value:
            return value
    return "runs"


def add_trust_remote_code(parser: argparse.ArgumentParser) -> None:
    """`--trust-remote-code`: a run folder whose recipe turns on model.trust_remote_code may run the
    model's own Python code (refused without it: the folder may come from someone else)."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a run whose recipe sets model.trust_remote_code to run the model's own code")


def apply_trust_remote_code(args: argparse.Namespace) -> None:
    if getattr(args, "trust_remote_code", False):
        from tuitune.core.runs import allow_remote_code

        allow_remote_code()


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; use 0 or more")
    return value


def top_p_value(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is outside (0, 1]; use e.g. 0.9")
    return value


def _whole_at_least(text: str, low: int, problem: str) -> int:
    value = _whole(text)
    if value < low:
        raise argparse.ArgumentTypeError(f"{text} {problem}")
    return value


def positive_int(text: str) -> int:
    return _whole_at_least(text, 1, "must be 1 or more")


def non_negative_int(text: str) -> int:
    return _whole_at_least(text, 0, "is negative; use 0 or more")
