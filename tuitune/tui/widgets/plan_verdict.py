"""The answer first: which model and method, what training needs against what is available and
the verdict, then inference, trainable parameters and how far batch and sequence length can go."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from tuitune.core.units import format_bytes, format_count
from tuitune.tui.i18n import t

VERDICT_STYLE = {"fits": "$text-success", "tight": "$text-warning", "does not fit": "$text-error"}


class PlanVerdict(Static):
    DEFAULT_CSS = """
    PlanVerdict { height: auto; }
    PlanVerdict.-failed { color: $text-warning; }
    """

    def __init__(self, lang: str, id: str | None = None) -> None:
        super().__init__(t("memory.working", lang), id=id, markup=False)
        self.lang = lang
        self.verdict = ""  # the verdict shown ("" before the first plan or after a failure)

    def show_failure(self, message: str) -> None:
        self.verdict = ""
        self.add_class("-failed")
        self.update(t("memory.failed", self.lang, error=message))

    def show(self, spec: Any, plan: Any, target: Any, where: str) -> None:
        """`spec`: ModelSpec; `plan`: FitPlan; `target`: PlanTarget; `where`: the target in words."""
        lang = self.lang
        est = plan.estimate
        s = est.setup
        self.remove_class("-failed")
        self.verdict = est.verdict
        method = s.method + (f" {s.quant_bits}-bit" if s.quant_bits else "")
        lines = [
            Content.assemble(
                (spec.name, "bold"),
                f" · {format_count(spec.total_params)} ",
                t("hw.params", lang),
                " · ",
                (method, "bold"),
            ),
            Content.assemble(
                t("hw.needs", lang, need=format_bytes(est.train_peak_bytes)),
                " ",
                t("hw.of", lang, available=format_bytes(target.available_bytes), where=where),
                ": ",
                (t("verdict." + est.verdict, lang), "bold " + VERDICT_STYLE.get(est.verdict, "")),
            ),
            Content.styled(
                t(
                    "hw.inference",
                    lang,
                    inference=format_bytes(est.inference_bytes),
                    trainable=format_count(est.trainable_params),
                    share=f"{100 * est.trainable_params / max(1, est.total_params):.2g}",
                ),
                "$text-muted",
            ),
        ]
        if plan.max_batch is not None:
            if plan.max_batch == 0:
                lines.append(Content.styled(t("hw.limits_none", lang, seq=s.seq_len), "$text-warning"))
            else:
                lines.append(
                    Content(
                        t("hw.limits", lang, batch=plan.max_batch, seq=s.seq_len, max_seq=plan.max_seq or "-", at=s.batch_size)
                    )
                )
        if target.n_gpus > 1:
            lines.append(Content.styled(t("hw.per_gpu", lang, n=target.n_gpus), "$text-muted"))
        self.update(Content("\n").join(lines))
