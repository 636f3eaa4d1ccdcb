"""The [eval] section: answers the trainer samples while it trains (what the model says *now*)."""

from __future__ import annotations

from dataclasses import dataclass

from tuitune.core.recipe.fields import fld


@dataclass
class EvalSection:
    sample_prompts: list[str] | str = fld(
        "auto",
        "list",
        ("Sample prompts", "抽样提示"),
        "Prompts the trainer answers (greedy, at most 64 new tokens) every sample_every steps, so you watch "
        "the answers change on the Train screen and in `tuitune runs watch`. auto = 3 held-out prompts from "
        "the eval split (the first training prompts without one), or the identity questions for the demo data.",
        "训练中每隔 sample_every 步用这些提示让模型作答（贪心解码，最多 64 个新 token），可在训练页面和 "
        "`tuitune runs watch` 中看到回答如何变化。auto：取验证集中的 3 条提示（没有验证集时取前几条训练提示），"
        "演示数据则用身份问题。",
        list_or=("auto",),
    )
    sample_every: int = fld(
        100,
        "int",
        ("Sample answers every", "抽样间隔"),
        "Generate the sample answers every N optimizer steps and at the last step (0 = never). On rank 0 only; "
        "the time it takes is written to the log. For benchmarks (MMLU, CMMLU, C-Eval) after training: "
        "`tuitune eval RUN --tasks ...`.",
        "每 N 个优化步及最后一步生成抽样回答（0 表示不生成）。只在 rank 0 上运行，耗时记入日志。"
        "训练后的基准测试（MMLU、CMMLU、C-Eval）：`tuitune eval RUN --tasks ...`。",
        min=0,
        max=100_000_000,
    )
