"""Run folders are tuitune's own: a new run never takes over a folder holding other files, deleting a
run removes only what tuitune wrote and never follows a link, two starts of one name cannot swap
recipes, and a read-only or full runs folder at start is one line."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from engine_support import FACTS, tuitune, write_jsonl, write_recipe
from fault_support import failing, full_folder, read_only_folder

from tuitune.core.engine import prepare as prepare_module
from tuitune.core.engine.launch import start_training
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.errors import UserError
from tuitune.core.recipe import load_recipe
from tuitune.core.runs import RunDirectory, delete_run, list_runs


def _recipe(tmp_path: Path, model: Path, runs: Path, name: str = "r", **sections) -> Path:
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    return write_recipe(tmp_path / f"{name}.toml", model, data, runs, name, "lora", **sections)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_project_folder_is_not_taken_over_as_a_run(tiny_model_dir, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "README.md").write_text("my project\n")
    recipe = _recipe(tmp_path, tiny_model_dir, tmp_path / "runs")
    before = _tree(project)

    res = tuitune("train", str(recipe), "--run-dir", str(project), "--detach", cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "holds files tuitune did not write (README.md, src)" in res.stderr and "Traceback" not in res.stderr
    assert _tree(project) == before and sorted(os.listdir(project)) == ["README.md", "src"]  # not even a lock file


def test_train_run_dir_trains_only_a_folder_tuitune_prepared(tiny_model_dir, tmp_path):
    recipe, _ = load_recipe(_recipe(tmp_path, tiny_model_dir, tmp_path / "runs", train={"max_steps": 1}))
    prepared = prepare_run(recipe)
    assert prepared.is_marked() and prepared.is_run()
    # The same frozen recipe in a folder tuitune did not make (a project's own recipe.toml): refused.
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "recipe.toml").write_text(prepared.recipe_path.read_text())
    res = tuitune("train", "--run-dir", str(foreign), cwd=tmp_path)
    assert res.returncode == 2 and "was not prepared by tuitune" in res.stderr, res.stderr
    assert sorted(os.listdir(foreign)) == ["recipe.toml"]


def test_deleting_a_run_removes_only_what_tuitune_wrote_and_follows_no_link(tiny_model_dir, tmp_path):
    recipe, _ = load_recipe(_recipe(tmp_path, tiny_model_dir, tmp_path / "runs"))
    run = prepare_run(recipe)
    elsewhere = tmp_path / "my-models"
    elsewhere.mkdir()
    (elsewhere / "precious.safetensors").write_bytes(b"weights")
    (run.path / "notes.txt").write_text("the user's own notes\n")
    run.adapter_dir.symlink_to(elsewhere, target_is_directory=True)  # a link where tuitune writes a folder
    (run.checkpoints_dir / "checkpoint-2").mkdir(parents=True)
    (run.checkpoints_dir / "checkpoint-2" / "base").symlink_to(elsewhere / "precious.safetensors")
    run.log_path.write_text("log\n")

    kept = delete_run(run)
    assert kept == ["notes.txt"]
    assert sorted(os.listdir(run.path)) == ["notes.txt"]  # the folder stays for the file it still holds
    assert (elsewhere / "precious.safetensors").read_bytes() == b"weights"  # no link was followed
    assert not run.is_run()

    (run.path / "notes.txt").unlink()
    second, _ = load_recipe(_recipe(tmp_path, tiny_model_dir, tmp_path / "runs", name="clean"))
    clean = prepare_run(second)
    assert delete_run(clean) == [] and not clean.path.exists()


def test_a_run_folder_that_is_a_link_is_not_deleted_through(tiny_model_dir, tmp_path):
    recipe, _ = load_recipe(_recipe(tmp_path, tiny_model_dir, tmp_path / "elsewhere"))
    real = prepare_run(recipe)
    link = tmp_path / "runs" / "r"
    link.parent.mkdir()
    link.symlink_to(real.path, target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        delete_run(RunDirectory(link))
    assert real.recipe_path.is_file() and link.is_symlink()


def test_two_starts_of_one_name_at_once_cannot_swap_recipes(tiny_model_dir, tmp_path, monkeypatch):
    """Both start at the same moment with different recipes for the same run name. The writes are slowed
    down so the starts overlap for sure: the run trains the recipe of the start that says it trains."""
    real_save = prepare_module.save_recipe

    def slow_save(recipe, path):
        out = real_save(recipe, path)
        time.sleep(0.5)  # the window in which the other start could write over it
        return out

    monkeypatch.setattr(prepare_module, "save_recipe", slow_save)
    runs = tmp_path / "runs"
    recipes = {seed: load_recipe(_recipe(tmp_path, tiny_model_dir, runs, train={"seed": seed}))[0] for seed in (11, 22)}
    barrier = threading.Barrier(2)
    outcome: dict[int, object] = {}

    def start(seed: int) -> None:
        barrier.wait()
        try:
            outcome[seed] = start_training(recipes[seed])
        except UserError as e:
            outcome[seed] = e

    threads = [threading.Thread(target=start, args=(seed,)) for seed in recipes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = {seed: o for seed, o in outcome.items() if not isinstance(o, UserError)}
    refused = {seed: o for seed, o in outcome.items() if isinstance(o, UserError)}
    try:
        assert len(started) == 1 and len(refused) == 1, outcome
        (seed, winner), = started.items()
        (_, error), = refused.items()
        assert "in use" in error.message or "already exists" in error.message
        frozen, problems = load_recipe(runs / "r" / "recipe.toml")
        assert not problems and frozen.train.seed == seed  # the winner trains its own recipe
    finally:
        for o in started.values():
            o.process.kill()
            o.process.wait()


def _assert_one_line(res, *expected: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    # The launch plan's line ("training on the CPU with 1 process ...") comes first; then the error alone.
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip() and not ln.startswith("training on ")]
    assert lines[0].startswith("error: cannot write") and len(lines) <= 2, res.stderr
    for text in expected:
        assert text in res.stderr, res.stderr


def test_a_read_only_runs_folder_at_start_is_one_line(tiny_model_dir, tmp_path):
    with read_only_folder(tmp_path / "ro") as runs:
        recipe = _recipe(tmp_path, tiny_model_dir, runs)
        res = tuitune("train", str(recipe), "--detach", cwd=tmp_path)
        _assert_one_line(res, str(runs / "r"))
        assert any(word in res.stderr for word in ("Read-only file system", "Operation not permitted"))
        assert list(runs.iterdir()) == []


def test_a_full_runs_folder_at_start_is_one_line(tiny_model_dir, tmp_path):
    with full_folder(tmp_path / "full") as runs:
        recipe = _recipe(tmp_path, tiny_model_dir, runs)
        res = tuitune("train", str(recipe), "--detach", cwd=tmp_path)
        _assert_one_line(res, "No space left on device", "free some space")


def test_a_full_disk_faked_at_the_os_call_is_one_user_error(tiny_model_dir, tmp_path, monkeypatch):
    """Where mounting is not allowed: os.replace of the recipe's temp file fails with ENOSPC."""
    monkeypatch.setattr(os, "replace", failing(os.replace, errno.ENOSPC, lambda src, dst: str(dst).endswith("recipe.toml")))
    recipe, _ = load_recipe(_recipe(tmp_path, tiny_model_dir, tmp_path / "runs"))
    with pytest.raises(UserError) as e:
        start_training(recipe)
    assert "No space left on device" in e.value.message and str(tmp_path / "runs" / "r") in e.value.message
    assert "free some space" in e.value.hint
    run = RunDirectory(tmp_path / "runs" / "r")
    assert not run.is_locked() and not list(run.path.glob("*.tmp")) and not run.is_run()
    assert list_runs(tmp_path / "runs") == []
    monkeypatch.undo()  # space again: the same name starts
    started = start_training(recipe)
    try:
        assert started.run.recipe_path.is_file() and started.run.is_locked()
    finally:
        started.process.kill()
        started.process.wait()
