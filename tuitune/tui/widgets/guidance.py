"""What the focused recipe field does: label, key, allowed values, default and the schema's guidance."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tuitune.core.recipe import FieldSpec
from tuitune.tui.i18n import allowed_text, t
from tuitune.tui.widgets.field_row import format_value


class GuidancePanel(Static):
    DEFAULT_CSS = """
    GuidancePanel {
        height: auto;
        padding: 0 1;
        border-top: solid $primary 50%;
        overflow-y: auto;
    }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(t("guidance.none", lang), id=id, markup=False)
        self.lang = lang
        self.spec: FieldSpec | None = None

    def show_field(self, spec: FieldSpec) -> None:
        self.spec = spec
        lang = self.lang
        default = (
            format_value(spec, spec.default) if spec.kind not in ("bool", "choice") else str(spec.default)
        )
        if spec.kind == "bool":
            default = "true" if spec.default else "false"
        self.update(
            Content.assemble(
                (spec.title(lang), "bold $text-accent"),
                "  ",
                (spec.key, "$text-muted"),
                ("  ·  " + t("guidance.default", lang) + ": ", "$text-muted"),
                default or '""',
                "\n",
                (t("guidance.allowed", lang) + ": ", "$text-muted"),
                allowed_text(spec, lang),
                "\n",
                spec.text(lang),
            )
        )
