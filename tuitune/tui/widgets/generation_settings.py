"""How replies are sampled: temperature, top-p, max new tokens, seed and the system prompt, on one
line of small inputs. Read into core's GenerationSettings, which checks the values."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label

from tuitune.core.chat import GenerationSettings
from tuitune.core.errors import UserError
from tuitune.tui.i18n import t

DEFAULTS = GenerationSettings()


class GenerationSettingsBar(Horizontal):
    DEFAULT_CSS = """
    GenerationSettingsBar { height: 1; }
    GenerationSettingsBar Label { padding: 0 1 0 1; color: $text-muted; }
    GenerationSettingsBar Input { height: 1; border: none; padding: 0 1; background: $boost; }
    GenerationSettingsBar Input:focus { background: $primary 40%; }
    GenerationSettingsBar #gen-temperature, GenerationSettingsBar #gen-top_p { width: 7; }
    GenerationSettingsBar #gen-max_new_tokens, GenerationSettingsBar #gen-seed { width: 8; }
    GenerationSettingsBar #gen-system { width: 1fr; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang

    def compose(self) -> ComposeResult:
        def field(name: str, value: str, placeholder: str = "") -> ComposeResult:
            yield Label(t(f"chat.{name}", self.lang))
            yield Input(value, placeholder=placeholder, id=f"gen-{name}", compact=True)

        yield from field("temperature", str(DEFAULTS.temperature))
        yield from field("top_p", str(DEFAULTS.top_p))
        yield from field("max_new_tokens", str(DEFAULTS.max_new_tokens))
        yield from field("seed", "", t("chat.seed_placeholder", self.lang))
        yield from field("system", "", t("chat.system_placeholder", self.lang))

    def _value(self, name: str) -> str:
        return self.query_one(f"#gen-{name}", Input).value.strip()

    def _number(self, name: str, kind: type) -> float | int:
        text = self._value(name)
        try:
            return kind(text)
        except ValueError:
            raise UserError(t("chat.bad_number", self.lang, name=t(f"chat.{name}", self.lang), value=text)) from None

    def settings(self) -> GenerationSettings:
        """The settings as typed; UserError naming the field when one is not allowed."""
        seed = self._value("seed")
        system = self.query_one("#gen-system", Input).value
        settings = GenerationSettings(
            temperature=float(self._number("temperature", float)),
            top_p=float(self._number("top_p", float)),
            max_new_tokens=int(self._number("max_new_tokens", int)),
            seed=int(self._number("seed", int)) if seed else None,
            system=system if system.strip() else None,
        )
        settings.check()
        return settings

    def set_values(self, **values: object) -> None:
        for name, value in values.items():
            self.query_one(f"#gen-{name}", Input).value = "" if value is None else str(value)
