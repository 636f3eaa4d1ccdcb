"""Training end to end on the data people bring: a LLaMA-Factory folder's tool-calling entry (the tiny
model's template has no tools: the fallback, said once in the run's log), a tool-calling set through a
template that renders tools natively, and long plain text in chunks. Real runs of the tiny model."""

from __future__ import annotations

import json
import shutil

from engine_support import events, status, tuitune, write_recipe
from llamafactory_folder import write_llamafactory_folder

from tuitune.core.data import prepare_training_data
from tuitune.core.data.tool_rendering import FALLBACK_NOTE, NATIVE_NOTE
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.models import load_tokenizer
from tuitune.core.recipe import load_recipe


def run_recipe(path):
    recipe, problems = load_recipe(path)
    assert not problems, problems
    run = prepare_run(recipe)
    return train_run(run.path), run, recipe


def logged(run_dir) -> list[str]:
    return [e["message"] for e in events(run_dir, "log")]


def test_a_llamafactory_tool_calling_entry_trains(model_dir, tmp_path):
    folder = write_llamafactory_folder(tmp_path / "data")
    recipe_file = write_recipe(
        tmp_path / "lf.toml", model_dir, folder, tmp_path / "runs", "lf-tools",
        data={"dataset": "weather_tools", "cutoff_len": 1024, "val_size": 0.1},  # the fallback tools block is long in a 512-token vocabulary
        train={"max_steps": 12, "logging_steps": 1, "eval_steps": 6},
    )
    code, run, recipe = run_recipe(recipe_file)
    assert code == 0 and status(run.path)["status"] == "done"
    assert logged(run.path).count(f"data: {FALLBACK_NOTE}") == 1
    start = events(run.path, "start")[0]
    assert start["num_train"] + start["num_eval"] == 24
    losses = [e["loss"] for e in events(run.path, "step")]
    assert len(losses) == 12 and min(losses[-3:]) < losses[0]
    assert events(run.path, "eval")  # the held-out tool rows are evaluated too
    # What was trained: the tool calls and replies, never the tool results.
    tok = load_tokenizer(model_dir)
    prepared = prepare_training_data(recipe, tok)
    row = prepared.train[0]
    trained = tok.decode([t for t, label in zip(row.input_ids, row.labels, strict=True) if label != -100])
    assert "<tool_call>" in trained and "get_weather" in trained and "sunny in" in trained
    assert "<tool_response>" not in trained and "Weather in" not in trained


def test_a_tool_calling_set_through_a_template_that_renders_tools(model_dir, tmp_path):
    from test_data_tools import OPENAI_ROW, TOOLS_CHATML

    native = tmp_path / "model"
    shutil.copytree(model_dir, native)
    config = json.loads((native / "tokenizer_config.json").read_text())
    config["chat_template"] = TOOLS_CHATML
    (native / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in native.glob("chat_template.*"):
        extra.unlink()
    rows = []
    for city in ("Paris", "Rome", "Oslo", "Lima", "Cairo", "Kyiv"):
        row = json.loads(json.dumps(OPENAI_ROW).replace("Paris", city))
        rows.append(json.dumps(row))
    data = tmp_path / "tools.jsonl"
    data.write_text("\n".join(rows) + "\n")
    recipe_file = write_recipe(tmp_path / "native.toml", native, data, tmp_path / "runs", "native-tools",
                               data={"cutoff_len": 256}, train={"max_steps": 6})
    code, run, _ = run_recipe(recipe_file)
    assert code == 0 and logged(run.path).count(f"data: {NATIVE_NOTE}") == 1


def test_the_cli_trains_a_llamafactory_alpaca_entry_and_long_text_in_chunks(model_dir, tmp_path):
    folder = write_llamafactory_folder(tmp_path / "data")
    recipe_file = write_recipe(tmp_path / "qa.toml", model_dir, folder, tmp_path / "runs", "lf-qa",
                               data={"dataset": "qa_first_5", "cutoff_len": 64}, train={"max_steps": 4})
    done = tuitune("train", str(recipe_file))
    assert done.returncode == 0, done.stderr[-2000:]
    assert events(tmp_path / "runs" / "lf-qa", "start")[0]["num_train"] == 5
    assert "data: dataset 'qa_first_5': 5 of 20 usable rows (split train[:5], num_samples all)" in logged(tmp_path / "runs" / "lf-qa")

    book = tmp_path / "book.txt"
    book.write_text(" ".join(f"The fox number {i} jumps over the lazy dog." for i in range(300)))  # one line, ~3,000 tokens
    recipe_file = write_recipe(tmp_path / "pt.toml", model_dir, book, tmp_path / "runs", "chunks",
                               data={"cutoff_len": 128, "chunk_long_text": True, "packing": True}, train={"max_steps": 3})
    code, run, _ = run_recipe(recipe_file)
    assert code == 0
    notes = logged(run.path)
    assert "data: plain text: one example per line (data.text_split = auto)" in notes
    assert any(n.startswith("data: 1 long text split into ") for n in notes)
    assert events(run.path, "start")[0]["num_train"] > 10  # the chunks, each an example
