"""Exporting a finished run: its adapter as a self-describing folder, or a merged full model.

Merging folds the adapter into the base weights so the result loads with plain transformers
(`AutoModelForCausalLM.from_pretrained(OUT)`), no peft needed. Only methods that change weights
can merge (LoRA, QLoRA, DoRA, (IA)³); prompt-learning methods add learned virtual tokens or
attention prompts instead, and say so before anything is loaded.

QLoRA: by default the quantized base is dequantized and the adapter merged into those weights, so
the merged model answers like the model that was trained and tested (rounding included).
`qlora_base="original"` instead merges into the original unquantized weights; the adapter was
trained against the quantized ones, so that model differs from the one trained by about as much as
the quantized base differs from the original (small for 7B+ models, large for the 135M demo).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.models.load_errors import check_files
from tuitune.core.progress import ProgressFn, report
from tuitune.core.recipe import PROMPT_METHODS, to_toml
from tuitune.core.runs import RunDirectory, open_finished_run, read_run

METADATA_FILE = "tuitune.json"
# Not "recipe.toml": that name marks a run folder, and an export is a model or an adapter.
RECIPE_COPY = "training-recipe.toml"
METHOD_WORDS = {
    "prefix": "prefix tuning adds learned key/value prefixes to every layer",
    "prompt": "prompt tuning adds learned virtual tokens to the input",
    "p-tuning": "P-tuning adds virtual tokens produced by a small prompt encoder",
    "llama-adapter": "LLaMA-Adapter adds learned adaption prompts with their own gated attention",
}
QLORA_WARNING = (
    "QLoRA: merged into the original (unquantized) base weights. The adapter was trained on the quantized "
    "weights, so the merged model's outputs differ from the model that was trained, by about as much as the "
    "quantized base differs from the original (little for large models, more for small ones). "
    "The default, --qlora-base quantized, merges into the dequantized weights: the model as trained."
)
QLORA_QUANTIZED_NOTE = (
    "QLoRA: merged into the dequantized quantized base weights, so the merged model answers like the model "
    "that was trained, with the base's quantization rounding kept in its weights."
)
QLORA_BASES = ("original", "quantized")


@dataclass
class ExportResult:
    path: Path
    kind: str  # adapter | merged | copied
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ------------------------------------------------------------------------------ up-front checks


def check_adapter_export(run_path: str | Path) -> RunDirectory:
    """The run, if its adapter can be exported; UserError otherwise. Loads nothing."""
    run = read_run(run_path)
    if not run.is_peft:
        raise UserError(
            f"run '{run.name}' is a {run.method} fine-tuning run: it has no adapter, its model/ is already a full model",
            "use --merge OUT to copy the full model",
        )
    run = open_finished_run(run.path)
    check_files("the adapter", run.adapter_dir)
    return run


def check_merge(run_path: str | Path, qlora_base: str = "quantized") -> tuple[RunDirectory, list[str]]:
    """(run, warnings) if a merge can work; UserError saying why not otherwise. Loads nothing."""
    if qlora_base not in QLORA_BASES:
        raise UserError(f"qlora base '{qlora_base}' is not known", "one of " + ", ".join(QLORA_BASES))
    run = read_run(run_path)
    if run.method in PROMPT_METHODS:
        raise UserError(
            f"run '{run.name}' ({run.method}) cannot be merged: {METHOD_WORDS[run.method]}, "
            "it does not change the model's weights",
            f"export the adapter instead (--adapter OUT) and load it with peft on top of {run.recipe.model.name_or_path}",
        )
    run = open_finished_run(run.path)
    check_files("the trained result", run.result_dir)
    warnings: list[str] = []
    if not run.is_peft:
        warnings.append(f"{run.method} run: model/ is already a full model, nothing to merge; copying it")
    if run.method == "qlora":
        warnings.append(QLORA_WARNING if qlora_base == "original" else QLORA_QUANTIZED_NOTE)
    return run, warnings


def check_output(out: str | Path, overwrite: bool = False) -> Path:
    out = Path(out).expanduser()
    if out.exists():
        if not out.is_dir():
            raise UserError(f"output {out} exists and is a file", "choose a new folder name")
        if any(out.iterdir()) and not overwrite:
            raise UserError(f"output folder {out} exists and is not empty", "choose a new folder, or add --force to replace it")
    return out


# ------------------------------------------------------------------------------ exports


def export_adapter(
    run_path: str | Path, out: str | Path, *, overwrite: bool = False, progress: ProgressFn | None = None
) -> ExportResult:
    """Copy the run's adapter to `out` with a README, tuitune.json (base model, method) and the recipe."""
    start = time.perf_counter()
    run = check_adapter_export(run_path)
    out = check_output(out, overwrite)
    staging = _staging(out)
    report(progress, "copy", f"copying {run.adapter_dir}")
    # training_args.bin (written by the Trainer) is a pickle of training settings, not part of the adapter.
    shutil.copytree(run.adapter_dir, staging, ignore=shutil.ignore_patterns("training_args.bin"))
    _portable_base_name(staging / "adapter_config.json", run)
    _describe(staging, run, kind="adapter", warnings=[])
    _finish(staging, out)
    report(progress, "done", f"wrote {out}")
    return _result(out, "adapter", [], start)


def merge_run(
    run_path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    device: str = "cpu",
    qlora_base: str = "quantized",
) -> ExportResult:
    """Merge the adapter into the base and save a full safetensors model with its tokenizer.

    Full/freeze runs: their model/ is copied. Raises UserError before loading anything when a
    merge cannot work (prompt-learning methods, unfinished run, occupied output folder).
    qlora_base: merge a QLoRA adapter into the "original" base weights or the "quantized" ones.
    """
    start = time.perf_counter()
    run, warnings = check_merge(run_path, qlora_base)
    out = check_output(out, overwrite)
    staging = _staging(out)
    if not run.is_peft:
        report(progress, "copy", f"copying {run.model_dir}")
        shutil.copytree(run.model_dir, staging)
        _describe(staging, run, kind="copied", warnings=warnings)
        _finish(staging, out)
        report(progress, "done", f"wrote {out}")
        return _result(out, "copied", warnings, start)

    try:
        _merge_into(run, staging, device, progress, from_quantized=qlora_base == "quantized")
        _describe(staging, run, kind="merged", warnings=warnings)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _finish(staging, out)
    report(progress, "done", f"wrote {out}")
    return _result(out, "merged", warnings, start)


def merge_dtype_name(recipe: Any, config_dtype: str | None) -> str:
    """dtype of the merged weights: the recipe's explicit choice, else the base checkpoint's own.

    QLoRA uses its compute dtype (the precision its adapter ran in). "auto" would mean float32 on
    CPU, doubling a 16-bit model's size on disk for nothing, so the checkpoint's dtype wins.
    """
    choice = recipe.quantization.compute_dtype if recipe.method.type == "qlora" else recipe.model.dtype
    if choice != "auto":
        return choice
    if config_dtype in ("bfloat16", "float16", "float32"):
        return config_dtype
    return "float32"


def _merge_into(run: RunDirectory, staging: Path, device: str, progress: ProgressFn | None, *, from_quantized: bool) -> None:
    import torch
    from peft import PeftModel

    from tuitune.core.models import resolve_model
    from tuitune.core.models.loading import load_base_model
    from tuitune.core.shard_merge import merge_by_shard, shard_merge_obstacle

    recipe = run.recipe.copy()
    source = resolve_model(recipe.model_path)
    check_files(f"the base model {recipe.model.name_or_path}", source.path)
    dtype_name = merge_dtype_name(run.recipe, _checkpoint_dtype(source.path))
    if not (recipe.method.type == "qlora" and from_quantized) and not shard_merge_obstacle(run.adapter_dir, source.path):
        report(progress, "load", f"merging {run.adapter_dir} into {run.recipe.model.name_or_path} shard by shard ({dtype_name})")
        merge_by_shard(run.adapter_dir, source.path, staging, dtype_name=dtype_name, progress=progress)
        _save_tokenizer(run, staging)
        return
    if recipe.method.type == "qlora" and from_quantized:
        report(progress, "load", f"loading {run.recipe.model.name_or_path} quantized as in training, then dequantizing")
        base, tokenizer, _ = load_base_model(run.recipe, device=device, source=source)
        # bitsandbytes layers back to plain Linear layers holding the rounded weights.
        base = base.dequantize(dtype=getattr(torch, dtype_name))
    else:
        recipe.model.dtype = dtype_name
        if recipe.method.type == "qlora":
            recipe.method.type = "lora"  # load the base unquantized: the merge target is full precision
        report(progress, "load", f"loading {run.recipe.model.name_or_path} ({dtype_name}, unquantized)")
        base, tokenizer, _ = load_base_model(recipe, device=device, source=source)
    report(progress, "load", f"adding the adapter from {run.adapter_dir}")
    model = PeftModel.from_pretrained(base, str(run.adapter_dir), is_trainable=False)
    report(progress, "merge", "merging the adapter into the weights")
    try:
        merged = model.merge_and_unload(safe_merge=True)
    except ValueError as e:  # safe_merge: the adapter produced NaN/inf weights
        raise UserError(f"{run.adapter_dir}: merging gives broken weights: {e}", "the run may have diverged; check its loss") from e
    report(progress, "save", f"saving safetensors to {staging.name}")
    staging.mkdir(parents=True)
    merged.save_pretrained(str(staging), safe_serialization=True)
    _save_tokenizer(run, staging, tokenizer)


def _save_tokenizer(run: RunDirectory, staging: Path, loaded: Any = None) -> None:
    """The run's tokenizer with the template the run was trained with, so the merged model is prompted the same way."""
    from tuitune.core.chat import training_chat_template
    from tuitune.core.models import load_tokenizer
    from tuitune.core.tuned import tokenizer_for_run

    if loaded is None:
        loaded = load_tokenizer(run.recipe.model_path, trust_remote_code=run.recipe.model.trust_remote_code)
    tokenizer = tokenizer_for_run(run, loaded)
    tokenizer.chat_template = training_chat_template(tokenizer, run.recipe.data.template)
    tokenizer.save_pretrained(str(staging))


def _checkpoint_dtype(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("dtype") or config.get("torch_dtype")
    return value if isinstance(value, str) else None


def _portable_base_name(config_path: Path, run: RunDirectory) -> None:
    """Name the base by its hub id rather than this machine's cache path, when it has one."""
    from tuitune.core.models import HUB_ID_RE

    name = run.recipe.model.name_or_path
    if not HUB_ID_RE.match(name) or Path(name).exists():
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _describe(folder: Path, run: RunDirectory, *, kind: str, warnings: list[str]) -> None:
    """README.md, tuitune.json and the recipe: the folder explains itself without tuitune."""
    from tuitune import __version__

    recipe = run.recipe
    meta = {
        "exported_by": f"tuitune {__version__}",
        "kind": kind,
        "run": run.name,
        "run_path": str(run.path),
        "method": recipe.method.type,
        "base_model": recipe.model.name_or_path,
        "chat_template": recipe.data.template,
        "system_prompt": recipe.data.system,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "warnings": warnings,
    }
    (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / RECIPE_COPY).write_text(to_toml(recipe), encoding="utf-8")
    (folder / "README.md").write_text(_readme(run, kind, warnings), encoding="utf-8")


def _readme(run: RunDirectory, kind: str, warnings: list[str]) -> str:
    recipe = run.recipe
    base = recipe.model.name_or_path
    lines = [f"# {run.name}", ""]
    if kind == "adapter":
        lines += [
            f"A {recipe.method.type} adapter for `{base}`, trained with tuitune.",
            "",
            "```python",
            "from peft import PeftModel",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'base = AutoModelForCausalLM.from_pretrained("{base}")',
            'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
            f'tokenizer = AutoTokenizer.from_pretrained("{base}")',
            "```",
        ]
        if recipe.method.type == "qlora":
            lines += ["", f"Trained on a 4-bit base: load the base with the quantization settings in {RECIPE_COPY} for identical outputs."]
    else:
        what = "merged with its adapter" if kind == "merged" else "fully fine-tuned"
        lines += [
            f"`{base}` {what} ({recipe.method.type}), trained with tuitune. Loads with plain transformers:",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
        ]
    if recipe.data.system:
        lines += ["", f"Trained with the system prompt: {recipe.data.system!r}; use it when chatting."]
    if warnings:
        lines += ["", "## Notes", "", *[f"- {w}" for w in warnings]]
    lines += ["", f"## Training recipe ({RECIPE_COPY})", "", "```toml", to_toml(recipe).rstrip(), "```", ""]
    return "\n".join(lines)


def _staging(out: Path) -> Path:
    """A sibling folder written first and renamed at the end: no half-written export under OUT."""
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


def _finish(staging: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def _result(out: Path, kind: str, warnings: list[str], start: float) -> ExportResult:
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    size = sum((out / f).stat().st_size for f in files)
    return ExportResult(out, kind, files, size, warnings, time.perf_counter() - start)
