"""Loading a finished run's tuned model (or a plain model) for chat, evaluation and export.

A run's result (`RunDirectory.result_dir`) is `adapter/` for PEFT methods, put back on the base
model loaded exactly as in training (4-bit for QLoRA), or `model/` for full and freeze runs (a
complete model). Finding and reading the run folder is tuitune.core.runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.models import ModelSource
    from tuitune.core.recipe import Recipe
    from tuitune.core.runs import RunDirectory

def resolve_target(target: str, runs_dir: str | Path = "runs") -> RunDirectory | ModelSource:
    """A run (folder or name) or, failing that, a model (folder, hub id, .gguf)."""
    from tuitune.core.models import HUB_ID_RE, resolve_model
    from tuitune.core.runs import known_runs, locate_run, open_finished_run

    run = locate_run(target, runs_dir)
    if run is not None:
        return open_finished_run(run.path)
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
    run: RunDirectory | None = None
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


def tokenizer_for_run(run: RunDirectory, fallback: Any) -> Any:
    """A tokenizer saved with the result wins (the engine may have set pad token or template)."""
    if (run.result_dir / "tokenizer_config.json").is_file():
        return _tokenizer_in(run.result_dir, run.recipe)
    return fallback


def _tokenizer_in(folder: Path, recipe: Recipe) -> Any:
    from tuitune.core.models import ModelSource, load_tokenizer

    source = ModelSource(str(folder), folder, "local")
    return load_tokenizer(source, trust_remote_code=recipe.model.trust_remote_code)


def load_run_model(run: RunDirectory, device: str | None = None) -> LoadedModel:
    """The tuned model of a finished run: base + adapter, or the full model/."""
    from tuitune.core.models.load_errors import check_files, describe_load_error
    from tuitune.core.models.loading import load_base_model, pick_device

    device = device or pick_device()
    recipe = run.recipe
    if run.is_peft:
        from peft import PeftModel

        check_files("the adapter", run.adapter_dir)
        base, tokenizer, _ = load_base_model(recipe, device=device)
        try:
            model = PeftModel.from_pretrained(base, str(run.adapter_dir), is_trainable=False)
        except (RuntimeError, KeyError) as e:
            if type(e).__name__ == "OutOfMemoryError":
                raise
            raise UserError(
                f"{run.adapter_dir}: the adapter does not fit the base model {recipe.model.name_or_path}: {_first_line(e)}",
                "the base model must be the one the run was trained on",
            ) from e
        except Exception as e:  # a damaged adapter_config.json, a file peft cannot read
            raise describe_load_error(e, "the adapter", str(run.adapter_dir)) from e
        tokenizer = tokenizer_for_run(run, tokenizer)
        kind = "adapter"
    else:
        model, tokenizer = _load_full(run.model_dir, recipe, device)
        kind = "full"
    model.eval()
    return LoadedModel(model, tokenizer, kind, f"{run.name} ({run.method})", run, recipe, device)


def load_base_for(run: RunDirectory, device: str | None = None) -> LoadedModel:
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
    from tuitune.core.models import ModelSource

    resolved = resolve_target(target, runs_dir)
    if not isinstance(resolved, ModelSource):
        return load_run_model(resolved, device)
    return load_plain_model(resolved, device)


def _load_full(folder: Path, recipe: Recipe, device: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    from tuitune.core.models import load_tokenizer
    from tuitune.core.models.load_errors import loading
    from tuitune.core.models.loading import weight_dtype

    with loading("the trained model", folder):
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
