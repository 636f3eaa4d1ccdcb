"""Where rows come from: decide what kind of source a path or name is.

A local file by its suffix (or, without a known suffix, by its first character), a folder of such
files, or otherwise a hub dataset name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tuitune.core.errors import UserError

SUFFIX_KINDS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
    ".text": "txt",
}
KIND_WORDS = ".jsonl, .json, .csv, .tsv, .parquet or .txt"
HUB_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class Source:
    """A resolved data source. `files` lists (path, kind) in reading order for local sources."""

    kind: str  # jsonl | json | csv | tsv | parquet | txt | folder | hub
    name: str  # as the user gave it
    path: Path | None = None
    files: tuple[tuple[Path, str], ...] = field(default_factory=tuple)

    @property
    def is_folder(self) -> bool:
        return self.kind == "folder"


def resolve_source(path: str | Path) -> Source:
    """What `path` is; UserError (one line) when it is neither a readable file/folder nor a hub name."""
    name = str(path)
    if not name.strip():
        raise UserError("no dataset given", "set data.path to a file, a folder or a hub dataset name")
    p = Path(name).expanduser()
    if p.is_dir():
        files = tuple((f, kind) for f in _data_files(p) if (kind := file_kind(f, sniff=False)))
        if not files:
            raise UserError(f"{p}: the folder has no data files", f"put {KIND_WORDS} files in it")
        return Source("folder", name, p, files)
    if p.is_file():
        kind = file_kind(p)
        if kind is None:
            raise UserError(f"{p}: unsupported file type '{p.suffix}'", f"use a {KIND_WORDS} file")
        return Source(kind, name, p, ((p, kind),))
    if p.suffix.lower() in SUFFIX_KINDS or name.startswith((".", "/", "~")) or "\\" in name:
        raise UserError(f"{name}: no such file or folder", "check the path (relative paths start from the recipe's folder)")
    if HUB_NAME_RE.match(name):
        return Source("hub", name)
    raise UserError(f"{name}: no such file or folder, and not a hub dataset name", "use a local path or a name like org/dataset")


def file_kind(path: Path, sniff: bool = True) -> str | None:
    kind = SUFFIX_KINDS.get(path.suffix.lower())
    if kind or not sniff:
        return kind
    # No known suffix: JSON and JSONL announce themselves by their first character.
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return None
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"["):
        return "json"
    return None


def _data_files(folder: Path) -> list[Path]:
    """Data files under a folder, sorted, skipping hidden files and folders (.git, .cache, ...) and
    LLaMA-Factory's dataset_info.json (it describes data, it is none)."""
    out = []
    # os.walk rather than Path.rglob: hidden folders are pruned instead of walked, and a folder that
    # vanishes or cannot be read during the walk is skipped (rglob raises; seen on "/" and /proc).
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            f = Path(root) / name
            if name.startswith(".") or name == "dataset_info.json" or f.suffix.lower() not in SUFFIX_KINDS:
                continue
            if f.is_file():
                out.append(f)
    return sorted(out)
