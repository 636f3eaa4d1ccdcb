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


def pin_for_pictures(runs: Path) -> None:
    """Snapshots must not change from session to session: fixed times and a short model name in
    each status.json (what the list shows); the trained folders themselves stay as written."""
    for i, name in enumerate(sorted(RUNS)):
        path = runs / name / "status.json"
        status = json.loads(path.read_text())
        start = 1_767_225_600.0 + 3600 * i  # 2026-01-01, an hour apart
        status.update(started=start, finished=start + 95 + 10 * i, updated=start + 95 + 10 * i, model="tiny-llama", pid=None)
        path.write_text(json.dumps(status))
