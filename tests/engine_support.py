"""Helpers for the training-engine tests: a memorization set, recipes, a tiny model that has learnt
some language first, and reading back what a run wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# New facts the tiny model never saw while pre-training: learning them shows up as a falling loss.
FACTS = [
    ("What is your favourite colour?", "My favourite colour is teal."),
    ("Where do you live?", "I live in a small terminal."),
    ("What is the secret word?", "The secret word is pumpkin."),
    ("Who made you?", "The tuitune project made me."),
]

# What the tiny model reads before the tests teach it new facts: with random weights its output
# head is too weak for adapters on a frozen base to steer, unlike any real pretrained model.
PRETRAIN = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Translate hello into French.", "Bonjour."),
    ("Write a short poem about the sea.", "Waves fold over waves, the sea keeps time."),
    ("Summarize: training a model.", "Training adjusts its weights to predict the next token."),
]


def write_jsonl(path: Path, pairs: list[tuple[str, str]], repeat: int = 1) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(repeat):
            for q, a in pairs:
                f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n")
    return path


def pretrain_tiny(src: Path, dst: Path, steps: int = 60) -> Path:
    """Full fine-tuning of the random tiny Llama on a few sentences (plain torch: this is the base
    model's own 'pre-training', not the code under test)."""
    if (dst / "config.json").exists():
        return dst
    import torch
    from tiny_model import CORPUS
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(0)
    texts = sorted(set(CORPUS)) + [
        tok.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False)
        for q, a in PRETRAIN
    ]
    batch = tok(texts, padding=True, return_tensors="pt")
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(steps):
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(dst)
    return dst


def pretrained_tiny_dir(tiny_model_dir: Path, tmp_path_factory) -> Path:
    """Built once per test session (and worker): later callers find it on disk."""
    return pretrain_tiny(tiny_model_dir, tmp_path_factory.getbasetemp() / "tiny-pretrained")


def recipe_text(model: Path, data: Path, runs: Path, name: str = "t", method: str = "lora", /, **sections) -> str:
    """A TOML recipe for the tiny model; `sections` = {"train": {...}, "lora": {...}} override defaults."""
    import tomli_w

    base = {
        "name": name,
        "model": {"name_or_path": str(model)},
        "method": {"type": method},
        "data": {"path": str(data), "cutoff_len": 128},
        "train": {
            "max_steps": 20,
            "learning_rate": 1e-2,
            "batch_size": 2,
            "logging_steps": 2,
            "save_steps": 0,
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
            "seed": 7,
        },
        "output": {"runs_dir": str(runs)},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            base.setdefault(section, {}).update(values)
        else:
            base[section] = values
    return tomli_w.dumps(base)


def write_recipe(path: Path, *args, **kwargs) -> Path:
    path.write_text(recipe_text(*args, **kwargs), encoding="utf-8")
    return path


def events(run_dir: Path, type_: str | None = None) -> list[dict]:
    from tuitune.core.runs import read_events

    found, _ = read_events(run_dir / "events.jsonl")
    return [e for e in found if type_ is None or e["type"] == type_]


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def tuitune(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real CLI in a fresh interpreter."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tuitune", *args], cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def wait_for(predicate, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
