"""`tuitune export RUN --vllm DIR`: the exact `vllm serve` command, written to DIR/serve.sh.

LoRA adapters are served on their base with vLLM's multi-LoRA support (`--enable-lora
--lora-modules NAME=PATH --max-lora-rank R`): the adapter is copied to DIR/adapter. What vLLM's
LoRA support cannot serve (DoRA, rank above 512, adapters on the embeddings or with saved full
modules, (IA)³) is merged into DIR/merged and served as a plain model; prompt-learning methods can
be neither served nor merged and are refused before anything is written. Full and freeze runs
serve their model/ folder. No vLLM is needed to write the command.
"""

from __future__ import annotations

import json
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

# vLLM's --max-lora-rank accepts these values (its LoRAConfig check).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


@dataclass
class VllmPlan:
    kind: str  # lora | merged | full
    served_name: str
    base: str  # model vLLM loads (base hub id/path, or the merged/full folder)
    rank: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class VllmExport:
    path: Path  # serve.sh
    command: str
    plan: VllmPlan
    model_dir: Path | None = None  # DIR/adapter or DIR/merged when written

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vllm", "serve_sh": str(self.path), "command": self.command, "serves": self.plan.kind,
                "model": str(self.model_dir) if self.model_dir else self.plan.base, "notes": self.plan.notes}


def lora_rank_limit(rank: int) -> int | None:
    """The smallest --max-lora-rank vLLM accepts that holds `rank` (None: above its largest)."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), None)


def plan_vllm(run: Any) -> VllmPlan:
    """How vLLM can serve a finished run (a core.runs.RunDirectory); UserError when it cannot at all. Reads configs only."""
    from tuitune.core.export import METHOD_WORDS
    from tuitune.core.recipe import PROMPT_METHODS

    name = run.name
    if run.method in PROMPT_METHODS:
        raise UserError(
            f"vLLM cannot serve run '{name}' ({run.method}): {METHOD_WORDS[run.method]}, and it cannot be merged",
            "serve it with transformers + peft, or train LoRA for vLLM",
        )
    if not run.is_peft:
        return VllmPlan("full", name, str(run.model_dir), notes=[f"{run.method} run: serving its full model/"])
    config = json.loads((run.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    base = run.recipe.model.name_or_path
    why_not = _lora_obstacle(run.method, config)
    if why_not:
        return VllmPlan("merged", name, "", notes=[f"vLLM cannot serve this adapter ({why_not}): serving the merged model"])
    rank = max([int(config.get("r") or 0), *[int(v) for v in (config.get("rank_pattern") or {}).values()]])
    notes = []
    if run.method == "qlora":
        notes.append("QLoRA: vLLM serves the adapter on the unquantized base (add --quantization bitsandbytes to match training)")
    return VllmPlan("lora", name, base, rank, notes)


def _lora_obstacle(method: str, config: dict[str, Any]) -> str:
    if method == "ia3" or config.get("peft_type") == "IA3":
        return "(IA)³ adapters are not supported by vLLM's LoRA"
    if config.get("use_dora"):
        return "DoRA is not supported by vLLM's LoRA"
    rank = int(config.get("r") or 0)
    if lora_rank_limit(rank) is None:
        return f"rank {rank} is above vLLM's largest --max-lora-rank {VLLM_LORA_RANKS[-1]}"
    if config.get("modules_to_save"):
        return f"it saves full copies of {', '.join(config['modules_to_save'])}"
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else targets
    if any(t in ("embed_tokens", "lm_head", "wte") for t in targets):
        return "LoRA on the embeddings or the output head"
    return ""


def serve_command(plan: VllmPlan, model: str, adapter: Path | None = None, *, max_model_len: int = 0) -> str:
    parts = ["vllm", "serve", model, "--served-model-name", plan.served_name if plan.kind != "lora" else f"{plan.served_name}-base"]
    if plan.kind == "lora" and adapter is not None:
        parts += ["--enable-lora", "--lora-modules", f"{plan.served_name}={adapter}", "--max-lora-rank", str(lora_rank_limit(plan.rank))]
    if max_model_len:
        parts += ["--max-model-len", str(max_model_len)]
    return " ".join(shlex.quote(p) for p in parts)


def export_vllm(run_path: str | Path, out_dir: str | Path, *, overwrite: bool = False, merged_dir: Path | None = None,
                progress: Any = None) -> VllmExport:
    """Write DIR/serve.sh (and DIR/adapter or DIR/merged) for a finished run."""
    from tuitune.core.export import check_output, export_adapter, merge_run
    from tuitune.core.runs import open_finished_run

    run = open_finished_run(run_path)
    plan = plan_vllm(run)
    out = check_output(out_dir, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    model_dir: Path | None = None
    adapter: Path | None = None
    if plan.kind == "lora":
        adapter = out / "adapter"
        export_adapter(run.path, adapter, overwrite=True, progress=progress)
        model_dir, model = adapter, plan.base
    elif plan.kind == "merged":
        if merged_dir is None:
            merged_dir = out / "merged"
            merge_run(run.path, merged_dir, overwrite=True, progress=progress)
        model_dir, model = merged_dir, str(merged_dir.resolve())
    else:
        model = str(run.model_dir)
    command = serve_command(plan, model, adapter.resolve() if adapter else None)
    script = out / "serve.sh"
    lines = ["#!/bin/sh", f"# Serve run '{run.name}' with vLLM (written by tuitune).", *[f"# {n}" for n in plan.notes]]
    if plan.kind == "lora":
        lines.append(f"# Requests name the adapter: \"model\": \"{plan.served_name}\" (the base alone: {plan.served_name}-base).")
    lines += ["exec " + command + ' "$@"', ""]
    script.write_text("\n".join(lines), encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return VllmExport(script, command, plan, model_dir)
