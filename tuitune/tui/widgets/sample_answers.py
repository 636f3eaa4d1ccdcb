"""What the model answers now: the latest `sample` event per prompt (eval.sample_prompts, answered
greedily every eval.sample_every steps), one line each with the step it came from. Hidden until the
run has written one."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from tuitune.tui.i18n import t


class SampleAnswers(Static):
    DEFAULT_CSS = """
    SampleAnswers {
        height: auto;
        max-height: 7;
        border-top: solid $panel;
        border-title-color: $text-muted;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        display: none;
    }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.lang = lang
        self.border_title = t("train.samples_title", lang)
        self._shown: tuple | None = None

    def show(self, samples: dict[str, dict[str, Any]]) -> None:
        """samples: RunHistory.samples (prompt -> latest sample event)."""
        rows = list(samples.values())
        key = tuple((r.get("step"), r.get("prompt"), r.get("answer")) for r in rows)
        if key == self._shown:
            return
        relayout = self._shown is None or len(self._shown) != len(key)  # height follows the number of prompts
        self._shown = key
        width = max(len(str(r.get("step"))) for r in rows) if rows else 0
        lines = []
        for r in rows:
            answer = " ".join(str(r.get("answer") or "").split()) or t("train.sample_empty", self.lang)
            lines.append(Text.assemble(
                (t("train.sample_step", self.lang, step=f"{r.get('step')}".rjust(width)) + "  ", "dim"),
                (str(r.get("prompt") or ""), "bold"),
                ("  →  ", "dim"),
                answer,
            ))
        text = Text("\n").join(lines)
        text.no_wrap, text.overflow = True, "ellipsis"
        self.display = bool(rows)
        self.update(text, layout=relayout)
