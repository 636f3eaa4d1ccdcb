"""`model.trust_remote_code = true` in a run folder's recipe runs only when the user said so.

A run folder may come from someone else (copied, shared on the server): its frozen recipe could turn
on `trust_remote_code`, and loading the model would then run the Python files of the model folder.
Opening such a run to load it (chat, eval, export, resume, training a prepared folder) is refused
unless this process was allowed to: the CLI's `--trust-remote-code` allows every run the command
names, the app allows one run after the user confirms. A recipe the user trains directly
(`tuitune train RECIPE`) is their own choice and needs nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.runs.directory import RunDirectory

_EVERY_RUN = "*"
_allowed: set[str] = set()


class RemoteCodeRefused(UserError):
    """The run's recipe wants the model's own code run and nobody allowed it (the app asks, then retries)."""

    def __init__(self, run: RunDirectory, model: str) -> None:
        super().__init__(
            f"run '{run.name}' has model.trust_remote_code = true in its recipe: loading {model} would run the "
            "Python code that comes with that model",
            "if you trust the model and where this run folder came from, add --trust-remote-code",
        )
        self.run_path = str(run.path)
        self.model = model


def allow_remote_code(run_path: str | Path | None = None) -> None:
    """Allow remote code for one run folder, or (None) for every run this process opens."""
    _allowed.add(_EVERY_RUN if run_path is None else str(Path(run_path).resolve()))


def remote_code_allowed(run_path: str | Path) -> bool:
    return _EVERY_RUN in _allowed or str(Path(run_path).resolve()) in _allowed


def check_remote_code(run: RunDirectory) -> None:
    """RemoteCodeRefused when the run's recipe turns on trust_remote_code and it was not allowed."""
    recipe = run.recipe
    if recipe.model.trust_remote_code and not remote_code_allowed(run.path):
        raise RemoteCodeRefused(run, recipe.model.name_or_path)
