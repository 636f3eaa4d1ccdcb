"""Deleting a run: never while a trainer holds it, never a folder that is not a run."""

from __future__ import annotations

import pytest

from tuitune.core.errors import UserError
from tuitune.core.runs import RunDirectory, delete_run


def _run(tmp_path, name="r") -> RunDirectory:
    run = RunDirectory(tmp_path / name)
    run.create()
    run.recipe_path.write_text('name = "r"\n')
    (run.checkpoints_dir / "checkpoint-2").mkdir(parents=True)
    return run


def test_a_finished_run_is_deleted_with_everything_in_it(tmp_path):
    run = _run(tmp_path)
    delete_run(run)
    assert not run.path.exists()


def test_a_run_a_trainer_holds_is_refused_naming_the_holder(tmp_path):
    run = _run(tmp_path)
    with run.acquire_lock(pid=4242):
        with pytest.raises(UserError) as e:
            delete_run(run)
    assert "in use by a trainer (pid 4242)" in e.value.message and f"tuitune stop {run.path}" in e.value.hint
    assert (run.checkpoints_dir / "checkpoint-2").is_dir()


def test_a_folder_that_is_not_a_run_is_left_alone(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"...")
    with pytest.raises(UserError, match="not a tuitune run"):
        delete_run(RunDirectory(tmp_path / "photos"))
    assert (tmp_path / "photos" / "cat.jpg").exists()
