"""The [train] section: epochs, batch, learning rate, schedule, optimizer, precision, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

from tuitune.core.recipe.fields import fld

SCHEDULERS = (
    "linear",
    "cosine",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "polynomial",
    "cosine_with_restarts",
)
OPTIMIZERS = ("adamw_torch", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd", "adafactor")


@dataclass
class TrainSection:
    epochs: float = fld(
        3.0,
        "float",
        ("Epochs", "训练轮数"),
        "Passes over the dataset. 1-3 for large datasets, 3-10 for small ones. More epochs fit the data "
        "better and start to overfit sooner (watch the eval loss rise).",
        "遍历数据集的次数。大数据集 1–3 轮，小数据集 3–10 轮。轮数越多拟合越好，也越早过拟合（留意验证损失回升）。",
        min=0.01,
        max=1000.0,
    )
    max_steps: int = fld(
        0,
        "int",
        ("Max steps", "最大步数"),
        "Stop after this many optimizer steps; 0 = decided by epochs. Useful for quick trials and benchmarks.",
        "达到这么多优化步后停止；0 表示由训练轮数决定。适合快速试跑和基准测试。",
        min=0,
        max=100_000_000,
    )
    learning_rate: float = fld(
        3e-4,
        "float",
        ("Learning rate", "学习率"),
        "Step size. LoRA: 1e-4..5e-4; full fine-tuning: 1e-5..5e-5; prompt methods: 1e-3..1e-2. Too high "
        "diverges (loss jumps or becomes NaN), too low crawls.",
        "步长。LoRA：1e-4..5e-4；全参数：1e-5..5e-5；提示类方法：1e-3..1e-2。过高会发散（损失跳升或变 NaN），过低则进展缓慢。",
        min=1e-6,
        max=1e-2,
    )
    lr_scheduler: str = fld(
        "cosine",
        "choice",
        ("LR schedule", "学习率调度"),
        "How the learning rate changes over the run. cosine (smooth decay) is a safe default; linear is "
        "similar; constant keeps it fixed (good for continued training).",
        "学习率随训练的变化方式。cosine（平滑衰减）是稳妥的默认；linear 类似；constant 保持不变（适合继续训练）。",
        choices=SCHEDULERS,
    )
    warmup_ratio: float = fld(
        0.03,
        "float",
        ("Warm-up share", "预热比例"),
        "Fraction of steps over which the learning rate ramps up from 0. 0.03-0.1 avoids early spikes; 0 for "
        "very short runs.",
        "学习率从 0 线性升高所占的步数比例。0.03–0.1 可避免初期震荡；很短的训练可设为 0。",
        min=0.0,
        max=0.5,
    )
    batch_size: int = fld(
        4,
        "int",
        ("Batch size (per device)", "每卡批大小"),
        "Examples per step on each device. Activation memory grows linearly with it. Prefer raising "
        "gradient accumulation when memory is short: same effective batch, less memory, slower.",
        "每张卡每步的样本数，激活显存随之线性增长。显存不足时优先提高梯度累积：有效批大小相同、显存更少、速度更慢。",
        min=1,
        max=4096,
    )
    gradient_accumulation: int = fld(
        1,
        "int",
        ("Gradient accumulation", "梯度累积"),
        "Add up gradients over this many steps before one optimizer update. Effective batch = batch size x "
        "accumulation x devices. Costs time, not memory.",
        "累积这么多步的梯度后再更新一次。有效批大小 = 批大小 × 累积 × 卡数。花时间，不花显存。",
        min=1,
        max=4096,
    )
    gradient_checkpointing: bool = fld(
        False,
        "bool",
        ("Gradient checkpointing", "梯度检查点"),
        "Recompute activations in the backward pass instead of storing them: cuts activation memory by ~5-10x "
        "for ~20-30% more time. Turn it on when long sequences or big batches do not fit.",
        "反向时重算激活而不是保存：激活显存减少约 5–10 倍，时间多约 20–30%。长序列或大批次放不下时开启。",
    )
    offload_activations: bool = fld(
        False,
        "bool",
        ("Offload activations", "激活卸载到内存"),
        "With gradient checkpointing: move each checkpointed layer's input to pinned CPU memory during the "
        "forward pass and back for the backward, so the GPU holds about one layer's activations instead of "
        "every layer's. Costs PCIe copies (a few % to ~15% slower) and host RAM. CUDA only; on a CPU the "
        "activations already live in RAM. Needs gradient_checkpointing = true.",
        "配合梯度检查点：前向时把每个检查点层的输入移到锁页内存，反向时再取回，显卡上只留约一层的激活。"
        "代价是 PCIe 拷贝（慢几个百分点到约 15%）和主机内存。仅 CUDA；CPU 上激活本来就在内存里。需要 gradient_checkpointing = true。",
    )
    optimizer: str = fld(
        "adamw_torch",
        "choice",
        ("Optimizer", "优化器"),
        "adamw_torch: 8 bytes of state per trainable parameter. adamw_8bit / paged_adamw_8bit: 2 bytes, "
        "nearly the same results (needs CUDA). paged_*: spill to CPU memory on spikes. sgd: least memory, "
        "needs tuning. adafactor: factored states, low memory for full fine-tuning.",
        "adamw_torch：每个可训练参数 8 字节状态。adamw_8bit / paged_adamw_8bit：2 字节，效果几乎相同（需 CUDA）。"
        "paged_*：峰值时换出到内存。sgd：显存最少，需要调参。adafactor：分解状态，全参数微调时显存低。",
        choices=OPTIMIZERS,
    )
    weight_decay: float = fld(
        0.0,
        "float",
        ("Weight decay", "权重衰减"),
        "Pulls weights toward zero each step. 0-0.1; a little (0.01) can curb overfitting in full "
        "fine-tuning, rarely matters for LoRA.",
        "每步把权重拉向零。0–0.1；全参数微调时少量（0.01）可抑制过拟合，对 LoRA 影响很小。",
        min=0.0,
        max=1.0,
    )
    max_grad_norm: float = fld(
        1.0,
        "float",
        ("Gradient clipping", "梯度裁剪"),
        "Clip the gradient norm to this value (0 = off). 1.0 is the usual guard against loss spikes.",
        "把梯度范数裁剪到该值（0 表示关闭）。1.0 是防止损失突增的常用设置。",
        min=0.0,
        max=1000.0,
    )
    seed: int = fld(
        42,
        "int",
        ("Seed", "随机种子"),
        "Seeds data shuffling, dropout and adapter initialisation: the same seed repeats a run.",
        "决定数据打乱、dropout 和适配器初始化：相同种子可复现训练。",
        min=0,
        max=2**32 - 1,
    )
    logging_steps: int = fld(
        5,
        "int",
        ("Log every", "日志间隔"),
        "Write loss, learning rate, speed and memory every N optimizer steps.",
        "每 N 个优化步记录一次损失、学习率、速度和显存。",
        min=1,
        max=1_000_000,
    )
    save_steps: int = fld(
        100,
        "int",
        ("Checkpoint every", "检查点间隔"),
        "Save a resumable checkpoint every N steps (0 = only at the end). Smaller = less work lost on a crash, "
        "more disk and time spent saving.",
        "每 N 步保存一次可恢复的检查点（0 表示只在结束时保存）。越小崩溃时损失越少，但更占磁盘和时间。",
        min=0,
        max=100_000_000,
    )
    eval_steps: int = fld(
        0,
        "int",
        ("Evaluate every", "评估间隔"),
        "Compute validation loss every N steps (0 = at the end of each epoch). Needs data.val_size > 0.",
        "每 N 步计算一次验证损失（0 表示每轮结束时）。需要 data.val_size > 0。",
        min=0,
        max=100_000_000,
    )
    save_total_limit: int = fld(
        2,
        "int",
        ("Checkpoints kept", "保留检查点数"),
        "Keep only the newest N checkpoints (0 = keep all). Full fine-tuning checkpoints are as big as the "
        "model plus optimizer.",
        "只保留最新的 N 个检查点（0 表示全部保留）。全参数微调的检查点与模型加优化器一样大。",
        min=0,
        max=10_000,
    )
    mixed_precision: str = fld(
        "auto",
        "choice",
        ("Mixed precision", "混合精度"),
        "auto = bf16 on GPUs that support it, fp16 on older GPUs, off on CPU (bf16 also runs on CPUs with "
        "AMX / AVX512-BF16, about 1.5x faster). bf16 is stable; fp16 needs loss scaling and can overflow.",
        "auto：支持的 GPU 用 bf16，较旧 GPU 用 fp16，CPU 关闭（带 AMX / AVX512-BF16 的 CPU 也可选 bf16，约快 1.5 倍）。"
        "bf16 稳定；fp16 需要损失缩放，可能溢出。",
        choices=("auto", "bf16", "fp16", "no"),
    )
    gpus: str | list = fld(
        "auto",
        "indices",
        ("GPUs", "使用的 GPU"),
        'Which GPUs this run trains on, by the numbers `tuitune hw` and nvidia-smi show, e.g. [0, 2]: one '
        'process per GPU. "auto" takes the GPUs with the most free memory that fit the estimate, idle ones '
        "first (one GPU unless --nproc asks for more). A chosen GPU another process uses is named before training "
        "starts; a run that would not fit its free memory is refused (--force starts it anyway).",
        '本次训练使用哪些 GPU，编号与 `tuitune hw` 和 nvidia-smi 显示的一致，例如 [0, 2]：每张卡一个进程。'
        '"auto" 选择空闲显存最多且放得下估算的 GPU，优先空闲的卡（除非 --nproc 要求更多，否则只用一张）。'
        "选中的卡若被其他进程占用，开训前会列出；放不下空闲显存的训练会被拒绝（--force 可强行开始）。",
        list_or=("auto",),
    )
