"""The run's lock file: an exclusive flock held by the trainer that owns the run, naming its pid.

flock locks belong to the open file description, so a parent can take the lock and hand the
descriptor to the trainer it starts, and the kernel drops the lock when the holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Any

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class LockBusy(Exception):
    """Another process holds the lock."""


def lock_held(path: Path) -> bool:
    """Whether some process holds the lock now. Probes with a shared lock, released at once."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in _BUSY:
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holder_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (FileNotFoundError, ValueError):
        return None


def verified_holder(path: Path) -> int | None:
    """The pid the lock file names, if that process really has the lock file open; else None.

    The file's text alone could be stale or written by anyone; /proc/PID/fd shows whether the process
    holds a descriptor on this very file (the kernel keeps the flock on that descriptor). Where /proc
    is missing, the named pid is trusted.
    """
    pid = holder_pid(path)
    if pid is None or pid <= 0:
        return None
    fd_dir = Path(f"/proc/{pid}/fd")
    if not Path("/proc/self/fd").is_dir():
        return pid
    try:
        target = os.stat(path)
        for entry in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                st = os.stat(entry)
                if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                    return pid
    except OSError:  # gone, or not ours to look at
        return None
    return None


def take_lock(path: Path, wait_s: float) -> int:
    """An open descriptor holding the exclusive lock; LockBusy when it stays taken for wait_s."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as e:
            if e.errno not in _BUSY:
                os.close(fd)
                raise
            # A reader's probe holds a shared lock for microseconds: retry briefly before giving up.
            if time.monotonic() > deadline:
                os.close(fd)
                raise LockBusy(str(path)) from None
            time.sleep(0.05)


class RunLock:
    """An exclusive flock on runs/NAME/lock; the file names the holder's pid for messages."""

    def __init__(self, run: Any, fd: int) -> None:
        self.run = run  # the RunDirectory it locks
        self.fd = fd

    def set_holder(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(pid).encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
