"""The trainer's bookkeeping files under faults: a status.json that cannot be written (disk full, faked
at os.replace) is a warning and is written again later; events.jsonl deleted or truncated under a live
trainer (a real process) starts again with a warning and the run's start, and the run finishes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from engine_support import FACTS, events, status, wait_for, write_jsonl, write_recipe
from fault_support import failing

from tuitune.core.engine.launch import start_training
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.recipe import load_recipe


def _recipe(root: Path, model_dir: Path, name: str, **train):
    data = write_jsonl(root / "facts.jsonl", FACTS, repeat=2)
    settings = {"max_steps": 6, "save_steps": 100, "logging_steps": 1, **train}
    path = write_recipe(root / f"{name}.toml", model_dir, data, root / "runs", name, "lora",
                        train=settings, lora={"r": 4, "target_modules": "all-linear"})
    return load_recipe(path)[0]


def test_a_status_json_that_cannot_be_written_is_a_warning_and_training_goes_on(model_dir, tmp_path, monkeypatch):
    run = prepare_run(_recipe(tmp_path, model_dir, "full", max_steps=6))
    calls = {"status": 0}

    def disk_full_for_a_while(src, dst, *rest):
        if str(dst).endswith("status.json"):
            calls["status"] += 1
            return 2 <= calls["status"] <= 6  # the first write goes through, the next five hit a full disk
        return False

    monkeypatch.setattr(os, "replace", failing(os.replace, errno.ENOSPC, disk_full_for_a_while))
    assert train_run(run.path) == 0
    assert calls["status"] > 6  # it kept trying, and later writes went through
    warnings = [e["message"] for e in events(run.path, "warning")]
    said = [w for w in warnings if "cannot write status.json" in w]
    assert len(said) == 1 and "No space left on device" in said[0], warnings  # said once, not at every step
    final = status(run.path)
    assert final["status"] == "done" and final["step"] == 6
    assert not [p.name for p in run.path.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


@pytest.mark.parametrize("how", ["deleted", "truncated"])
def test_events_jsonl_lost_under_a_live_trainer_starts_again_with_a_warning(model_dir, tmp_path, how):
    started = start_training(_recipe(tmp_path, model_dir, "ev", max_steps=60))
    run = started.run
    wait_for(lambda: len(events(run.path, "step")) >= 3, timeout=240, every=0.05)
    if how == "deleted":
        run.events_path.unlink()
    else:
        os.truncate(run.events_path, 0)
    assert started.process.wait(timeout=600) == 0

    after = events(run.path)
    assert after[0]["type"] == "warning" and f"events.jsonl was {how} while the run trained" in after[0]["message"]
    starts = [e for e in after if e["type"] == "start"]
    assert starts and starts[0]["resumed_from"] >= 3  # the new file begins where the old one was lost
    steps = [e["step"] for e in after if e["type"] == "step"]
    assert steps and steps[-1] == 60 and steps == sorted(steps)
    assert after[-1]["type"] in ("done", "status") and status(run.path)["status"] == "done"
    assert any(e["type"] == "done" for e in after)
