"""Will the current recipe fit? The memory estimate, recomputed off the event loop as the form changes.

The estimator lives in `tuitune.core.memory` (see docs/architecture.md). Until a build has it, the
panel says so instead of guessing: no estimate is better than a wrong one.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from textual import work
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.tui.i18n import t
from tuitune.tui.workers import ReportsWorkerErrors

DEBOUNCE_S = 0.4  # typing "64" should start one estimate, not two


def estimator_module() -> Any | None:
    """`tuitune.core.memory` when this build has an estimator, else None."""
    if importlib.util.find_spec("tuitune.core.memory") is None:
        return None
    from tuitune.core import memory

    return memory if hasattr(memory, "estimate") else None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


class MemoryVerdict(ReportsWorkerErrors, Static):
    DEFAULT_CSS = """
    MemoryVerdict { height: auto; color: $text; }
    MemoryVerdict.-unavailable { color: $text-muted; }
    MemoryVerdict.-failed { color: $text-warning; }
    """

    class Estimated(Message):
        def __init__(self, text: str, state: str) -> None:
            super().__init__()
            self.text = text
            self.state = state  # "ok" | "unavailable" | "failed"

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(t("memory.working", lang), id=id, markup=False)
        self.lang = lang
        self._timer: Timer | None = None

    def request(self, recipe: Recipe) -> None:
        """Estimate for this recipe soon; a newer request replaces a pending or running one."""
        if self._timer is not None:
            self._timer.stop()
        snapshot = recipe.copy()
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._estimate(snapshot))

    @work(thread=True, exclusive=True, exit_on_error=False, group="memory-estimate")
    def _estimate(self, recipe: Recipe) -> None:
        memory = estimator_module()
        if memory is None:
            self.post_message(self.Estimated(t("memory.unavailable", self.lang), "unavailable"))
            return
        from tuitune.core import model_spec

        try:
            spec = model_spec.model_spec(recipe.model_path)
            est = memory.estimate(spec, recipe, available_bytes=None)
        except UserError as e:  # e.g. an unknown model while typing its name: say so in place
            self.post_message(self.Estimated(t("memory.failed", self.lang, error=e.message), "failed"))
            return
        text = (
            f"{t('memory.train_peak', self.lang)}: {_gib(est.train_peak_bytes)}\n"
            f"{t('memory.inference', self.lang)}: {_gib(est.inference_bytes)}\n"
            f"{est.verdict}"
        )
        self.post_message(self.Estimated(text, "ok"))

    def on_memory_verdict_estimated(self, event: Estimated) -> None:
        event.stop()
        self.set_class(event.state == "unavailable", "-unavailable")
        self.set_class(event.state == "failed", "-failed")
        if event.text != str(self.render()):
            self.update(event.text)
