"""Opening a finished run (or a plain model) for chat, evaluation and export.

A run folder holds the frozen `recipe.toml` and its result: `adapter/` for PEFT methods (put back
on the base model loaded exactly as in training, 4-bit for QLoRA) or `model/` for full and freeze
runs (a complete model). See docs/architecture.md, "Run directory".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.models import ModelSource
    from tuitune.core.recipe import Recipe

RECIPE_FILE = "recipe.toml"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
EVAL_DIR = "eval"


@dataclass(frozen=True)
class RunFolder:
    """A run folder whose recipe has been read; the result may or may not exist yet."""

    path: Path
    recipe: Recipe

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def method(self) -> str:
        return self.recipe.method.type

    @property
    def is_peft(self) -> bool:
        return self.recipe.is_peft

    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER_DIR

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def eval_dir(self) -> Path:
        return self.path / EVAL_DIR

    @property
    def result_dir(self) -> Path:
        """adapter/ for PEFT methods, model/ for full and freeze runs."""
        return self.adapter_dir if self.is_peft else self.model_dir

    def has_result(self) -> bool:
        d = self.result_dir
        marker = "adapter_config.json" if self.is_peft else "config.json"
        return (d / marker).is_file()

    def status_line(self) -> str:
        """What status.json says about the run, in a few words ("" when there is none)."""
        try:
            status = json.loads((self.path / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        if not isinstance(status, dict):
            return ""
        text = f"status: {status.get('status', '?')}"
        if status.get("step") is not None and status.get("max_steps"):
            text += f", step {status['step']}/{status['max_steps']}"
        return text


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / RECIPE_FILE).is_file()


def find_run(target: str, runs_dir: str | Path = "runs") -> Path | None:
    """The run folder `target` names: a path to a run folder, or a run name inside runs_dir."""
    path = Path(target).expanduser()
    if is_run_folder(path):
        return path.resolve()
    if "/" not in target and "\\" not in target:
        candidate = Path(runs_dir) / target
        if is_run_folder(candidate):
            return candidate.resolve()
    return None


def require_run(target: str, runs_dir: str | Path = "runs") -> Path:
    """find_run, or a UserError naming the runs there are."""
    path = find_run(target, runs_dir)
    if path is None:
        raise UserError(f"'{target}' is not a run ({known_runs(runs_dir)})", "give a run name or a run folder holding recipe.toml")
    return path


def known_runs(runs_dir: str | Path) -> str:
    runs = list_run_names(runs_dir)
    return f"runs in {runs_dir}/: {', '.join(runs)}" if runs else f"no runs in {runs_dir}/"


def list_run_names(runs_dir: str | Path = "runs") -> list[str]:
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_run_folder(p))


def read_run(path: str | Path) -> RunFolder:
    """Read a run folder's frozen recipe. Raises UserError naming the file and its problems."""
    from tuitune.core.recipe import load_recipe

    path = Path(path)
    recipe_path = path / RECIPE_FILE
    if not path.is_dir():
        raise UserError(f"run folder {path} does not exist", "give a run folder or a run name from the runs folder")
    if not recipe_path.is_file():
        raise UserError(f"{path} is not a run folder: it has no {RECIPE_FILE}", "runs are written by `tuitune train`")
    recipe, problems = load_recipe(recipe_path)
    if problems:
        shown = "; ".join(p.format() for p in problems[:3])
        raise UserError(f"{recipe_path}: {shown}", "fix the recipe copy, or train the run again")
    return RunFolder(path.resolve(), recipe)


def open_finished_run(path: str | Path) -> RunFolder:
    """Like read_run, but also require the trained result (adapter/ or model/)."""
    run = read_run(path)
    if not run.has_result():
        where = f"{run.result_dir.name}/"
        status = run.status_line()
        raise UserError(
            f"run '{run.name}' has no {where} yet: training has not finished" + (f" ({status})" if status else ""),
            f"wait for it to finish (tuitune runs watch {run.name}), or train it: tuitune train {run.path / RECIPE_FILE}",
        )
    return run


def resolve_target(target: str, runs_dir: str | Path = "runs") -> RunFolder | ModelSource:
    """A run (folder or name) or, failing that, a model (folder, hub id, .gguf)."""
    from tuitune.core.models import HUB_ID_RE, resolve_model

    run_path = find_run(target, runs_dir)
    if run_path is not None:
        return open_finished_run(run_path)
    path = Path(target).expanduser()
    if path.is_dir() and (path / "adapter_config.json").is_file():
        raise UserError(
            f"{path} is an adapter folder, not a run or a model",
            "chat with the run it came from (the folder holding recipe.toml), or merge it first",
        )
    if not path.exists() and not HUB_ID_RE.match(target) and not target.endswith(".gguf"):
        raise UserError(
            f"'{target}' is not a run, a model folder or a hub id ({known_runs(runs_dir)})",
            "give a run name, a run folder, a model folder, a .gguf file or a hub id such as org/name",
        )
    return resolve_model(target)


@dataclass
class LoadedModel:
    """A model ready for generation.

    kind: "adapter" (a PeftModel whose adapter can be switched off to get the base back),
    "full" (a full/freeze run's model/: the base needs a separate load) or "plain" (no run).
    """

    model: Any
    tokenizer: Any
    kind: str
    label: str
    run: RunFolder | None = None
    recipe: Recipe | None = None
    device: str = "cpu"

    @property
    def method(self) -> str:
        return self.run.method if self.run else ""


def quiet_libraries() -> None:
    """Silence per-load progress bars and import-time notices that would clutter a terminal chat."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    # Library deprecation notices (raised inside peft/transformers, not by tuitune's calls) and
    # peft's note that prompt-learning models ignore position ids, which generation always passes.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")
    warnings.filterwarnings("ignore", message="Position ids are not supported for parameter efficient tuning")


def tokenizer_for_run(run: RunFolder, fallback: Any) -> Any:
    """A tokenizer saved with the result wins (the engine may have set pad token or template)."""
    if (run.result_dir / "tokenizer_config.json").is_file():
        return _tokenizer_in(run.result_dir, run.recipe)
    return fallback


def _tokenizer_in(folder: Path, recipe: Recipe) -> Any:
    from tuitune.core.models import ModelSource, load_tokenizer

    source = ModelSource(str(folder), folder, "local")
    return load_tokenizer(source, trust_remote_code=recipe.model.trust_remote_code)


def load_run_model(run: RunFolder, device: str | None = None) -> LoadedModel:
    """The tuned model of a finished run: base + adapter, or the full model/."""
    from tuitune.core.models.loading import load_base_model, pick_device

    device = device or pick_device()
    recipe = run.recipe
    if run.is_peft:
        from peft import PeftModel

        base, tokenizer, _ = load_base_model(recipe, device=device)
        try:
            model = PeftModel.from_pretrained(base, str(run.adapter_dir), is_trainable=False)
        except (ValueError, RuntimeError, OSError) as e:
            raise UserError(
                f"{run.adapter_dir}: the adapter does not fit the base model {recipe.model.name_or_path}: {_first_line(e)}",
                "the base model must be the one the run was trained on",
            ) from e
        tokenizer = tokenizer_for_run(run, tokenizer)
        kind = "adapter"
    else:
        model, tokenizer = _load_full(run.model_dir, recipe, device)
        kind = "full"
    model.eval()
    return LoadedModel(model, tokenizer, kind, f"{run.name} ({run.method})", run, recipe, device)


def load_base_for(run: RunFolder, device: str | None = None) -> LoadedModel:
    """The run's base model on its own (as loaded for training: 4-bit for QLoRA)."""
    from tuitune.core.models.loading import load_base_model, pick_device

    device = device or pick_device()
    model, tokenizer, _ = load_base_model(run.recipe, device=device)
    model.eval()
    return LoadedModel(model, tokenizer, "plain", f"base {run.recipe.model.name_or_path}", None, run.recipe, device)


def load_plain_model(source: ModelSource, device: str | None = None) -> LoadedModel:
    """A model that is not a run: loaded like a recipe's base would be (default dtype rules)."""
    from tuitune.core.models.loading import load_base_model, pick_device
    from tuitune.core.recipe import new_recipe

    device = device or pick_device()
    recipe = new_recipe("lora", source.requested)
    model, tokenizer, _ = load_base_model(recipe, device=device, source=source)
    model.eval()
    return LoadedModel(model, tokenizer, "plain", source.requested, None, None, device)


def load_target(target: str, runs_dir: str | Path = "runs", device: str | None = None) -> LoadedModel:
    """Load whatever `target` names: a finished run (tuned model) or a plain model."""
    resolved = resolve_target(target, runs_dir)
    if isinstance(resolved, RunFolder):
        return load_run_model(resolved, device)
    return load_plain_model(resolved, device)


def _load_full(folder: Path, recipe: Recipe, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    from tuitune.core.models.loading import weight_dtype
    from tuitune.core.models import load_tokenizer

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=weight_dtype(recipe, device), trust_remote_code=recipe.model.trust_remote_code
    )
    model.to(device)
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = _tokenizer_in(folder, recipe)
    else:
        tokenizer = load_tokenizer(recipe.model_path, trust_remote_code=recipe.model.trust_remote_code)
    return model, tokenizer


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
