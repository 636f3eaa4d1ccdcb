"""The sections only some methods use: [lora], [quantization], [freeze] and [prompt] (virtual tokens)."""

from __future__ import annotations

from dataclasses import dataclass

from tuitune.core.recipe.fields import fld


@dataclass
class LoraSection:
    r: int = fld(
        8,
        "int",
        ("Rank r", "秩 r"),
        "Rank of the low-rank update. 4-8 suits small or simple tasks (style, format, identity); 16-64 general "
        "instruction tuning; 64-256+ knowledge-heavy tasks. Higher rank = more trainable parameters, memory "
        "and risk of overfitting small datasets.",
        "低秩更新的秩。4–8 适合小而简单的任务（风格、格式、身份）；16–64 适合通用指令微调；"
        "64–256 以上适合知识密集任务。秩越高，可训练参数、显存和小数据集过拟合风险越大。",
        min=1,
        max=4096,
    )
    alpha: int = fld(
        16,
        "int",
        ("Alpha", "Alpha 缩放"),
        "Scales the update by alpha/r (or alpha/sqrt(r) with rsLoRA). Default 2 x r. Raising alpha is like "
        "raising the learning rate for the adapter: too high diverges, too low barely changes the model.",
        "按 alpha/r（rsLoRA 为 alpha/√r）缩放更新，默认 2×r。提高 alpha 相当于提高适配器的学习率："
        "过高会发散，过低模型几乎不变。",
        min=1,
        max=65536,
    )
    dropout: float = fld(
        0.05,
        "float",
        ("Dropout", "Dropout"),
        "Dropout on the adapter input. 0-0.1 is typical; raise it (0.1) for small datasets that overfit, "
        "set 0 for large datasets or short runs.",
        "适配器输入上的 dropout。常用 0–0.1；小数据集过拟合时调到 0.1，大数据集或短训练设为 0。",
        min=0.0,
        max=0.9,
    )
    target_modules: list = fld(
        ["q_proj", "v_proj"],
        "list",
        ("Target modules", "目标模块"),
        'Which linear layers get adapters. q_proj, v_proj is the classic light choice; "all-linear" (every '
        "linear layer but the output head) learns noticeably better for a few percent more memory.",
        '给哪些线性层加适配器。q_proj、v_proj 是经典的轻量选择；"all-linear"（除输出层外的所有线性层）'
        "效果明显更好，显存只多几个百分点。",
        list_or=("all-linear",),
    )
    use_dora: bool = fld(
        False,
        "bool",
        ("DoRA", "DoRA"),
        "Weight-decomposed LoRA: learns magnitude and direction separately. Often better at low rank, "
        "but training is slower (~1.2-2x) and uses more memory.",
        "权重分解 LoRA：分别学习幅度和方向。低秩时效果常更好，但训练更慢（约 1.2–2 倍）、显存更多。",
    )
    use_rslora: bool = fld(
        False,
        "bool",
        ("rsLoRA", "rsLoRA"),
        "Rank-stabilized scaling alpha/sqrt(r) instead of alpha/r. Helps when r is large (64+), where plain "
        "LoRA's update shrinks; no memory cost.",
        "秩稳定缩放：用 alpha/√r 代替 alpha/r。r 较大（64 以上）时有帮助，不增加显存。",
    )


@dataclass
class QuantizationSection:
    bits: int = fld(
        4,
        "choice",
        ("Bits", "量化位数"),
        "Base weights stored in 4 bits (~0.56 byte/param with NF4 + double quant) or 8 bits (~1 byte/param). "
        "4-bit fits a 7-8B model in ~6 GB; 8-bit is closer to 16-bit quality but needs twice the memory.",
        "基础权重以 4 位（NF4 + 双重量化约 0.56 字节/参数）或 8 位（约 1 字节/参数）存储。"
        "4 位可把 7–8B 模型压到约 6 GB；8 位更接近 16 位效果，但显存翻倍。",
        choices=(4, 8),
    )
    quant_type: str = fld(
        "nf4",
        "choice",
        ("4-bit type", "4 位类型"),
        "nf4 (NormalFloat) matches the normal distribution of weights and is the QLoRA default; fp4 is a "
        "plain 4-bit float, usually slightly worse. Only used with 4 bits.",
        "nf4（NormalFloat）贴合权重的正态分布，是 QLoRA 默认；fp4 是普通 4 位浮点，通常略差。仅 4 位时使用。",
        choices=("nf4", "fp4"),
    )
    double_quant: bool = fld(
        True,
        "bool",
        ("Double quantization", "双重量化"),
        "Quantize the quantization constants too: saves ~0.37 bit per parameter (~0.4 GB on a 7B model) "
        "at no measurable quality cost.",
        "对量化常数再量化：每参数约省 0.37 位（7B 模型约 0.4 GB），几乎不影响效果。",
    )
    compute_dtype: str = fld(
        "auto",
        "choice",
        ("Compute dtype", "计算精度"),
        "Precision of the matrix multiplications on dequantized weights. auto = bfloat16 where supported, "
        "else float16 on GPU, float32 on CPU.",
        "反量化后矩阵乘法的精度。auto：支持时用 bfloat16，否则 GPU 用 float16，CPU 用 float32。",
        choices=("auto", "bfloat16", "float16", "float32"),
    )


@dataclass
class FreezeSection:
    trainable_layers: int = fld(
        2,
        "int",
        ("Trainable layers", "可训练层数"),
        "Train only the last N transformer layers (plus nothing else); the rest stay frozen. 1-4 is cheap and "
        "adapts style; more layers learn more and need gradients and optimizer states for each.",
        "只训练最后 N 个 Transformer 层，其余冻结。1–4 层成本低、适合调整风格；层数越多学得越多，"
        "每层都需要梯度和优化器状态。",
        min=1,
        max=1024,
    )


@dataclass
class PromptSection:
    num_virtual_tokens: int = fld(
        20,
        "int",
        ("Virtual tokens", "虚拟 token 数"),
        "How many learned tokens are prepended (prefix / prompt / p-tuning) or the adapter length "
        "(llama-adapter). 10-30 is typical; more tokens learn more but shorten the usable context.",
        "在输入前添加的可学习 token 数（prefix / prompt / p-tuning），或 llama-adapter 的适配长度。"
        "常用 10–30；越多学得越多，但会占用上下文长度。",
        min=1,
        max=1024,
    )
    init_text: str = fld(
        "",
        "str",
        ("Init text", "初始化文本"),
        "Prompt tuning only: start the virtual tokens from the embedding of this text (e.g. a task "
        "description). Usually converges faster than random init. Empty = random.",
        "仅用于 prompt tuning：用这段文本（如任务描述）的嵌入初始化虚拟 token，通常比随机初始化收敛更快。留空为随机。",
    )
    encoder_hidden_size: int = fld(
        128,
        "int",
        ("P-tuning encoder size", "P-tuning 编码器大小"),
        "P-tuning only: hidden size of the MLP that produces the virtual tokens. 128-512; bigger is more "
        "expressive and slower.",
        "仅用于 P-tuning：生成虚拟 token 的 MLP 隐藏层大小。128–512；越大表达力越强、越慢。",
        min=8,
        max=16384,
    )
    adapter_layers: int = fld(
        8,
        "int",
        ("Adapter layers", "适配层数"),
        "LLaMA-Adapter only: how many of the top layers get adaption prompts. 8-30; more layers adapt "
        "more strongly.",
        "仅用于 LLaMA-Adapter：顶部多少层加入适配提示。8–30；层数越多适配越强。",
        min=1,
        max=1024,
    )
