"""The machine at a glance: each GPU's memory, utilization and temperature (refreshed live by the
screen), the processes on it, then CPU, RAM and disk on one line. The rest of `tuitune hw` (driver,
libraries, FlashAttention) is in MachineDetails.
"""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widget import Widget

from tuitune.core.units import format_bytes
from tuitune.tui.i18n import t

BAR_MIN, BAR_MAX = 6, 30
MAX_PROCESSES_SHOWN = 3


def usage_bar(used: float, total: float, width: int) -> Content:
    """A bar of `width` cells, filled in proportion; warm colours as the card fills up."""
    share = 0.0 if total <= 0 else max(0.0, min(1.0, used / total))
    filled = round(share * width)
    style = "$text-error" if share > 0.9 else "$text-warning" if share > 0.7 else "$text-success"
    return Content.assemble(("█" * filled, style), ("░" * (width - filled), "$text-muted"))


class MachinePanel(Widget):
    DEFAULT_CSS = """
    MachinePanel { height: auto; padding: 0 1; background: $boost; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.report: Any = None  # a core HardwareReport

    def show(self, report: Any) -> None:
        self.report = report
        self.refresh(layout=True)

    def render(self) -> Content:
        report, lang = self.report, self.lang
        if report is None:
            return Content.styled(t("hw.probing", lang), "$text-muted")
        lines: list[Content] = []
        width = max(40, self.size.width - 2)
        for g in report.gpus:
            lines.append(self._gpu_line(g, width))
            if g.processes:
                shown = ", ".join(
                    f"{p.name}[{p.pid}] {format_bytes(p.used_bytes)}" for p in g.processes[:MAX_PROCESSES_SHOWN]
                )
                more = len(g.processes) - MAX_PROCESSES_SHOWN
                if more > 0:
                    shown += " " + t("hw.more", lang, n=more)
                lines.append(Content.styled("  " + t("hw.processes", lang, list=shown), "$text-muted"))
        if not report.gpus:
            lines.append(Content.styled(t("hw.no_gpu", lang), "$text-warning"))
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
