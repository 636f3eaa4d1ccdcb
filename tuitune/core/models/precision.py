"""One precision policy: the dtype weights load in, the dtype QLoRA computes in, and whether training
runs under autocast, on a given device.

Loading (models/loading.py) turns these names into torch dtypes and Trainer flags; the memory
estimator (memory/setup.py) turns them into bytes. Both read this module, so what is estimated is
what is loaded. Standard library only: the estimator must not import torch.
"""

from __future__ import annotations

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def dtype_name(choice: str, device: str, bf16: bool) -> str:
    """A recipe dtype (auto | bfloat16 | float16 | float32) on `device`.

    auto = float32 on CPU; on a GPU bfloat16 when it supports it (`bf16`), else float16.
    """
    if choice != "auto":
        return choice
    if device == "cpu":
        return "float32"
    return "bfloat16" if bf16 else "float16"


def autocast_mode(choice: str, device: str, bf16: bool) -> str:
    """The mixed precision training runs with ("bf16", "fp16" or "no") for train.mixed_precision.

    `bf16` on a GPU: it supports bfloat16; on the CPU: it multiplies bfloat16 natively
    (cpu_bf16_native), the only case where a CPU trains under autocast (an explicit "bf16"; auto
    means float32 there, because emulated bf16 is slower than fp32).
    """
    if device == "cpu":
        return "bf16" if choice == "bf16" and bf16 else "no"
    if choice == "auto":
        return "bf16" if bf16 else "fp16"
    return choice


def cpu_bf16_native() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX or AVX512-BF16).

    Only there is CPU autocast a win: measured on a Sapphire Rapids core, bf16 matrix products run at
    5x the fp32 rate and a LoRA step of the demo model is ~1.5x faster; without these instructions
    bf16 is emulated and slower than fp32.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags
