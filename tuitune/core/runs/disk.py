"""Disk trouble in a user's words: a full disk, a read-only or someone else's folder.

`writing(path, what)` turns an OSError raised while tuitune writes its own files into a UserError
naming the file and what would help, so a full or read-only runs folder is one line, not a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuitune.core.errors import UserError

_HINTS = {
    errno.ENOSPC: "free some space on that disk, or point output.runs_dir (or --runs-dir) at another disk",
    errno.EDQUOT: "your disk quota is used up: free some space, or use a folder on another disk",
    errno.EROFS: "that file system is read-only: use a runs folder on a writable disk (output.runs_dir or --runs-dir)",
    errno.EACCES: "you may not write there: use a runs folder you own (output.runs_dir or --runs-dir)",
    errno.EPERM: "you may not write there: use a runs folder you own (output.runs_dir or --runs-dir)",
}


def os_error_text(e: OSError) -> str:
    """'No space left on device' rather than '[Errno 28] No space left on device: ...'."""
    return e.strerror or (os.strerror(e.errno) if e.errno else str(e))


def disk_hint(e: OSError) -> str:
    return _HINTS.get(e.errno or 0, "check that the folder exists and that you can write to it")


@contextmanager
def writing(path: str | Path, what: str = "") -> Iterator[None]:
    """Run the body; an OSError becomes `UserError("cannot write PATH (what): reason", hint)`."""
    try:
        yield
    except OSError as e:
        where = Path(getattr(e, "filename", None) or path)
        doing = f" ({what})" if what else ""
        raise UserError(f"cannot write {where}{doing}: {os_error_text(e)}", disk_hint(e)) from e
