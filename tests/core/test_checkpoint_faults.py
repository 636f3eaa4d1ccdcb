"""A damaged checkpoint is named and skipped: --resume continues from the newest intact one.

The trainer is SIGKILLed mid-run (real process) after a few checkpoints; then the newest checkpoint is
damaged the way a kill or a full disk leaves it, and `tuitune train --resume` must still finish."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from engine_support import (
    FACTS,
    events,
    status,
    tuitune,
    wait_for,
    write_jsonl,
    write_recipe,
)

from tuitune.core.engine.launch import start_training
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.recipe import load_recipe
from tuitune.core.runs import RunDirectory
from tuitune.core.runs.checkpoints import checkpoint_problem


def _recipe(root: Path, model_dir: Path, name: str, **train) -> Path:
    data = write_jsonl(root / "facts.jsonl", FACTS, repeat=2)
    settings = {"max_steps": 1000, "save_steps": 2, "logging_steps": 1, **train}
    return write_recipe(root / f"{name}.toml", model_dir, data, root / "runs", name, "lora",
                        train=settings, lora={"r": 4, "target_modules": "all-linear"})


@pytest.fixture(scope="module")
def killed_run(model_dir, tmp_path_factory) -> Path:
    """A run SIGKILLed after its third complete checkpoint (steps 2, 4, 6...)."""
    root = tmp_path_factory.mktemp("killed")
    recipe, _ = load_recipe(_recipe(root, model_dir, "k"))
    started = start_training(recipe)
    run = started.run
    wait_for(lambda: len(run.checkpoints()) >= 3, timeout=240, every=0.05)
    os.kill(started.pid, signal.SIGKILL)
    started.process.wait()
    return run.path


def _damage(folder: Path, kind: str) -> str:
    """Damage one file of a checkpoint; returns the words the warning must use."""
    def cut(name: str) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    if kind == "adapter":
        cut("adapter_model.safetensors")
        return "adapter_model.safetensors: cut off"
    if kind == "optimizer":
        cut("optimizer.pt")
        return "optimizer.pt: cut off"
    if kind == "trainer_state":
        cut("trainer_state.json")
        return "trainer_state.json: not valid JSON"
    (folder / "rng_state.pth").write_bytes(b"")
    return "rng_state.pth: empty"


@pytest.mark.parametrize("kind", ["adapter", "optimizer", "trainer_state", "rng"])
def test_resume_skips_a_damaged_checkpoint_naming_the_file(killed_run, tmp_path, kind):
    path = shutil.copytree(killed_run, tmp_path / "runs" / "k")
    run = RunDirectory(path)
    complete = run.checkpoints()
    newest, previous = complete[-1], complete[-2]
    assert checkpoint_problem(newest) is None
    words = _damage(newest, kind)
    assert words in (checkpoint_problem(newest) or "")
    newest_step = int(newest.name.rsplit("-", 1)[1])
    previous_step = int(previous.name.rsplit("-", 1)[1])
    run.recipe_path.write_text(run.recipe_path.read_text().replace("max_steps = 1000", f"max_steps = {newest_step + 2}"))

    res = tuitune("train", "--resume", str(path), cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert events(path, "start")[-1]["resumed_from"] == previous_step
    warnings = [e["message"] for e in events(path, "warning")]
    assert any(f"{newest.name} is damaged: {words}" in w and f"resuming from {previous.name}" in w for w in warnings), warnings
    assert f"{newest.name} is damaged" in res.stdout  # said while following, too
    assert (path / "damaged-checkpoints" / newest.name).is_dir()  # kept for a look, out of the way
    assert status(path)["status"] == "done" and status(path)["step"] == newest_step + 2


def test_a_checkpoint_cut_off_while_its_state_is_written_is_not_used(model_dir, tmp_path, monkeypatch):
    """A kill while trainer_state.json is written (faked: the write stops half way and raises). The
    state goes to a temp file renamed at the end, so the checkpoint never looks finished."""
    from transformers.trainer_callback import TrainerState

    real = TrainerState.save_to_json

    def cut_off_at_step_4(self, json_path):
        if self.global_step == 4:
            text = json.dumps(self.__dict__, default=str)
            Path(json_path).write_text(text[: len(text) // 2])
            raise KeyboardInterrupt  # what a kill does to the rest of the save
        return real(self, json_path)

    monkeypatch.setattr(TrainerState, "save_to_json", cut_off_at_step_4)
    recipe, _ = load_recipe(_recipe(tmp_path, model_dir, "cut", max_steps=6))
    run = prepare_run(recipe)
    assert train_run(run.path) != 0
    assert not (run.checkpoints_dir / "checkpoint-4" / "trainer_state.json").exists()
    assert [p.name for p in run.checkpoints()] == ["checkpoint-2"]

    monkeypatch.undo()
    assert train_run(run.path, resume=True) == 0
    assert events(run.path, "start")[-1]["resumed_from"] == 2
    assert any("checkpoint-4 is damaged: trainer_state.json: missing" in e["message"] for e in events(run.path, "warning"))
    assert status(run.path)["status"] == "done"


def test_resuming_a_run_that_had_reached_max_steps_reports_its_real_train_loss(killed_run, tmp_path):
    """Resumed at its last step, transformers' Trainer would train one step past max_steps and say
    train_loss 0.0; the run saves the checkpoint's result and reports the mean of its logged losses."""
    path = shutil.copytree(killed_run, tmp_path / "runs" / "k")
    run = RunDirectory(path)
    last = int(run.checkpoints()[-1].name.rsplit("-", 1)[1])
    run.recipe_path.write_text(run.recipe_path.read_text().replace("max_steps = 1000", f"max_steps = {last}"))
    logged = [e["loss"] for e in events(path, "step") if e.get("loss") is not None]
    assert logged and all(loss > 0 for loss in logged)

    assert train_run(path, resume=True) == 0
    done = events(path, "done")[-1]
    assert done["steps"] == last and done["train_loss"] is not None and done["train_loss"] > 0
    assert run.checkpoints()[-1].name == f"checkpoint-{last}"  # not one step past max_steps
    assert (path / "adapter" / "adapter_model.safetensors").is_file()
    assert min(logged) <= done["train_loss"] <= max(logged)
    assert status(path)["train_loss"] == done["train_loss"]
