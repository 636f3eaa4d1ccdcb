"""One row as the model reads it: rendered through the chat template, trained tokens in green, masked
(prompt, template) tokens dimmed, tokens past cutoff_len struck out."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from tuitune.tui.i18n import t
from tuitune.tui.i18n_dataset import note_text

STYLE_TRAINED = "bold $text-success"
STYLE_MASKED = "$text-muted"
STYLE_CUT = "$text-error strike"


def piece_style(piece: Any) -> str:
    return STYLE_CUT if piece.cut else STYLE_TRAINED if piece.trained else STYLE_MASKED


class MaskedRow(Static):
    DEFAULT_CSS = """
    MaskedRow { height: auto; padding: 0 1; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(t("data.row_none", lang), id=id, markup=False)
        self.lang = lang
        self.preview: Any = None  # core MaskPreview shown

    def show_message(self, text: str, style: str = "$text-muted") -> None:
        self.preview = None
        self.update(Content.styled(text, style))

    def show_row(self, where: str, preview: Any, model: str) -> None:
        lang = self.lang
        self.preview = preview
        head = Content.assemble(
            (where, "bold"),
            "  ",
            (
                t(
                    "data.row_head",
                    lang,
                    template=t("data.template_model", lang) if preview.template == "tokenizer" else preview.template,
                    tokens=t("data.tokens_about", lang, n=f"{preview.tokens:,}") if preview.estimated else preview.tokens,
                    trained=preview.trained_tokens,
                    model=model,
                ),
                "$text-muted",
            ),
            (" " + t("data.truncated", lang) if preview.truncated else "", "$text-error"),
        )
        legend = Content.assemble(
            (t("data.trained", lang), STYLE_TRAINED),
            "  ",
            (t("data.masked", lang), STYLE_MASKED),
            "  ",
            (t("data.cut", lang), STYLE_CUT),
        )
        notes = [Content.styled(note_text(n, lang), "$text-warning") for n in preview.notes]
        body = Content.assemble(*((p.text, piece_style(p)) for p in preview.pieces))
        self.update(Content("\n").join([head, *notes, legend, Content(""), body]))
