"""One line where a traceback used to be, and the shared-server hazards of issue 17.

Damaged models and adapters (cut-off weights, an unknown model_type, a broken config.json) for chat,
eval and export; one unreadable run among good ones; wrong-typed fields in status.json and
events.jsonl; a copied run folder that turns on trust_remote_code; `tuitune stop` with a status.json
naming someone else's process; and the smaller ones (a name starting with "-", cutoff_len past the
model's positions, the hint for an unfinished run)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from engine_support import FACTS, REPO, tuitune, write_jsonl, write_recipe
from run_dirs import RunCache

from tuitune import cli
from tuitune.core.runs import RunDirectory, list_runs, mark_run_folder
from tuitune.core.runs import remote_code as remote_code_module


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    return RunCache(tmp_path_factory.mktemp("runs"), tiny_model_dir)


@pytest.fixture(autouse=True)
def _forget_remote_code_permission():
    """--trust-remote-code allows remote code for the rest of a CLI process; tests share one process."""
    yield
    remote_code_module._allowed.clear()


def _refused(capsys, *args: str) -> str:
    """Run the CLI in this process; it must exit 2 with its reason on stderr (an exception fails the test)."""
    try:
        code = cli.main(list(args))
    except SystemExit as e:  # argparse-level refusals (a bad --set) exit this way
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def _cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# ---------------------------------------------------------------- models that cannot be loaded


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("weights", "model.safetensors: cut off"),
        ("config", "config.json: not valid JSON"),
        ("model_type", "its config.json has model_type 'no-such-model'"),
    ],
)
def test_chat_on_a_damaged_model_folder_is_one_line_naming_the_file(tiny_model_copy, capsys, damage, words):
    config = tiny_model_copy / "config.json"
    if damage == "weights":
        _cut(tiny_model_copy / "model.safetensors")
    elif damage == "config":
        _cut(config)
    else:
        config.write_text(json.dumps({**json.loads(config.read_text()), "model_type": "no-such-model"}))
    err = _refused(capsys, "chat", str(tiny_model_copy), "--prompt", "hi")
    assert str(tiny_model_copy) in err and words in err, err


@pytest.mark.parametrize("command", ["chat", "eval", "export"])
def test_a_run_whose_adapter_is_cut_off_is_one_line_for_chat_eval_and_export(runs, tmp_path, capsys, command):
    run = Path(shutil.copytree(runs.get("lora"), tmp_path / "runs" / "cut"))
    _cut(run / "adapter" / "adapter_model.safetensors")
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    args = {
        "chat": ["chat", str(run), "--prompt", "hi"],
        "eval": ["eval", str(run), "--data", str(data)],
        "export": ["export", str(run), "--merge", str(tmp_path / "merged")],
    }[command]
    err = _refused(capsys, *args)
    assert "adapter_model.safetensors: cut off" in err and str(run / "adapter") in err, err
    assert not (tmp_path / "merged").exists()


def test_a_fresh_process_prints_the_load_error_without_a_traceback(tiny_model_copy, tmp_path):
    (tiny_model_copy / "config.json").write_text('{"model_type": "llama", "hidden_size": ')
    res = tuitune("chat", str(tiny_model_copy), "--prompt", "hi", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "config.json" in res.stderr and len(res.stderr.strip().splitlines()) <= 3, res.stderr


# ---------------------------------------------------------------- runs that cannot be read


def _status_run(runs_dir: Path, name: str, status: dict | None = None) -> RunDirectory:
    run = RunDirectory(runs_dir / name)
    run.path.mkdir(parents=True)
    mark_run_folder(run)
    (run.path / "recipe.toml").write_text(f'name = "{name}"\n[model]\nname_or_path = "some/model"\n[method]\ntype = "lora"\n')
    if status is not None:
        run.status_path.write_text(json.dumps(status))
    return run


def test_one_unreadable_run_is_listed_as_such_and_the_others_still_show(tmp_path, capsys):
    runs_dir = tmp_path / "runs"
    _status_run(runs_dir, "good", {"status": "done", "step": 5, "max_steps": 5, "started": 1.0, "finished": 2.0})
    bad = _status_run(runs_dir, "bad")
    bad.status_path.mkdir()  # a folder where status.json should be: reading it fails with an OSError

    by_name = {r.name: r for r in list_runs(runs_dir)}
    assert by_name["good"].status == "done"
    assert by_name["bad"].status == "unreadable" and "status.json" in (by_name["bad"].error or "")
    assert cli.main(["runs", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "done" in out
    assert "bad: cannot be read (status.json:" in out


WRONG_STATUS = {"status": 7, "step": "three", "max_steps": [10], "started": "yesterday", "finished": {},
                "best_eval_loss": "low", "loss": True, "pid": "1", "method": None, "model": 3}
WRONG_EVENTS = [
    {"time": "now", "type": "start", "max_steps": "ten", "resumed_from": [], "model": 1},
    {"time": 1.0, "type": "step", "step": "1", "loss": "high", "lr": None, "memory": "lots"},
    {"time": 2.0, "type": "eval", "step": 2.5, "eval_loss": {}},
    {"time": 3.0, "type": "warning", "message": 42},
    {"time": 4.0, "type": "status", "status": ["done"], "message": None},
    {"time": 5.0, "type": "done", "steps": "all", "train_loss": "0.1", "runtime_s": -1},
    ["not", "an", "object"],
    {"type": 5},
]


def test_wrong_typed_status_and_events_are_read_as_absent(tmp_path, capsys):
    from tuitune.core.events import parse_events
    from tuitune.core.runs.history import RunHistory

    run = _status_run(tmp_path / "runs", "odd", WRONG_STATUS)
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in WRONG_EVENTS))

    summary = run.summary()
    assert (summary.status, summary.step, summary.max_steps, summary.pid) == ("prepared", 0, 0, None)
    assert summary.method == "lora" and summary.model == "some/model"  # from the recipe instead
    for event in parse_events(run.events()):  # what the Train screen does when it reattaches
        event.describe()
    history = RunHistory()
    history.add(run.events())
    assert history.mean_train_loss() is None

    runs_dir = str(run.path.parent)
    assert cli.main(["runs", "--runs-dir", runs_dir]) == 0
    assert "odd" in capsys.readouterr().out
    assert cli.main(["runs", "--runs-dir", runs_dir, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["name"] == "odd" and listed[0]["step"] == 0
    assert cli.main(["runs", "watch", "odd", "--runs-dir", runs_dir]) == 1  # no final status: not a success
    assert "Traceback" not in capsys.readouterr().err


# ---------------------------------------------------------------- someone else's run folder


def test_a_copied_run_with_trust_remote_code_asks_for_the_flag(runs, tmp_path, capsys):
    source = runs.get("lora", name="remote", model__trust_remote_code=True)
    run = Path(shutil.copytree(source, tmp_path / "runs" / "remote"))
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS)
    for args in (["chat", str(run), "--prompt", "hi"], ["eval", str(run), "--data", str(data)],
                 ["export", str(run), "--merge", str(tmp_path / "merged")]):
        err = _refused(capsys, *args)
        assert "has model.trust_remote_code = true in its recipe" in err and "--trust-remote-code" in err, err
    assert not (tmp_path / "merged").exists()

    # --resume too (a crashed copy): refused before anything is locked or started.
    RunDirectory(run).status_path.write_text(json.dumps({"status": "training", "step": 1}))
    err = _refused(capsys, "train", "--resume", str(run))
    assert "has model.trust_remote_code = true" in err and not (run / "train.log").exists()

    # With the flag the same chat runs (the tiny model has no code of its own: it just loads).
    assert cli.main(["chat", str(run), "--prompt", "hi", "--max-new-tokens", "3", "--trust-remote-code"]) == 0


def test_stop_signals_the_lock_holder_never_the_pid_status_json_names(tmp_path):
    run = _status_run(tmp_path / "runs", "shared")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    holder = None
    try:
        run.status_path.write_text(json.dumps({"status": "training", "pid": bystander.pid}))
        # Nobody holds the lock: nothing is signalled, whatever status.json says.
        res = tuitune("stop", "shared", "--runs-dir", str(run.path.parent), cwd=tmp_path)
        assert res.returncode == 2 and "is not training" in res.stderr, res.stderr
        assert bystander.poll() is None

        # A process holds the lock (as a trainer does) while status.json still names the bystander.
        code = ("import sys, time; from tuitune.core.runs import RunDirectory; "
                "lock = RunDirectory(sys.argv[1]).acquire_lock(); lock.set_holder(__import__('os').getpid()); "
                "print('locked', flush=True); time.sleep(120)")
        holder = subprocess.Popen([sys.executable, "-c", code, str(run.path)], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
        assert holder.stdout.readline().strip() == "locked"
        res = tuitune("stop", "shared", "--runs-dir", str(run.path.parent), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert holder.wait(timeout=30) == -signal.SIGTERM
        time.sleep(0.2)
        assert bystander.poll() is None  # the pid in status.json was left alone
    finally:
        for p in (bystander, holder):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


# ---------------------------------------------------------------- smaller ones


def test_a_run_name_starting_with_a_dash_is_refused(tiny_model_dir, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.toml", tiny_model_dir, write_jsonl(tmp_path / "d.jsonl", FACTS), tmp_path / "runs")
    err = _refused(capsys, "train", str(recipe), "--set", "name=-rf", "--detach")
    assert 'name: "-rf" is not allowed' in err and "not starting with -" in err, err
    assert not (tmp_path / "runs").exists()


def test_cutoff_len_past_the_models_positions_is_warned(tiny_model_dir):
    from transformers import AutoConfig

    from tuitune.core.engine.arguments import position_limit_warning
    from tuitune.core.recipe import new_recipe

    model = SimpleNamespace(config=AutoConfig.from_pretrained(tiny_model_dir))
    limit = model.config.max_position_embeddings
    recipe = new_recipe("lora", str(tiny_model_dir))
    recipe.data.cutoff_len = limit
    assert position_limit_warning(recipe, model) is None
    recipe.data.cutoff_len = limit + 1
    warning = position_limit_warning(recipe, model) or ""
    assert f"data.cutoff_len = {limit + 1}" in warning and f"max_position_embeddings = {limit}" in warning


def test_the_hint_for_an_unfinished_run_is_a_command_that_is_accepted(tiny_model_dir, tmp_path, capsys):
    from tuitune.core.engine.prepare import check_prepared, check_resumable, prepare_run
    from tuitune.core.recipe import load_recipe

    data = write_jsonl(tmp_path / "d.jsonl", FACTS)
    recipe, _ = load_recipe(write_recipe(tmp_path / "p.toml", tiny_model_dir, data, tmp_path / "runs", "prep"))
    prepared = prepare_run(recipe)
    err = _refused(capsys, "chat", str(prepared.path), "--prompt", "hi")
    assert f"tuitune train --run-dir {prepared.reference()}" in err, err
    check_prepared(prepared)  # what that command checks first: it would train

    recipe, _ = load_recipe(write_recipe(tmp_path / "c.toml", tiny_model_dir, data, tmp_path / "runs", "gone"))
    crashed = prepare_run(recipe)
    crashed.update_status(status="training", step=3, pid=None)  # its trainer died: nobody holds the lock
    with crashed.event_writer() as events_file:
        events_file.write("status", status="training", message="")
    err = _refused(capsys, "chat", str(crashed.path), "--prompt", "hi")
    assert f"tuitune train --resume {crashed.reference()}" in err, err
    check_resumable(crashed)
