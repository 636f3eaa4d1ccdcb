"""`python -m tuitune.core.engine.worker RUN_DIR [--resume]`: the trainer process (one per rank)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tuitune-worker", description="train the run in RUN_DIR")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from tuitune.core.engine.session import train_run

    return train_run(args.run_dir, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
