"""Errors meant for the user: a message that names what was wrong and where, plus a hint."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix. The CLI prints it as one line (plus a hint) with exit code 2."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"
