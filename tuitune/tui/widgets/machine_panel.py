"""The machine at a glance: each GPU's memory, utilization and temperature (refreshed live by the
screen), the processes on it, then CPU, RAM and disk on one line. The rest of `tuitune hw` (driver,
libraries, FlashAttention) is in MachineDetails.

GPUs are chosen here for the run: with the strip focused, up/down move between GPU rows and space
marks or unmarks one (a click does the same); `Chosen` tells the screen, which plans for them.
"""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

from tuitune.core.units import format_bytes
from tuitune.tui.i18n import localize_bindings, t

BAR_MIN, BAR_MAX = 6, 30
MAX_PROCESSES_SHOWN = 3


def usage_bar(used: float, total: float, width: int) -> Content:
    """A bar of `width` cells, filled in proportion; warm colours as the card fills up."""
    share = 0.0 if total <= 0 else max(0.0, min(1.0, used / total))
    filled = round(share * width)
    style = "$text-error" if share > 0.9 else "$text-warning" if share > 0.7 else "$text-success"
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), "$text-muted"))


class MachinePanel(Widget, can_focus=True):
    DEFAULT_CSS = """
    MachinePanel { height: auto; padding: 0 1; background: $boost; }
    MachinePanel:focus { background: $boost 200%; }
    """
    BINDINGS = [
        Binding("space", "toggle", "hw.choose"),
        Binding("down", "move(1)", "hw.gpu_down", show=False),
        Binding("up", "move(-1)", "hw.gpu_up", show=False),
    ]

    class Chosen(Message):
        """The GPUs marked for the run changed (in the order marked; empty: none, auto)."""

        def __init__(self, indices: tuple[int, ...]) -> None:
            super().__init__()
            self.indices = indices

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.report: Any = None  # a core HardwareReport
        self.chosen: list[int] = []  # GPU indices marked for the run
        self.cursor = 0  # which GPU row space acts on
        self._rows: dict[int, int] = {}  # rendered line -> GPU index, for clicks
        localize_bindings(self, lang)

    def show(self, report: Any) -> None:
        self.report = report
        self.refresh(layout=True)

    def choose(self, indices: list[int]) -> None:
        """Mark these GPUs (from the recipe) without telling the screen."""
        self.chosen = list(indices)
        self.refresh()

    @property
    def gpu_indices(self) -> list[int]:
        return [g.index for g in self.report.gpus] if self.report is not None else []

    def action_move(self, step: int) -> None:
        n = len(self.gpu_indices)
        if n:
            self.cursor = (self.cursor + step) % n
            self.refresh()

    def action_toggle(self) -> None:
        indices = self.gpu_indices
        if indices:
            self._toggle(indices[min(self.cursor, len(indices) - 1)])

    def on_click(self, event: events.Click) -> None:
        index = self._rows.get(event.y)
        if index is not None:
            self.cursor = self.gpu_indices.index(index)
            self._toggle(index)

    def _toggle(self, index: int) -> None:
        if index in self.chosen:
            self.chosen.remove(index)
        else:
            self.chosen.append(index)
        self.refresh()
        self.post_message(self.Chosen(tuple(self.chosen)))

    def render(self) -> Content:
        report, lang = self.report, self.lang
        if report is None:
            return Content.styled(t("hw.probing", lang), "$text-muted")
        lines: list[Content] = []
        self._rows = {}
        width = max(40, self.size.width - 2)
        for row, g in enumerate(report.gpus):
            self._rows[len(lines)] = g.index
            line = self._gpu_line(g, width - 4)
            mark = "[x] " if g.index in self.chosen else "[ ] "
            if self.has_focus and row == self.cursor:
                line = Content.assemble((mark, "bold reverse"), line)
            else:
                line = Content.assemble((mark, "bold $text-accent" if g.index in self.chosen else "$text-muted"), line)
            lines.append(line)
            if g.processes:
                shown = ", ".join(
                    f"{p.name}[{p.pid}] {format_bytes(p.used_bytes)}" for p in g.processes[:MAX_PROCESSES_SHOWN]
                )
                more = len(g.processes) - MAX_PROCESSES_SHOWN
                if more > 0:
                    shown += " " + t("hw.more", lang, n=more)
                lines.append(Content.styled("      " + t("hw.processes", lang, list=shown), "$text-muted"))
        if not report.gpus:
            lines.append(Content.styled(t("hw.no_gpu", lang), "$text-warning"))
        elif self.chosen or self.has_focus:
            listed = ", ".join(map(str, self.chosen))
            lines.append(Content.styled(t("hw.chosen", lang, list=listed) if self.chosen else t("hw.chosen_none", lang),
                                        "$text-accent" if self.chosen else "$text-muted"))
        cpu, ram, disk = report.cpu, report.ram, report.disk
        lines.append(
            Content.assemble(
                ("CPU ", "bold"),
                t("hw.cores", lang, n=cpu.physical_cores or cpu.logical_cores or "?"),
                ("  RAM ", "bold"),
                t("hw.free_of", lang, free=format_bytes(ram.available_bytes), total=format_bytes(ram.total_bytes)),
                (f"  {t('hw.disk', lang)} ", "bold"),
                t("hw.free_at", lang, free=format_bytes(disk.free_bytes), path=disk.path),
            )
        )
        return Content("\n").join(lines)

    def on_focus(self) -> None:
        self.refresh(layout=True)

    def on_blur(self) -> None:
        self.refresh(layout=True)

    def _gpu_line(self, g: Any, width: int) -> Content:
        lang = self.lang
        head = Content.assemble((f"GPU {g.index} ", "bold"), g.name, " ")
        used, total = g.used_bytes, g.total_bytes
        mem = f" {format_bytes(used)} / {format_bytes(total)}" if used is not None else " ?"
        util = "?" if g.utilization_pct is None else f"{g.utilization_pct}%"
        temp = "?" if g.temperature_c is None else f"{g.temperature_c}°C"
        tail = f"  {t('hw.util', lang)} {util}  {temp}"
        room = width - head.cell_length - len(mem) - len(tail)
        bar = usage_bar(used or 0, total or 1, max(BAR_MIN, min(BAR_MAX, room))) if used is not None else Content("")
        return Content.assemble(head, bar, mem, (tail, "$text-muted"))
