"""Ctrl-C while `tuitune train` follows a trainer: the first asks it to stop, the second leaves it running."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def first_ctrl_c_stops(console: Any, request_stop: Callable[[], None], saying: str) -> Iterator[None]:
    """The first Ctrl-C (or SIGTERM) calls request_stop (the trainer checkpoints, then stops) and prints
    `saying`; a second raises KeyboardInterrupt, for the caller to leave the trainer in the background."""
    interrupts = 0

    def on_signal(signum, frame):  # noqa: ANN001
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            raise KeyboardInterrupt
        request_stop()
        console.print(f"[yellow]{saying} (Ctrl-C again to leave it running in the background)[/]", soft_wrap=True)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
