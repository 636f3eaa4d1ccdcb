"""Run a long, CPU-bound core function in a child process, from a worker thread.

A thread worker is enough for work that waits (files, the network) or runs in C without the GIL
(tokenizers, torch). Pure-Python loops over millions of rows are different: a thread holding the
GIL makes the event loop wait for it at every turn, and keys answer in hundreds of milliseconds
instead of tens. In a child process the loop keeps the GIL to itself.

The function must be importable (module level) and accept a `progress(n)` keyword, as core's long
functions do. Call `run_in_child` from a thread worker: it blocks until the child answers, passes
progress on as it comes, and ends the child when `cancel` is set (only for read-only work: the
child is terminated, not asked).

A plain `python -m tuitune.tui.child_process` with pipes rather than multiprocessing: Textual
replaces sys.stdout/stderr, which multiprocessing's resource tracker cannot start with, and
forking a process that runs threads can copy a held lock into the child.
"""

from __future__ import annotations

import base64
import os
import pickle
import selectors
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from typing import Any

from tuitune.core.errors import UserError

POLL_S = 0.1  # how often the parent looks at `cancel` while the child is quiet


class ChildFailed(RuntimeError):
    """The function raised something other than UserError in the child; the message holds its traceback."""


def child_env() -> dict[str, str]:
    """The environment for a Python child of the app (`python -m tuitune ...` too): this
    interpreter's import path, so it finds the same tuitune wherever its working folder is."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def run_in_child(
    fn: Callable[..., Any],
    *args: Any,
    progress: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    **kwargs: Any,
) -> Any:
    """`fn(*args, progress=..., **kwargs)` in a fresh process; its result, or its UserError raised
    here. None when `cancel` was set before it answered."""
    env = child_env()
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child cannot fill it and stall
    child = subprocess.Popen(
        [sys.executable, "-m", "tuitune.tui.child_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(pickle.dumps((fn, args, kwargs)))
    child.stdin.close()
    answer: bytes | None = None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(child.stdout, selectors.EVENT_READ)
            buffer = b""
            while answer is None:
                if cancel is not None and cancel.is_set():
                    return None
                if not sel.select(timeout=POLL_S):
                    continue
                chunk = os.read(child.stdout.fileno(), 1 << 16)
                if not chunk:
                    break  # the child ended
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"progress ") and progress is not None:
                        progress(int(line.split()[1]))
                    elif line.startswith(b"answer "):
                        answer = line[len(b"answer ") :]
    finally:
        if child.poll() is None:
            child.terminate()
        child.wait()
        child.stdout.close()
        errors.seek(0)
        err = errors.read()[-4000:].decode(errors="replace")
        errors.close()
    if answer is None and cancel is not None and cancel.is_set():
        return None  # cancelled while the child ended: its end says nothing about the work
    if answer is None:
        raise ChildFailed(f"{getattr(fn, '__name__', fn)} ended without an answer (exit code {child.returncode})\n{err}")
    kind, value = pickle.loads(base64.b64decode(answer))
    if kind == "user":
        raise UserError(*value)
    if kind == "fail":
        raise ChildFailed(value)
    return value


def _main() -> None:
    """In the child: read (fn, args, kwargs) from stdin, report progress lines, then one answer line."""
    fn, args, kwargs = pickle.loads(sys.stdin.buffer.read())
    out = sys.stdout.buffer

    def progress(n: int) -> None:
        out.write(b"progress %d\n" % n)
        out.flush()

    try:
        result: tuple[str, Any] = ("ok", fn(*args, progress=progress, **kwargs))
    except UserError as e:
        result = ("user", (e.message, e.hint))
    except Exception:  # noqa: BLE001 - everything else travels back as text
        result = ("fail", traceback.format_exc())
    out.write(b"answer " + base64.b64encode(pickle.dumps(result)) + b"\n")
    out.flush()


if __name__ == "__main__":
    _main()
