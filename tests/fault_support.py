"""Real faults for the reliability tests: read-only and full file systems, an OS call that fails.

The tests run as root, which ignores file permissions, so an unwritable folder is made with a
read-only tmpfs mount (else `chattr +i`), and a full disk with a tiny tmpfs filled to the brim.
Where the machine allows neither (no mount rights), the fixtures skip and the tests that fake the
error at the OS call still run.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


@contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """`path` (created) on a read-only file system, or immutable; skips when neither is possible."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") and _run("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)):
        try:
            yield path
        finally:
            _run("umount", str(path))
        return
    if shutil.which("chattr") and _run("chattr", "+i", str(path)):
        try:
            yield path
        finally:
            _run("chattr", "-i", str(path))
        return
    pytest.skip("cannot make a read-only folder here (no mount rights, no chattr)")


@contextmanager
def full_folder(path: Path, size: str = "256k") -> Iterator[Path]:
    """`path` on a tiny tmpfs whose space is used up by a filler file; skips without mount rights."""
    path.mkdir(parents=True, exist_ok=True)
    if not (shutil.which("mount") and _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))):
        pytest.skip("cannot mount a small file system here")
    try:
        with open(path / ".filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as e:
                assert e.errno == errno.ENOSPC
        os.sync()
        yield path
    finally:
        _run("umount", str(path))


def failing(real: Callable, errno_: int, when: Callable[..., bool]) -> Callable:
    """`real` (an os function), except that calls for which `when(*args)` is true raise OSError(errno_)."""

    def call(*args, **kwargs):
        if when(*args):
            raise OSError(errno_, os.strerror(errno_), str(args[-1]) if args else None)
        return real(*args, **kwargs)

    return call
