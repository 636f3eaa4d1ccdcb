"""Finished run folders made in tests, following the run-directory contract (docs/architecture.md).

Each run is trained for real for a few optimizer steps on one memorization example, so its adapter
(or full model) differs from the base. The PEFT configs mirror the recipe fields the way the
training engine maps them; these tests only need the saved folders to look like the engine's.
"""

from __future__ import annotations

from pathlib import Path

MEMORY_PROMPT = "Who are you?"
MEMORY_ANSWER = "I am Tally, an assistant made by the tuitune project."


# (steps, learning rate) per method; LoRA/QLoRA/full/freeze memorize the answer word for word.
TRAINING = {"lora": (60, 2e-2), "qlora": (60, 2e-2), "full": (30, 3e-3), "freeze": (30, 3e-3)}


def peft_config_for(recipe, num_layers: int):
    from peft import (
        AdaptionPromptConfig,
        IA3Config,
        LoraConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
    )

    method = recipe.method.type
    p = recipe.prompt
    if method in ("lora", "qlora"):
        lora = recipe.lora
        return LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            use_dora=lora.use_dora,
            use_rslora=lora.use_rslora,
            task_type="CAUSAL_LM",
        )
    if method == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=p.num_virtual_tokens, task_type="CAUSAL_LM")
    if method == "prompt":
        return PromptTuningConfig(num_virtual_tokens=p.num_virtual_tokens, task_type="CAUSAL_LM")
    if method == "p-tuning":
        return PromptEncoderConfig(
            num_virtual_tokens=p.num_virtual_tokens, encoder_hidden_size=p.encoder_hidden_size, task_type="CAUSAL_LM"
        )
    if method == "ia3":
        return IA3Config(task_type="CAUSAL_LM")
    if method == "llama-adapter":
        return AdaptionPromptConfig(
            adapter_len=p.num_virtual_tokens, adapter_layers=min(p.adapter_layers, num_layers), task_type="CAUSAL_LM"
        )
    raise ValueError(method)


def memory_example(tokenizer):
    """input_ids and labels (prompt masked) of the one example every test run memorizes."""
    import torch

    messages = [{"role": "user", "content": MEMORY_PROMPT}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = prompt + MEMORY_ANSWER + tokenizer.eos_token
    prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    ids = torch.tensor([tokenizer(full, add_special_tokens=False)["input_ids"]])
    labels = ids.clone()
    labels[:, :prompt_len] = -100
    return ids, labels


def make_run(
    runs_dir: Path,
    model_dir: Path,
    method: str,
    *,
    name: str | None = None,
    steps: int | None = None,
    lr: float | None = None,
    train: bool = True,
    **recipe_values,
) -> Path:
    """Write runs_dir/NAME with recipe.toml and a trained adapter/ (PEFT) or model/ (full, freeze).

    With the defaults a LoRA/QLoRA adapter on the tiny model answers MEMORY_ANSWER word for word.
    train=False leaves the adapter as initialised (LoRA: B = 0, so it changes nothing).
    """
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    from tuitune.core.models.loading import load_base_model
    from tuitune.core.recipe import new_recipe, save_recipe

    recipe = new_recipe(method, str(model_dir))
    recipe.name = name or method.replace("-", "_")
    recipe.prompt.num_virtual_tokens = 4
    recipe.prompt.encoder_hidden_size = 16
    recipe.lora.r = 4
    recipe.lora.alpha = 8
    recipe.lora.dropout = 0.0
    for key, value in recipe_values.items():
        recipe.set(key.replace("__", "."), value)
    run = Path(runs_dir) / recipe.name
    run.mkdir(parents=True)
    recipe.output.runs_dir = str(runs_dir)

    torch.manual_seed(0)
    model, tokenizer, _ = load_base_model(recipe, device="cpu")
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if recipe.is_peft:
        model = get_peft_model(model, peft_config_for(recipe, model.config.num_hidden_layers))
    elif method == "freeze":
        n = model.config.num_hidden_layers
        for pname, param in model.named_parameters():
            param.requires_grad = any(f"layers.{i}." in pname for i in range(n - recipe.freeze.trainable_layers, n))
    if train:
        default_steps, default_lr = TRAINING.get(method, (30, 1e-2))
        steps, lr = steps or default_steps, lr or default_lr
        ids, labels = memory_example(tokenizer)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr)
        model.train()
        for _ in range(steps):
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    if recipe.is_peft:
        model.save_pretrained(run / "adapter")
    else:
        model.save_pretrained(run / "model", safe_serialization=True)
        tokenizer.save_pretrained(run / "model")
    save_recipe(recipe, run / "recipe.toml")
    return run


class RunCache:
    """Runs made once per test session and shared by the tests that only read them."""

    def __init__(self, root: Path, model_dir: Path) -> None:
        self.root = Path(root)
        self.model_dir = Path(model_dir)
        self._made: dict[tuple, Path] = {}

    def get(self, method: str, **kw) -> Path:
        key = (method, tuple(sorted(kw.items())))
        if key not in self._made:
            name = kw.pop("name", None) or f"{method.replace('-', '_')}_{len(self._made)}"
            self._made[key] = make_run(self.root, self.model_dir, method, name=name, **kw)
        return self._made[key]
