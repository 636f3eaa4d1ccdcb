"""`tuitune export RUN --gguf DIR`: merge, convert, quantize, write a Modelfile, check parity.

The stages, each reported through `progress` (stage names as the TUI shows them):
merge (a run's adapter into its base; a full run's model/ or a plain model is used as it is),
convert (llama.cpp's converter), quantize (llama.cpp's quantizer, k-quants only), ollama (the
Modelfile, checked against the chat template), parity (the GGUF against the merged model).
Files are kept when the parity check fails: the result says what failed and the CLI exits 1.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.progress import ProgressFn, report

STAGES = ("merge", "convert", "quantize", "ollama", "parity")


@dataclass(frozen=True)
class GgufSource:
    """What a GGUF is made from: a run (merged first when it has an adapter) or a plain model folder."""

    name: str
    run: Any | None  # core.runs.RunDirectory
    model_dir: Path | None  # a folder ready to convert (full run's model/, a plain model); None: merge first
    template: str  # data.template
    system: str  # data.system
    warnings: list[str] = field(default_factory=list)


@dataclass
class GgufExportResult:
    path: Path
    quant: str
    size_bytes: int
    source: str
    modelfile: Path | None = None
    ollama_command: str = ""
    parity: Any | None = None  # ParityResult
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.parity is None or self.parity.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "gguf",
            "path": str(self.path),
            "quant": self.quant,
            "size_bytes": self.size_bytes,
            "source": self.source,
            "modelfile": str(self.modelfile) if self.modelfile else None,
            "ollama_command": self.ollama_command or None,
            "parity": self.parity.to_dict() if self.parity is not None else None,
            "passed": self.passed,
            "warnings": self.warnings,
            "stage_seconds": self.stage_seconds,
            "commands": self.commands,
        }


def safe_name(name: str) -> str:
    """A file and Ollama model name: lowercase letters, digits, '-', '_' and '.'."""
    name = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return name or "model"


def gguf_source(target: str, runs_dir: str | Path = "runs") -> GgufSource:
    """The run or model `target` names, checked for a GGUF export without loading weights."""
    from tuitune.core.export import check_merge
    from tuitune.core.models import HUB_ID_RE, resolve_model
    from tuitune.core.runs import known_runs, locate_run

    located = locate_run(target, runs_dir)
    if located is not None:
        run, warnings = check_merge(located.path)
        warnings = [w for w in warnings if "copying it" not in w]
        model_dir = None if run.is_peft else run.model_dir
        d = run.recipe.data
        return GgufSource(safe_name(run.name), run, model_dir, d.template, d.system or "", warnings)
    path = Path(target).expanduser()
    if not path.exists() and not HUB_ID_RE.match(target) and not target.endswith(".gguf"):
        raise UserError(
            f"'{target}' is not a run, a model folder or a hub id ({known_runs(runs_dir)})",
            "give a run name, a run folder, a model folder or a hub id such as org/name",
        )
    source = resolve_model(target)
    stem = Path(target.rstrip("/")).name.removesuffix(".gguf")
    return GgufSource(safe_name(stem), None, source.path, "auto", "", [])


def gguf_path(out_dir: str | Path, source: GgufSource, quant: str) -> Path:
    return Path(out_dir).expanduser() / f"{source.name}-{quant}.gguf"


def check_gguf_export(
    target: str, out_dir: str | Path, quant: str, *, runs_dir: str | Path = "runs", overwrite: bool = False
) -> tuple[GgufSource, Path]:
    """(source, the .gguf to write) if the export can work here; UserError saying why not. Loads nothing."""
    from tuitune.core.gguf_convert import check_quant

    q = check_quant(quant)
    source = gguf_source(target, runs_dir)
    out = gguf_path(out_dir, source, q.name)
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"{out.parent} exists and is a file", "choose a folder for --gguf")
    if out.exists() and not overwrite:
        raise UserError(f"{out} exists", "choose another folder, or add --force to replace it")
    return source, out


def export_gguf(
    target: str,
    out_dir: str | Path,
    *,
    quant: str = "q8_0",
    runs_dir: str | Path = "runs",
    ollama: bool = False,
    overwrite: bool = False,
    merged_dir: Path | None = None,
    parity_prompts: int = 4,
    llama_cpp: bool | None = None,
    progress: ProgressFn | None = None,
) -> GgufExportResult:
    """Write DIR/NAME-QUANT.gguf (+ Modelfile) from a run or a plain model and check it.

    merged_dir: an already merged model of the same run (`--merge OUT` in the same command).
    """
    from tuitune.core.gguf_convert import QUANT_TYPES, convert

    source, out = check_gguf_export(target, out_dir, quant, runs_dir=runs_dir, overwrite=overwrite)
    q = QUANT_TYPES[quant.lower()]
    timings: dict[str, float] = {}
    warnings = list(source.warnings)
    temp_merged: Path | None = None
    clock = time.perf_counter()
    try:
        model_dir = merged_dir or source.model_dir
        if model_dir is None:
            from tuitune.core.export import merge_run

            temp_merged = out.parent / f".{source.name}-merged"
            shutil.rmtree(temp_merged, ignore_errors=True)
            report(progress, "merge", f"merging {source.run.name}'s adapter into its base")
            merge_run(source.run.path, temp_merged, overwrite=True, progress=_as_stage(progress, "merge"))
            model_dir = temp_merged
        timings["merge"] = _lap(clock)
        clock = time.perf_counter()

        from tuitune.core.ollama import check_translation
        from tuitune.core.served_template import served_template

        tokenizer = _tokenizer(model_dir)
        served = served_template(tokenizer, source.template, source.system)
        modelfile_plan = check_translation(tokenizer, served) if ollama else None

        convert(
            model_dir, out, q.name, chat_template=served.jinja, end_tokens=served.end_tokens,
            model_name=source.name, progress=progress,
        )
        timings["convert"] = _lap(clock)
        clock = time.perf_counter()
        result = GgufExportResult(out, q.name, out.stat().st_size, source.run.name if source.run else target)
        if modelfile_plan is not None:
            from tuitune.core.ollama import write_modelfile

            report(progress, "ollama", "writing the Ollama Modelfile")
            result.modelfile, result.ollama_command = write_modelfile(out, modelfile_plan, source.name)
            timings["ollama"] = _lap(clock)
            clock = time.perf_counter()

        from tuitune.core.parity import check_parity
        from tuitune.core.parity import parity_prompts as pick_prompts

        chats, where = pick_prompts(source.run.recipe if source.run else None, tokenizer, parity_prompts)
        result.parity = check_parity(
            out, model_dir, chats, served=served, quant=q.name, expected_share=q.expected_share,
            prompt_source=where, llama_cpp=llama_cpp, progress=progress,
        )
        timings["parity"] = _lap(clock)
    finally:
        if temp_merged is not None:
            shutil.rmtree(temp_merged, ignore_errors=True)
    result.warnings = warnings
    result.stage_seconds = timings
    result.commands = run_commands(result)
    report(progress, "done", f"wrote {out}")
    return result


def run_commands(result: GgufExportResult) -> list[str]:
    """How to run the exported model: llama.cpp, llama-cpp-python, Ollama."""
    commands = [f"llama-cli -m {result.path} -cnv", f"llama-server -m {result.path} --jinja"]
    if result.ollama_command:
        name = result.ollama_command.split()[2]
        commands += [result.ollama_command, f"ollama run {name}"]
    return commands


def _tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def _as_stage(progress: ProgressFn | None, stage: str) -> ProgressFn | None:
    """Report a sub-step's progress under this export's stage name."""
    if progress is None:
        return None
    from tuitune.core.progress import Progress

    return lambda p: progress(Progress(stage, p.message, p.done, p.total))


def _lap(start: float) -> float:
    return round(time.perf_counter() - start, 2)
