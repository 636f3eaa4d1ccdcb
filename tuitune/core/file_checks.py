"""Is this saved file whole? Cheap checks of what a kill, a full disk or a half-finished copy leaves.

Only headers and directories are read, never the tensors: a safetensors file must be exactly as long
as its header says, a torch.save file (a zip) must have its central directory with every member inside
the file, a JSON file must parse. Used before resuming from a checkpoint (runs.checkpoints) and before
loading a model or an adapter (models.load_errors), so a damaged file is named instead of failing deep
inside a library. Standard library only.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def file_problem(path: Path) -> str | None:
    """What is wrong with a .safetensors, torch (.pt/.pth/.bin) or .json file; None when it looks whole
    (or is of another kind)."""
    if path.suffix == ".safetensors":
        return _safetensors_problem(path)
    if path.suffix in TORCH_SUFFIXES:
        return _torch_file_problem(path)
    if path.suffix == ".json":
        return _json_problem(path)
    return None


def folder_problem(folder: Path, suffixes: tuple[str, ...] | None = None) -> str | None:
    """'FILE: problem' for the first damaged file directly in `folder` (only those ending in one of
    `suffixes`, when given); None when all look whole."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and (suffixes is None or p.suffix in suffixes))
    except OSError as e:
        return f"{folder.name}: {e.strerror or e}"
    for f in files:
        problem = file_problem(f)
        if problem:
            return f"{f.name}: {problem}"
    return None


def _size(path: Path) -> int:
    return os.stat(path).st_size


def _safetensors_problem(path: Path) -> str | None:
    try:
        size = _size(path)
        if size < 8:
            return "empty" if size == 0 else f"cut off ({size} bytes)"
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if header_len > size - 8:
                return f"cut off ({size} bytes; its header alone should take {header_len})"
            header = json.loads(f.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except OSError as e:
        return e.strerror or str(e)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "not a valid safetensors file (damaged header)"
    expected = 8 + header_len + end
    if expected != size:
        return f"cut off ({size} bytes of {expected})" if size < expected else f"has {size - expected} stray bytes at its end"
    return None


def _torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip: its directory sits at the end, so a truncated file has none."""
    try:
        size = _size(path)
        if size == 0:
            return "empty"
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.header_offset + info.compress_size > size:
                    return "cut off"
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            legacy = not f.read(2).startswith(b"PK")  # torch's old pickle format: nothing cheap to check
        return None if legacy else "cut off or damaged (its zip directory is unreadable)"
    except OSError as e:
        return e.strerror or str(e)
    return None


def _json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "not valid JSON"
    except OSError as e:
        return e.strerror or str(e)
    return None
