"""Asking before a run's own model code runs (core.runs.remote_code): once per run and app session.

A run folder whose recipe sets model.trust_remote_code is refused by core until allowed; the app asks
with a yes/no dialog and, on yes, allows that run for the rest of the session (in this process, and
by passing --trust-remote-code to the commands it starts for that run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.runs import RemoteCodeRefused, RunDirectory, allow_remote_code, check_remote_code
from tuitune.core.runs.remote_code import remote_code_allowed
from tuitune.tui.i18n import t


def refusal(run_path: str | Path) -> RemoteCodeRefused | None:
    """The refusal core would give for this run now; None when nothing needs asking (or it cannot tell)."""
    try:
        check_remote_code(RunDirectory(run_path))
    except RemoteCodeRefused as e:
        return e
    except UserError:  # no readable recipe: the command itself will say so
        return None
    return None


def remote_code_args(run_path: str | Path) -> list[str]:
    """`--trust-remote-code` for a command about this run, when the user allowed it here."""
    return ["--trust-remote-code"] if remote_code_allowed(run_path) else []


async def ask_remote_code(app: Any, refused: RemoteCodeRefused) -> bool:
    """Ask in a dialog (from an async worker); on yes the run is allowed for this session."""
    from tuitune.tui.dialogs.confirm import ConfirmDialog

    lang = getattr(app, "lang", "en")
    question = t("remote.ask", lang, run=Path(refused.run_path).name, model=refused.model)
    if await app.push_screen_wait(ConfirmDialog(t("remote.title", lang), question)):
        allow_remote_code(refused.run_path)
        return True
    return False
