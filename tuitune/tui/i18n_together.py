"""Strings of training together (the group view, the train-together dialog), merged into i18n.STRINGS."""

from __future__ import annotations

STRINGS_TOGETHER: dict[str, tuple[str, str]] = {
    "train.together": ("Train together", "一起训练"),
    "train.together_help": ("Train several LoRA recipes from recipes/ in one process, on one copy of their base model",
                            "在一个进程里、共用一份基础模型，同时训练 recipes/ 中的多个 LoRA 配方"),
    "train.next_in_group": ("Next run", "下一个运行"),
    "train.not_in_group": ("Run {name} does not train in a group.", "运行 {name} 不属于任何训练组。"),
    "group.title": ("group {name} · {schedule} · {n} runs", "训练组 {name} · {schedule} · {n} 个运行"),
    "group.schedule.fused": ("fused batches", "批次融合"),
    "group.schedule.round-robin": ("round-robin", "轮流"),
    "group.chart_title": ("train loss by step, one line per run", "各运行的训练损失（按步）"),
    "group.memory_gpu": ("shared GPU {allocated} (peak {peak})", "共享显存 {allocated}（峰值 {peak}）"),
    "group.memory_ram": ("shared RAM {rss}", "共享内存 {rss}"),
    "group.speed": ("all runs {rate} tokens/s", "全部运行 {rate} token/秒"),
    "group.memory_none": ("shared memory: -", "共享内存：-"),
    "together.title": ("Train together: LoRA recipes that share a base model", "一起训练：共用基础模型的 LoRA 配方"),
    "together.hint": ("space picks a recipe, ctrl+s starts. They must agree on the model, its dtype and quantization; "
                      "data, rank, learning rate, epochs, batch size and seed may differ.",
                      "空格选择配方，ctrl+s 开始。它们的模型、数据类型和量化必须一致；数据、秩、学习率、轮数、批大小和随机种子可以不同。"),
    "together.none": ("No recipes in {dir}/", "{dir}/ 中没有配方"),
    "together.pick_two": ("Pick at least two recipes.", "请至少选择两个配方。"),
    "together.ready": ("{n} recipes can train together on {model} ({schedule}).",
                       "{n} 个配方可以在 {model} 上一起训练（{schedule}）。"),
    "together.start": ("Start", "开始"),
    "together.cancel": ("Cancel", "取消"),
    "runs.col.group": ("group", "训练组"),
}
