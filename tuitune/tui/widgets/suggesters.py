"""Completion as you type (shown greyed after the cursor; right arrow or end accepts it).

PathSuggester completes file and folder names; ModelSuggester completes the built-in catalog's
names (short aliases first) and, for text that looks like a path, files and folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.suggester import Suggester

PATH_STARTS = ("/", ".", "~")


def complete_path(text: str, suffixes: tuple[str, ...] = ()) -> str | None:
    """The first entry of the typed folder that starts with the typed name (hidden entries only
    when asked for with a dot); folders get a trailing slash. `suffixes` limits files to those."""
    if not text:
        return None
    folder, sep, stem = os.path.expanduser(text).rpartition("/")
    base = Path(folder + sep) if sep else Path(".")  # "/us" -> "/", "recipes/da" -> "recipes/"
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return None
    for name in names:
        if not name.startswith(stem) or name == stem or (name.startswith(".") and not stem.startswith(".")):
            continue
        is_dir = (base / name).is_dir()
        if not is_dir and suffixes and not name.lower().endswith(suffixes):
            continue
        # Keep what the user typed (a leading ~ stays ~) and add the rest of the name.
        return text + name[len(stem) :] + ("/" if is_dir else "")
    return None


class PathSuggester(Suggester):
    def __init__(self, suffixes: tuple[str, ...] = ()) -> None:
        # The file system answers differently over time: no cache; paths are case-sensitive.
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = suffixes

    async def get_suggestion(self, value: str) -> str | None:
        return complete_path(value, self.suffixes)


class ModelSuggester(Suggester):
    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        from tuitune.core.models.catalog import ALIASES, catalog_names

        self.names = list(ALIASES) + catalog_names()

    async def get_suggestion(self, value: str) -> str | None:
        if value.startswith(PATH_STARTS):
            return complete_path(value)
        low = value.casefold()
        for name in self.names:
            if name.casefold().startswith(low) and len(name) > len(value):
                return value + name[len(value) :]
        return None


class TaskListSuggester(Suggester):
    """Completes the last name of a comma-separated list ("mmlu, cm" -> "mmlu, cmmlu") from `names`."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names = names

    async def get_suggestion(self, value: str) -> str | None:
        head, _, last = value.rpartition(",")
        stem = last.lstrip()
        if not stem:
            return None
        for name in self.names:
            if name.startswith(stem) and name != stem:
                return value + name[len(stem) :]
        return None
