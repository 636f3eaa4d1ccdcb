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

    try:
        return train_run(args.run_dir, resume=args.resume)
    finally:
        _leave_process_group()


def _leave_process_group() -> None:
    """Tear the process group down before the interpreter exits: left to exit, gloo's threads can be
    destroyed while still joinable ("terminate called without an active exception", SIGABRT after a
    finished run, seen once in two-process CPU training)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - a peer already gone: nothing left to tear down
            pass


if __name__ == "__main__":
    sys.exit(main())
