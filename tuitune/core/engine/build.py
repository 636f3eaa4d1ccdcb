"""Build the model a recipe trains: the base (via core.loading) plus what the method makes trainable.

| method        | trainable                                   | saved as  |
| full          | every weight                                | model/    |
| freeze        | the last N decoder layers only              | model/    |
| lora / qlora  | low-rank adapters (DoRA, rsLoRA options)    | adapter/  |
| prefix        | key/value prefixes per layer                | adapter/  |
| prompt        | virtual token embeddings (text init)        | adapter/  |
| p-tuning      | an MLP that produces virtual tokens         | adapter/  |
| ia3           | scaling vectors on k, v and the MLP         | adapter/  |
| llama-adapter | gated adaption prompts in the top layers    | adapter/  |

LLaMA-Adapter is peft's AdaptionPrompt. In peft 0.21 it supports the llama, mistral and gpt2
model types only, cannot be merged into the base, and cannot be combined with packing (like the
other virtual-token methods, its prompts belong to one sequence per row).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.models.loading import load_base_model, mixed_precision, weight_dtype
from tuitune.core.recipe import LORA_METHODS, PROMPT_METHODS, Recipe

# peft's PeftType value for each recipe method, to check an adapter we continue from.
PEFT_TYPE = {
    "lora": "LORA",
    "qlora": "LORA",
    "prefix": "PREFIX_TUNING",
    "prompt": "PROMPT_TUNING",
    "p-tuning": "P_TUNING",
    "ia3": "IA3",
    "llama-adapter": "ADAPTION_PROMPT",
}


@dataclass
class BuiltModel:
    model: Any
    tokenizer: Any
    source: Any
    trainable_params: int
    total_params: int
    notes: list[str] = field(default_factory=list)  # things the user should know, as warning events


def uses_packing(recipe: Recipe) -> bool:
    """Virtual-token methods prepend their tokens once per row, so packed rows would share them."""
    return recipe.data.packing and recipe.method.type not in PROMPT_METHODS


def decoder_layers(model: Any) -> Any:
    """The ModuleList of transformer blocks (model.model.layers for Llama-like models)."""
    import torch

    n = getattr(model.config, "num_hidden_layers", None)
    for name in ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers", "transformer.blocks"):
        obj = model
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    for module in model.modules():  # unusual architectures: the longest ModuleList of the config's size
        if isinstance(module, torch.nn.ModuleList) and len(module) == n:
            return module
    raise UserError("cannot find the transformer layers of this model for freeze-tuning", "use method lora or full")


def freeze_all_but_last_layers(model: Any, n: int) -> None:
    """Freeze-tuning: only the last n decoder layers learn. The embeddings, the final norm and the
    output head stay frozen too (as the recipe help says: the layers and nothing else), which keeps
    optimizer state small and avoids drifting the vocabulary embeddings on small datasets."""
    layers = decoder_layers(model)
    if n > len(layers):
        raise UserError(
            f"freeze.trainable_layers = {n} but the model has {len(layers)} layers",
            f"an integer 1..{len(layers)} (or method full to train everything)",
        )
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[-n:]:
        for p in layer.parameters():
            p.requires_grad_(True)


def peft_config(recipe: Recipe, model: Any, source_path: Path, notes: list[str]) -> Any:
    import peft

    method = recipe.method.type
    if method in LORA_METHODS:
        lo = recipe.lora
        return peft.LoraConfig(
            task_type="CAUSAL_LM",
            r=lo.r,
            lora_alpha=lo.alpha,
            lora_dropout=lo.dropout,
            target_modules=lo.target_modules,
            use_dora=lo.use_dora,
            use_rslora=lo.use_rslora,
        )
    pr = recipe.prompt
    if method == "prefix":
        return peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=pr.num_virtual_tokens)
    if method == "prompt":
        if pr.init_text:
            return peft.PromptTuningConfig(
                task_type="CAUSAL_LM",
                num_virtual_tokens=pr.num_virtual_tokens,
                prompt_tuning_init=peft.PromptTuningInit.TEXT,
                prompt_tuning_init_text=pr.init_text,
                tokenizer_name_or_path=str(source_path),
            )
        return peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=pr.num_virtual_tokens)
    if method == "p-tuning":
        return peft.PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=pr.num_virtual_tokens, encoder_hidden_size=pr.encoder_hidden_size
        )
    if method == "ia3":
        from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as known

        model_type = model.config.model_type
        if model_type not in known:
            raise UserError(
                f"(IA)3 has no default target modules for model type '{model_type}'",
                "use method lora, or a model type peft knows: " + ", ".join(sorted(known)[:12]) + ", ...",
            )
        return peft.IA3Config(task_type="CAUSAL_LM")
    if method == "llama-adapter":
        from peft.tuners.adaption_prompt.config import TRANSFORMERS_MODEL_CONFIG

        model_type = model.config.model_type
        if model_type not in TRANSFORMERS_MODEL_CONFIG:
            raise UserError(
                f"llama-adapter (peft AdaptionPrompt) does not support model type '{model_type}'",
                "supported: " + ", ".join(TRANSFORMERS_MODEL_CONFIG) + "; or use method lora / prompt",
            )
        n_layers = len(decoder_layers(model))
        layers = pr.adapter_layers
        if layers > n_layers:
            notes.append(f"prompt.adapter_layers = {layers} but the model has {n_layers} layers: using all {n_layers}")
            layers = n_layers
        return peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=pr.num_virtual_tokens, adapter_layers=layers)
    raise AssertionError(f"not a PEFT method: {method}")


def adapter_folder(path: str) -> Path:
    """A PEFT adapter folder from `model.adapter`: the folder itself, or a run's adapter/ or last checkpoint."""
    p = Path(path).expanduser()
    if (p / "adapter_config.json").is_file():
        return p
    if (p / "recipe.toml").is_file():
        from tuitune.core.runs import RunDirectory

        found = RunDirectory(p).result_path()
        if found is not None and (found / "adapter_config.json").is_file():
            return found
        raise UserError(f"model.adapter: run {p} has no adapter yet", "finish or resume that run first")
    raise UserError(
        f"model.adapter: {path} is not an adapter folder (no adapter_config.json)", "a PEFT adapter folder or a run folder"
    )


def continue_adapter(recipe: Recipe, model: Any, adapter_name: str = "default") -> Any:
    """The PeftModel with `model.adapter`'s weights as the (trainable) adapter `adapter_name`; `model`
    may already be a PeftModel (a group adds one adapter per recipe)."""
    import peft

    folder = adapter_folder(recipe.model.adapter)
    found = json.loads((folder / "adapter_config.json").read_text()).get("peft_type", "?")
    want = PEFT_TYPE[recipe.method.type]
    if found != want:
        raise UserError(
            f"model.adapter: {folder} is a {found} adapter but method.type = \"{recipe.method.type}\" needs {want}",
            "set method.type to the adapter's method, or leave model.adapter empty",
        )
    if isinstance(model, peft.PeftModel):
        model.load_adapter(str(folder), adapter_name=adapter_name, is_trainable=True)
        return model
    return peft.PeftModel.from_pretrained(model, str(folder), adapter_name=adapter_name, is_trainable=True)


def prepare_quantized_base(model: Any, gradient_checkpointing: bool, head_dtype: Any = None) -> Any:
    """peft's prepare_model_for_kbit_training, keeping the embeddings and the output head 16-bit.

    The peft helper freezes the quantized base, turns on (non-reentrant) gradient checkpointing and
    casts every weight bitsandbytes left unquantized to fp32. For the norms and biases that is a few
    MB and keeps them exact; for the input embeddings and the output head (vocab x hidden each) it
    doubles their size (+2 GiB on Llama-3-8B) for no gain, since their matrix products run in 16-bit
    under autocast anyway. So with `head_dtype` (the model's 16-bit dtype, given when training runs
    under autocast) they go back to it, as the QLoRA authors' own training script does after the
    same call. The memory estimator counts them 16-bit.
    """
    import torch
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )
    if head_dtype in (torch.bfloat16, torch.float16):
        for module in (model.get_input_embeddings(), model.get_output_embeddings()):
            if module is not None and module.weight.dtype == torch.float32:
                module.to(head_dtype)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # hand the fp32 copies' memory back before training allocates
    return model


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total), counting 4-bit packed weights at their real size (peft knows how)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return int(trainable), int(total)


def build_model(recipe: Recipe, device: str, device_map: Any = None) -> BuiltModel:
    """Load the base and prepare it for the recipe's method. Raises UserError for recipe problems."""
    notes: list[str] = []
    model, tokenizer, source = load_base_model(recipe, device=device, device_map=device_map)
    model.config.use_cache = False  # the KV cache is useless in training and clashes with checkpointing
    method = recipe.method.type
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    elif method == "freeze":
        freeze_all_but_last_layers(model, recipe.freeze.trainable_layers)
    else:
        if method == "qlora":
            # Without autocast (mixed_precision "no") fp32 norm outputs meet the head: keep peft's fp32.
            head_dtype = weight_dtype(recipe, device) if mixed_precision(recipe, device) != "no" else None
            model = prepare_quantized_base(model, recipe.train.gradient_checkpointing, head_dtype)
        if recipe.model.adapter:
            model = continue_adapter(recipe, model)
        else:
            import peft

            model = peft.get_peft_model(model, peft_config(recipe, model, source.path, notes))
    if recipe.data.packing and not uses_packing(recipe):
        notes.append(f"data.packing is off for {method}: its virtual tokens belong to one example per row")
    trainable, total = count_parameters(model)
    if trainable == 0:
        raise UserError(f"method {method} left no trainable parameters on this model", "check the recipe's method section")
    return BuiltModel(model, tokenizer, source, trainable, total, notes)
