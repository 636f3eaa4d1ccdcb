"""The devices a run trains on, live: which GPUs (from its start event) and each one's memory (from
the latest step event's per-rank figures); on the CPU, each process's resident memory."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widget import Widget

from tuitune.core.events import format_size
from tuitune.core.runs.history import RunHistory
from tuitune.tui.i18n import t
from tuitune.tui.widgets.machine_panel import usage_bar

MAX_ROWS = 8


class RunDevices(Widget):
    DEFAULT_CSS = """
    RunDevices { height: auto; }
    """

    def __init__(self, lang: str = "en", **kw: Any) -> None:
        super().__init__(**kw)
        self.lang = lang
        self._history: RunHistory | None = None

    def show(self, history: RunHistory | None) -> None:
        self._history = history
        self.refresh(layout=True)

    def render(self) -> Content:
        history, lang = self._history, self.lang
        start = history.start if history else None
        if start is None:
            return Content("")
        memory = history.last_step.memory if history and history.last_step else None
        devices = memory.get("devices") if isinstance(memory, dict) else None
        devices = [d for d in devices if isinstance(d, dict)] if isinstance(devices, list) else []
        gpus = start.gpus if isinstance(start.gpus, list) else [d.get("gpu") for d in devices if d.get("gpu") is not None]
        if gpus:
            head = t("train.gpus", lang, list=", ".join(map(str, gpus)))
        else:
            n = start.world_size or 1
            head = t("train.on_cpu", lang, n=n, processes="process" if n == 1 else "processes")
        lines = [Content.styled(head, "bold")]
        width = max(10, self.size.width or 30)
        for d in devices[:MAX_ROWS]:
            lines.append(self._line(d, width))
        if len(devices) > MAX_ROWS:
            lines.append(Content.styled(t("hw.more", lang, n=len(devices) - MAX_ROWS), "$text-muted"))
        return Content("\n").join(lines)

    def _line(self, d: dict[str, Any], width: int) -> Content:
        if d.get("gpu") is None:
            return Content.styled(t("train.rank_memory", self.lang, rank=d.get("rank", "?"), rss=format_size(d.get("rss"))),
                                  "$text-muted")
        used, total = d.get("reserved"), d.get("total")
        text = t("train.gpu_memory", self.lang, gpu=d["gpu"], allocated=format_size(used), total=format_size(total))
        room = width - len(text) - 1
        if room < 4 or not isinstance(used, int) or not isinstance(total, int) or total <= 0:
            return Content(text)
        return Content.assemble(text, " ", usage_bar(used, total, min(room, 12)))
