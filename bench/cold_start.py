#!/usr/bin/env python3
"""Measure how long `tuitune` takes from the command to its first painted frame.

Method: start `python -m tuitune` in a pseudo-terminal of 80x24 (TERM=xterm-256color), exactly as a
user's shell would, and read what it writes. The clock starts just before the process is spawned
(so interpreter start-up and every import count) and stops when the output, with escape sequences
removed, contains both the top line's mode names and the footer's "Quit": Textual writes a whole frame
at once, so at that moment the user sees the complete first screen. Then ctrl+q quits the app.

Runs N times (default 5) and prints each figure, the median and the best. The first run also warms the
page cache; later runs are the usual case of a user who has started the app before. The target is
<= 0.3 s (issue 15). The same check that keeps torch out of this path is a test (tests/tui/test_startup_imports.py).

    PYTHONPATH=. python bench/cold_start.py [--runs N] [--lang en|zh]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(
    rb"\x1b(\[[0-9;?<=>$ ]*[A-Za-z~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMNOPZc])"
)
TIMEOUT_S = 30.0


def first_frame_seconds(lang: str, markers: tuple[bytes, ...]) -> float:
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="80", LINES="24")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuitune", "--lang", lang],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    elapsed = None
    try:
        while time.perf_counter() - start < TIMEOUT_S:
            ready, _, _ = select.select([leader], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            seen += chunk
            text = ANSI.sub(b"", seen)
            if all(m in text for m in markers):
                elapsed = time.perf_counter() - start
                break
    finally:
        try:
            os.write(leader, b"\x11")  # ctrl+q
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        os.close(leader)
    if elapsed is None:
        tail = ANSI.sub(b"", seen)[-400:].decode("utf-8", "replace")
        raise SystemExit(f"no first frame within {TIMEOUT_S:.0f} s; the app wrote:\n{tail}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lang", choices=("en", "zh"), default="en")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tuitune.tui.i18n import t

    markers = (t("mode.hardware", args.lang).encode(), t("key.quit", args.lang).encode())
    baseline = []
    for _ in range(3):
        s = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - s)
    figures = [first_frame_seconds(args.lang, markers) for _ in range(args.runs)]
    load = os.getloadavg()[0]
    print("cold start to first frame (python -m tuitune in an 80x24 pty):")
    print("  runs:   " + "  ".join(f"{f:.3f}" for f in figures) + " s")
    print(f"  median: {statistics.median(figures):.3f} s   best: {min(figures):.3f} s   target: <= 0.3 s")
    print(
        f"  (bare interpreter start: {min(baseline):.3f} s; 1-minute load average while measuring: {load:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
