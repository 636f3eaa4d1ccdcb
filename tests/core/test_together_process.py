"""A group as a real process: `train --together --detach`, one lock per run held by one trainer,
`stop` on one run stops the group, `--resume` on any run resumes the group, Ctrl-C in the foreground
stops it, the CLI's refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from engine_support import (
    FACTS,
    REPO,
    events,
    status,
    tuitune,
    wait_for,
    write_jsonl,
    write_recipe,
)

from tuitune.core.runs import RunDirectory


def step_of(run: RunDirectory) -> int:
    steps = events(run.path, "step")
    return steps[-1]["step"] if steps else 0


def test_detach_stop_one_run_stops_the_group_and_resume_continues_it(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    train = {"max_steps": 5000, "save_steps": 0, "logging_steps": 1}
    paths = [write_recipe(tmp_path / f"{n}.toml", model_dir, data, tmp_path / "runs", n, lora={"r": r}, train=train)
             for n, r in (("a", 4), ("b", 8))]
    res = tuitune("train", *map(str, paths), cwd=tmp_path)
    assert res.returncode == 2 and "--together" in res.stderr

    res = tuitune("train", *map(str, paths), "--together", "--detach", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "a, b" in res.stdout and "stops the whole group" in res.stdout
    a, b = (RunDirectory(tmp_path / "runs" / n) for n in "ab")
    pid = status(a.path)["pid"]
    assert status(b.path)["pid"] == pid and a.is_locked() and b.is_locked()
    assert status(a.path)["group"]["name"] == "a+b" and status(b.path)["group"]["schedule"] == "fused"
    again = tuitune("train", str(paths[1]), cwd=tmp_path)
    assert again.returncode == 2 and "in use" in again.stderr

    wait_for(lambda: step_of(a) >= 2 and step_of(b) >= 2)
    listed = json.loads(tuitune("runs", "--json", "--runs-dir", str(tmp_path / "runs")).stdout)
    assert {x["name"]: x["group"] for x in listed} == {"a": "a+b", "b": "a+b"}
    res = tuitune("stop", "a", "--runs-dir", str(tmp_path / "runs"), "--wait", cwd=tmp_path)
    assert res.returncode == 0 and "group a+b" in res.stdout
    for run in (a, b):
        st = status(run.path)
        assert st["status"] == "stopped" and not run.is_locked()
        assert run.last_checkpoint().name == f"checkpoint-{st['step']}"
        # Finish soon after the resume.
        run.recipe_path.write_text(run.recipe_path.read_text().replace("max_steps = 5000", f"max_steps = {st['step'] + 2}"))
    stopped = {r.name: status(r.path)["step"] for r in (a, b)}

    res = tuitune("train", "--resume", "b", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "resuming group a+b: a, b" in res.stdout and res.stdout.count("done:") == 2
    for run in (a, b):
        assert status(run.path)["status"] == "done" and run.has_result()
        assert [s["resumed_from"] for s in events(run.path, "start")] == [None, stopped[run.name]]
    res = tuitune("train", "--resume", "a", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 2 and "already finished" in res.stderr
    # The finished runs work with every command that reads a run: here, exporting an adapter.
    res = tuitune("export", "a", "--adapter", str(tmp_path / "out"), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "adapter_config.json").is_file()


@pytest.mark.parametrize("together", [False, True], ids=["alone", "together"])
def test_ctrl_c_while_following_stops_every_run_with_a_checkpoint(together, model_dir, tmp_path):
    """`tuitune train` in the foreground: the first Ctrl-C asks the trainer to stop (the run, or the
    whole group) and says so; each run stops with a checkpoint and the command ends."""
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    train = {"max_steps": 5000, "save_steps": 0, "logging_steps": 1}
    names = ["a", "b"] if together else ["a"]
    paths = [write_recipe(tmp_path / f"{n}.toml", model_dir, data, tmp_path / "runs", n, train=train) for n in names]
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        cli = subprocess.Popen([sys.executable, "-m", "tuitune", "train", *map(str, paths)] + ["--together"] * together,
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=sink,
                               stderr=subprocess.STDOUT)
        runs = [RunDirectory(tmp_path / "runs" / n) for n in names]
        try:
            wait_for(lambda: all(step_of(r) >= 1 for r in runs), timeout=600)  # a loaded machine is slow
            cli.send_signal(signal.SIGINT)
            cli.wait(timeout=600)
        finally:
            if cli.poll() is None:
                cli.kill()
    said = out.read_text()
    assert ("stopping the group" if together else "saving a checkpoint") in said and "Ctrl-C again" in said, said
    for run in runs:
        st = status(run.path)
        assert st["status"] == "stopped" and not run.is_locked()
        assert run.last_checkpoint().name == f"checkpoint-{st['step']}"
