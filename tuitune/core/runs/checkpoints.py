"""Checkpoints checked before a resume: the newest intact one wins, damaged ones are named and set aside.

A kill or a full disk can leave a checkpoint with a truncated adapter or optimizer file, a half-written
trainer_state.json or an empty RNG state; resuming from it fails deep inside torch. Every file is
checked by tuitune.core.file_checks (headers and zip directories, never the tensors), and
trainer_state.json must name the checkpoint's step. (The engine writes trainer_state.json last and
atomically, after the other files are on disk: engine.checkpointing.) Standard library only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tuitune.core.file_checks import TORCH_SUFFIXES, file_problem
from tuitune.core.runs.directory import RunDirectory
from tuitune.core.runs.ownership import DAMAGED_DIR

TRAINER_STATE = "trainer_state.json"


def checkpoint_folders(run: RunDirectory) -> list[tuple[int, Path]]:
    """Every checkpoint-STEP folder, finished or not, oldest first."""
    if not run.checkpoints_dir.is_dir():
        return []
    found = []
    for p in run.checkpoints_dir.glob("checkpoint-*"):
        suffix = p.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and p.is_dir():
            found.append((int(suffix), p))
    return sorted(found)


def checkpoint_problem(folder: Path) -> str | None:
    """None when the checkpoint looks intact; else 'FILE: what is wrong with it'."""
    state = folder / TRAINER_STATE
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{TRAINER_STATE}: missing (saving was cut off)"
    except (ValueError, UnicodeDecodeError):
        return f"{TRAINER_STATE}: not valid JSON (cut off while it was written)"
    except OSError as e:
        return f"{TRAINER_STATE}: {e.strerror or e}"
    step = folder.name.rsplit("-", 1)[-1]
    if not isinstance(data, dict) or str(data.get("global_step")) != step:
        return f"{TRAINER_STATE}: does not record step {step}"
    try:
        files = sorted(folder.iterdir())
    except OSError as e:  # moved or removed meanwhile
        return f"{folder.name}: {e.strerror or e}"
    weights = False
    subfolders = False
    for f in files:
        if f.is_dir():
            subfolders = True  # sharded (FSDP) states live in folders: not checked here
            continue
        problem = file_problem(f)
        if problem:
            return f"{f.name}: {problem}"
        weights = weights or f.suffix == ".safetensors" or (f.suffix in TORCH_SUFFIXES and "model" in f.name)
    if not weights and not subfolders:
        return "no model or adapter weights in it"
    return None


def newest_intact_checkpoint(run: RunDirectory) -> tuple[Path | None, list[tuple[Path, str]]]:
    """(the newest checkpoint that passes the checks, [(each newer one, its problem)])."""
    skipped: list[tuple[Path, str]] = []
    for _, folder in reversed(checkpoint_folders(run)):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder, skipped
        skipped.append((folder, problem))
    return None, skipped


def set_aside(run: RunDirectory, folder: Path) -> Path:
    """Move a damaged checkpoint to RUN/damaged-checkpoints/ (kept for a look, out of the trainer's way)."""
    target_dir = run.path / DAMAGED_DIR
    target_dir.mkdir(exist_ok=True)
    target, n = target_dir / folder.name, 1
    while target.exists():
        n += 1
        target = target_dir / f"{folder.name}.{n}"
    os.replace(folder, target)
    return target
