"""Interface strings about choosing GPUs (Hardware & Memory) and the GPUs a run uses (Train), in
English and Simplified Chinese. Merged into `i18n.STRINGS`; kept apart so i18n.py stays readable."""

from __future__ import annotations

GPU_STRINGS: dict[str, tuple[str, str]] = {
    "hw.choose": ("Choose GPU", "选择 GPU"),
    "hw.choose_help": ("Mark the GPUs for the run: the plan is made for them (space on a GPU row)",
                       "标记本次训练使用的 GPU：估算按所选的卡计算（在 GPU 行上按空格）"),
    "hw.gpu_down": ("Next GPU", "下一块 GPU"),
    "hw.gpu_up": ("Previous GPU", "上一块 GPU"),
    "hw.chosen_none": ("space on a GPU: train on it (none marked: auto)", "在 GPU 行上按空格选择（未选：自动）"),
    "hw.chosen": ("chosen for the run: GPU {list} (ctrl+r writes train.gpus)", "本次训练使用：GPU {list}（ctrl+r 写入 train.gpus）"),
    "hw.target_chosen": ("GPU {list} chosen · {n} {processes}", "已选 GPU {list} · {n} 个进程"),
    "hw.where_chosen": ("free on GPU {list} (the least free, per GPU)", "GPU {list} 每卡可用（按最少的一块）"),
    "hw.busy_chosen": ("GPU {index} is in use by {holders}", "GPU {index} 正被占用：{holders}"),
    "field.indices_placeholder": ("GPU numbers, e.g. 0, 2", "GPU 编号，例如 0, 2"),
    # Train screen
    "train.gpus": ("GPUs {list}", "GPU {list}"),
    "train.on_cpu": ("CPU · {n} {processes}", "CPU · {n} 个进程"),
    "train.gpu_memory": ("GPU {gpu} {allocated}/{total}", "GPU {gpu} {allocated}/{total}"),
    "train.rank_memory": ("rank {rank} ram {rss}", "进程 {rank} 内存 {rss}"),
    "train.devices_title": ("Devices", "设备"),
}
