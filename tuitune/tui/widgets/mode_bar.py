"""The top line: every mode with its key, the current one highlighted; click or press the key."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tuitune.tui.i18n import t
from tuitune.tui.screens import MODES


class ModeBar(Static):
    """One row listing the modes. Shown on every mode screen so a new user sees where to go."""

    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $text-muted;
        link-style: none;
        link-style-hover: bold;
        link-background-hover: $boost;
    }
    """

    def __init__(self, current: str, lang: str) -> None:
        super().__init__(self._render_modes(current, lang))

    @staticmethod
    def _render_modes(current: str, lang: str) -> Content:
        parts: list[str] = []
        for mode in MODES:
            name = t("mode." + mode.name, lang)
            key = mode.key.upper()
            # Clicking is optional (the mouse may be off); the key does the same thing.
            click = f"@click=app.switch_mode('{mode.name}')"
            if mode.name == current:
                parts.append(f"[{click}][b $text on $accent] {key} {name} [/][/]")
            else:
                parts.append(f"[{click}] [$text-accent]{key}[/] {name} [/]")
        return Content.from_markup("".join(parts))
