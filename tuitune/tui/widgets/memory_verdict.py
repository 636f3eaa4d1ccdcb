"""Will the current recipe fit? The memory estimate, recomputed off the event loop as the form changes.

The arithmetic is `tuitune.core.memory.estimate` (no torch, well under a millisecond); reading the
model's architecture and probing the GPUs can take longer, so they run in a worker and are
remembered. Until a build has the estimator, the panel says so instead of guessing.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from textual import work
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe
from tuitune.tui.i18n import MEMORY_PARTS_ZH, t
from tuitune.tui.workers import ReportsWorkerErrors

DEBOUNCE_S = 0.4  # typing "64" should start one estimate, not two
COMMON_CARDS_GIB = (24, 48, 80)  # compared with when there is no GPU here (as `tuitune estimate` does)
VERDICT_STYLE = {"fits": "$text-success", "tight": "$text-warning", "does not fit": "$text-error"}


def estimator_module() -> Any | None:
    """`tuitune.core.memory` when this build has an estimator, else None."""
    if importlib.util.find_spec("tuitune.core.memory") is None:
        return None
    from tuitune.core import memory

    return memory if hasattr(memory, "estimate") else None


class MemoryVerdict(ReportsWorkerErrors, Static):
    DEFAULT_CSS = """
    MemoryVerdict { height: auto; color: $text; }
    MemoryVerdict.-unavailable { color: $text-muted; }
    MemoryVerdict.-failed { color: $text-warning; }
    """

    class Estimated(Message):
        def __init__(self, text: Content | str, state: str, request: int) -> None:
            super().__init__()
            self.text = text
            self.state = state  # "ok" | "unavailable" | "failed"
            self.request = request  # which request this answers; older answers are dropped

    def __init__(self, lang: str, runs_dir: str = "runs", id: str | None = None) -> None:
        super().__init__(t("memory.working", lang), id=id, markup=False)
        self.lang = lang
        self.runs_dir = runs_dir
        self._timer: Timer | None = None
        self._request = 0
        self._answered = -1
        self.last_requested: Recipe | None = None
        self._specs: dict[str, Any] = {}  # model path -> ModelSpec, read once
        self._gpu: tuple[int | None, str, bool] | None = None  # (free bytes, which GPU, bf16), probed once

    @property
    def is_current(self) -> bool:
        """Whether the panel shows the answer to the latest request (tests and screenshots wait on it)."""
        return self._answered == self._request

    def request(self, recipe: Recipe) -> None:
        """Estimate for this recipe soon; a newer request replaces a pending or running one."""
        if self._timer is not None:
            self._timer.stop()
        self._request += 1
        snapshot, request = recipe.copy(), self._request
        self.last_requested = snapshot
        self._timer = self.set_timer(DEBOUNCE_S, lambda: self._estimate(snapshot, request))

    # ------------------------------------------------------------------ in the worker thread

    @work(thread=True, exclusive=True, exit_on_error=False, group="memory-estimate")
    def _estimate(self, recipe: Recipe, request: int) -> None:
        # A thread worker cannot be stopped: "exclusive" only marks older ones cancelled, and one of
        # them may finish after this one. Each answer carries its request number; old ones are dropped.
        memory = estimator_module()
        if memory is None:
            self.post_message(self.Estimated(t("memory.unavailable", self.lang), "unavailable", request))
            return
        try:
            spec = self._spec(recipe.model_path)
        except UserError as e:  # e.g. a model name half typed: say so in place, not in a dialog
            self.post_message(
                self.Estimated(t("memory.failed", self.lang, error=e.message), "failed", request)
            )
            return
        available, where, bf16 = self._gpu_here()
        est = memory.estimate(spec, recipe, available, bf16=bf16)
        self.post_message(self.Estimated(self._describe(memory, est, available, where), "ok", request))

    def _spec(self, path: str) -> Any:
        if path not in self._specs:
            from tuitune.core.models.spec import model_spec

            self._specs[path] = model_spec(path)
        return self._specs[path]

    def _gpu_here(self) -> tuple[int | None, str, bool]:
        """Free memory of the roomiest GPU (NVML only, no CUDA context), or None without a GPU."""
        if self._gpu is None:
            from tuitune.core.hardware import probe

            gpus = [g for g in probe(self.runs_dir).gpus if g.free_bytes is not None]
            if gpus:
                best = max(gpus, key=lambda g: g.free_bytes or 0)
                self._gpu = (
                    best.free_bytes,
                    f"GPU {best.index} {best.name}",
                    all(g.bf16 is not False for g in gpus),
                )
            else:
                self._gpu = (None, "", True)
        return self._gpu

    def _describe(self, memory: Any, est: Any, available: int | None, where: str) -> Content:
        """A few short lines: the side column is ~30 cells wide at 80x24."""
        from tuitune.core.units import format_bytes

        lang = self.lang
        train, infer = t("memory.train_peak", lang), t("memory.inference", lang)
        width = max(len(train), len(infer)) + 1
        lines: list[Content] = [
            Content.assemble(
                (train.ljust(width), "$text-muted"), (format_bytes(est.train_peak_bytes), "bold")
            ),
            Content.assemble((infer.ljust(width), "$text-muted"), format_bytes(est.inference_bytes)),
        ]
        if available is not None:
            lines.append(Content.styled(where, "$text-muted"))
            lines.append(
                Content.assemble(
                    "  ",
                    t("memory.free", lang, free=format_bytes(available)),
                    ": ",
                    self._verdict(est.verdict),
                )
            )
        else:
            lines.append(Content.styled(t("memory.no_gpu", lang), "$text-muted"))
            for gib in COMMON_CARDS_GIB:
                verdict = memory.verdict_for(est.train_peak_bytes, gib * 2**30)
                lines.append(Content.assemble(f"  {gib} GB  ", self._verdict(verdict)))
        lines.append(Content.styled(t("memory.largest", lang), "$text-muted"))
        for name, n in sorted(est.components.items(), key=lambda kv: kv[1], reverse=True)[:2]:
            lines.append(Content(f"  {format_bytes(n, 0)} {self._part(memory, name)}"))
        return Content("\n").join(lines)

    def _verdict(self, verdict: str) -> Content:
        return Content.styled(t("verdict." + verdict, self.lang), "bold " + VERDICT_STYLE.get(verdict, ""))

    def _part(self, memory: Any, name: str) -> str:
        if self.lang == "zh" and name in MEMORY_PARTS_ZH:
            return MEMORY_PARTS_ZH[name]
        return memory.COMPONENT_LABELS.get(name, name)

    # ------------------------------------------------------------------ back on the event loop

    def on_memory_verdict_estimated(self, event: Estimated) -> None:
        event.stop()
        if event.request != self._request:
            return
        self._answered = event.request
        self.set_class(event.state == "unavailable", "-unavailable")
        self.set_class(event.state == "failed", "-failed")
        if str(event.text) != str(self.render()):
            self.update(event.text)
