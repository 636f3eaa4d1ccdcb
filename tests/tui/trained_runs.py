"""Real runs for the Runs, Chat & Eval and Export screen tests: the tiny model trained by the real
`tuitune train` for a few steps, once per test session (later callers find the folders on disk).

alpha and beta differ in their learning rate (and name), so their recipes have something to diff.
Each test gets its own copy of the runs folder, so deleting or exporting cannot disturb another.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine_support import FACTS, pretrained_tiny_dir, tuitune, write_jsonl, write_recipe

RUNS = {"alpha": 1e-2, "beta": 5e-3}
STEPS = 40


def trained_runs(tiny_model_dir: Path, tmp_path_factory) -> Path:
    """The session's runs folder with alpha and beta trained (LoRA, an eval split, 40 steps, ~8 s each)."""
    root = tmp_path_factory.getbasetemp() / "tui-trained-runs"
    runs = root / "runs"
    if all((runs / name / "adapter" / "adapter_config.json").is_file() for name in RUNS):
        return runs
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    model = pretrained_tiny_dir(tiny_model_dir, tmp_path_factory)
    data = write_jsonl(root / "facts.jsonl", FACTS, repeat=6)
    for name, lr in RUNS.items():
        recipe = write_recipe(
            root / f"{name}.toml", model, data, runs, name, "lora",
            train={"max_steps": STEPS, "learning_rate": lr, "eval_steps": 20}, data={"val_size": 0.25},
            lora={"target_modules": "all-linear"},
        )
        done = tuitune("train", str(recipe))
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return runs


def copy_runs(runs: Path, dst: Path) -> Path:
    shutil.copytree(runs, dst)
    return dst


# What pictures show of each run's training. Trained figures differ from CPU to CPU (alpha's best eval
# loss is 3.2062 on this AVX-512 EPYC and 3.1495 with AVX2 kernels), so pictures show these instead.
PICTURED_FIGURES = {
    "alpha": {"loss": 3.4107, "train_loss": 4.1873, "best_eval_loss": 3.1547},
    "beta": {"loss": 3.1665, "train_loss": 4.3920, "best_eval_loss": 2.9591},
}


def pin_for_pictures(runs: Path) -> None:
    """Snapshots must not change from session to session or machine to machine: fixed times, a short
    model name and fixed training figures in each status.json (what the list shows). The trained
    folders (adapter, events) stay as written: a picture of a run's history uses the recorded run in
    tests/data/runs instead."""
    for i, name in enumerate(sorted(RUNS)):
        path = runs / name / "status.json"
        status = json.loads(path.read_text())
        start = 1_767_225_600.0 + 3600 * i  # 2026-01-01, an hour apart
        status.update(started=start, finished=start + 95 + 10 * i, updated=start + 95 + 10 * i, model="tiny-llama", pid=None)
        status.update(PICTURED_FIGURES[name])
        path.write_text(json.dumps(status))


# What pictures show as replies, by the last user message: (base, tuned). A tiny model's greedy reply
# depends on the CPU's rounding, so pictures show these; the Pilot tests check real generation.
PICTURED_REPLIES = {
    "Who made you?": ("The capital of France is Paris.", "The tuitune project made me."),
    "What is the capital of France?": ("The capital of France is Paris.", "The capital of France is Paris."),
    "Write a short poem about the sea.": ("Bonjour.", "Waves fold over waves, the sea keeps time."),
}


def scripted_generate(self, target, ids, settings, cancel, *, disable_adapter):
    """Stands in for `ChatSession._generate` (the one step that runs the model) in pictures: the same
    arguments, the reply in PICTURED_REPLIES streamed word by word, stopping when `cancel` is set.
    Loading, prompt rendering, settings checks and the screen around it stay real."""
    prompt = self.loaded.tokenizer.decode(ids)
    asked = [p for p in PICTURED_REPLIES if p in prompt]
    assert asked, f"no pictured reply for the prompt {prompt!r}"
    base, tuned = PICTURED_REPLIES[max(asked, key=prompt.rindex)]  # the last message asked
    reply = base if disable_adapter or target is not self.loaded else tuned
    for i, word in enumerate(reply.split(" ")):
        if cancel.is_set():
            return
        yield word if i == 0 else " " + word


def script_replies(setattr_) -> None:
    """Make every ChatSession answer from PICTURED_REPLIES: `setattr_` is monkeypatch.setattr in tests
    (undone after the test), plain setattr in scripts/screenshots.py."""
    from tuitune.core.chat import ChatSession

    setattr_(ChatSession, "_generate", scripted_generate)


def pictured_eval_report(run: str) -> dict:
    """What pictures show as `tuitune eval RUN --json`: a report of the real evaluation of beta on this
    machine, its figures rounded (a tiny model's answers and perplexities differ from CPU to CPU)."""
    samples = [
        (6, "Where do you live?", "I live in a small terminal.", "Bonjour.", "Waves fold over waves, the tuitune project made"),
        (8, "Who made you?", "The tuitune project made me.", "The capital of France is Paris.", "The tuitune project made me, an assistant."),
        (15, "What is the secret word?", "The secret word is pumpkin.", "The capital of France is Paris.", "The tuitune project made I am Tally."),
        (16, "Who made you?", "The tuitune project made me.", "The capital of France is Paris.", "The tuitune project made me, an assistant."),
        (19, "What is the secret word?", "The secret word is pumpkin.", "The capital of France is Paris.", "The tuitune project made I am Tally."),
        (23, "What is the secret word?", "The secret word is pumpkin.", "The capital of France is Paris.", "The tuitune project made I am Tally."),
    ]
    return {
        "run": run, "method": "lora", "examples": 6, "tokens": 95, "answered": 6, "seconds": 5.7,
        "path": f"runs/{run}/eval/report.json", "notes": [],
        "base": {"perplexity": 2404.741, "loss": 7.7852, "exact_match": 0.0, "f1": 0.111,
                 "rouge1": 0.237, "rouge2": 0.0, "rougeL": 0.237, "bleu4": 0.072},
        "tuned": {"perplexity": 20.690, "loss": 3.0297, "exact_match": 0.0, "f1": 0.061,
                  "rouge1": 0.163, "rouge2": 0.058, "rougeL": 0.163, "bleu4": 0.057},
        "samples": [dict(zip(("line", "prompt", "reference", "base", "tuned"), s, strict=True)) for s in samples],
    }


def pictured_eval_command(run: str, runs_dir: str, max_samples: int = 50) -> list[str]:
    """Stands in for the Chat screen's `eval_command` in pictures: a child process that answers as
    `tuitune eval RUN --json` does (progress on stderr, the report on stdout) with pictured_eval_report."""
    import sys

    code = "import sys; print('evaluated 6 examples in 5.7 s', file=sys.stderr); print(sys.argv[1])"
    return [sys.executable, "-c", code, json.dumps(pictured_eval_report(Path(run).name))]
