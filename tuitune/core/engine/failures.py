"""Turn whatever stopped a training run into one `error` event: kind, a human message, a hint."""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

from tuitune.core.errors import UserError


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite; continuing would only spread it into the weights."""

    def __init__(self, step: int, value: str = "nan") -> None:
        super().__init__(f"loss became {value} at step {step}")
        self.step = step


class DataError(UserError):
    """A UserError raised while preparing the training data (reported as kind "data")."""


@dataclass
class Failure:
    kind: str  # oom | nan | data | config | disk | exception
    message: str
    hint: str

    def as_event(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message, "hint": self.hint}


OOM_HINT = (
    "lower train.batch_size (raise train.gradient_accumulation to keep the effective batch), "
    "turn on train.gradient_checkpointing, lower data.cutoff_len, or use method qlora"
)
NAN_HINT = (
    "lower train.learning_rate (e.g. by 3-10x), keep train.max_grad_norm = 1.0 and some warm-up, "
    "prefer bf16 to fp16; check the data for empty or garbled rows"
)


# A full disk, a quota, a read-only or foreign folder: the user can fix these, then resume.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def describe(exc: BaseException, step: int | None = None) -> Failure:
    """Classify an exception. Numbers for out-of-memory come from the message and the allocator."""
    import torch

    where = f" at step {step}" if step else ""
    if isinstance(exc, DataError):
        return Failure("data", exc.message, exc.hint)
    if isinstance(exc, UserError):
        return Failure("config", exc.message, exc.hint)
    if isinstance(exc, NonFiniteLoss):
        return Failure("nan", f"training stopped: {exc}", NAN_HINT)
    if isinstance(exc, torch.OutOfMemoryError):
        from tuitune.core.engine.resources import gpu_totals

        text = str(exc)
        asked = re.search(r"Tried to allocate ([\d.]+ [KMGT]i?B)", text)
        parts = [f"out of GPU memory{where}"]
        if asked:
            parts.append(f"tried to allocate {asked.group(1)}")
        cap = re.search(r"total capacity of ([\d.]+ [KMGT]i?B) of which ([\d.]+ [KMGT]i?B) is free", text)
        totals = gpu_totals()
        if cap:
            parts.append(f"GPU total {cap.group(1)}, free {cap.group(2)}")
        elif totals:
            parts.append(f"GPU total {_gib(totals[1])}, free {_gib(totals[0])}")
        used = re.search(r"([\d.]+ [KMGT]i?B) is allocated by PyTorch, and ([\d.]+ [KMGT]i?B) is reserved", text)
        if used:
            parts.append(f"PyTorch allocated {used.group(1)}, reserved {used.group(2)}")
        return Failure("oom", "; ".join(parts), OOM_HINT)
    if isinstance(exc, MemoryError):
        return Failure("oom", f"out of CPU memory{where}", OOM_HINT)
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        from tuitune.core.runs.disk import disk_hint, os_error_text

        what = f" writing {exc.filename}" if exc.filename else ""
        return Failure("disk", f"{os_error_text(exc)}{what}{where}",
                       f"{disk_hint(exc)}; then continue from the last checkpoint with `tuitune train --resume`")
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return Failure("exception", f"{type(exc).__name__}{where}: {first}"[:500], "the full traceback is in train.log")
