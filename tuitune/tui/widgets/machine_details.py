"""The rest of `tuitune hw`: driver and CUDA versions, FlashAttention, library versions, and anything
the probe could not read."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from tuitune.tui.i18n import t


class MachineDetails(Static):
    DEFAULT_CSS = """
    MachineDetails { height: auto; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self.lang = lang

    def show(self, report: Any) -> None:
        lang = self.lang
        lines: list[Content] = []

        def row(label: str, value: str | Content, style: str = "") -> None:
            lines.append(Content.assemble((label + "  ", "bold"), (value, style) if isinstance(value, str) else value))

        cpu = report.cpu
        row("CPU", f"{cpu.model} ({cpu.physical_cores or '?'} / {cpu.logical_cores or '?'})")
        if report.gpus:
            fake = " " + t("hw.fake", lang) if report.gpu_probe == "fake" else ""
            row(
                t("hw.driver", lang),
                f"{report.driver_version or '?'} · CUDA {report.cuda_driver_version or '?'} · "
                f"torch CUDA {report.torch_cuda_version or t('hw.cpu_build', lang)}{fake}",
            )
        fa = report.flash_attn
        row(
            "FlashAttention-2",
            t("hw.fa_yes" if fa.usable else "hw.fa_no", lang, reason=fa.reason),
            "$text-success" if fa.usable else "$text-muted",
        )
        libs = " · ".join(f"{k} {v or '-'}" for k, v in report.libraries.items())
        row(t("hw.libraries", lang), libs)
        for problem in report.problems:
            lines.append(Content.styled(t("hw.note", lang, note=problem), "$text-warning"))
        self.update(Content("\n").join(lines))
