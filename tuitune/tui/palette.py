"""Command palette (ctrl+p): every mode, plus the commands of the screen being shown."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tuitune.tui.i18n import t
from tuitune.tui.screens import MODES


class TuituneCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        lang = getattr(self.app, "lang", "en")
        out: list[tuple[str, str, object]] = []
        for mode in MODES:
            title = t(f"mode.{mode.name}.title", lang)
            out.append(
                (
                    t("palette.goto", lang, title=title),
                    t("palette.goto_help", lang, title=title, key=mode.key.upper()),
                    partial(self.app.switch_mode, mode.name),
                )
            )
        # The palette runs over the screen it was opened from.
        commands = getattr(self.screen, "palette_commands", None)
        if commands is not None:
            out.extend((c.title, c.help, c.run) for c in commands())
        return out

    async def discover(self) -> Hits:
        for title, help_text, run in self._commands():
            yield DiscoveryHit(title, run, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)  # type: ignore[arg-type]
