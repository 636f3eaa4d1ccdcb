"""`python -m tuitune.core.engine.together.worker [--resume] RUN_DIR...`: a group's trainer process."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuitune-group-worker", description="train the runs of a group together")
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from tuitune.core.engine.together.session import LOCK_FDS_ENV, train_group

    fds = os.environ.pop(LOCK_FDS_ENV, "")
    lock_fds = fds.split(",") if fds else None
    if lock_fds is not None and len(lock_fds) != len(args.run_dirs):
        lock_fds = None
    return train_group(args.run_dirs, resume=args.resume, lock_fds=lock_fds)


if __name__ == "__main__":
    sys.exit(main())
