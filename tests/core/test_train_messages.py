"""`tuitune train` on bad input: one clear message, never a traceback; broken rows are skipped."""

from __future__ import annotations

import json

from engine_support import FACTS, status, tuitune, write_jsonl, write_recipe


def test_wrong_key_names_it(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", FACTS)
    recipe = write_recipe(tmp_path / "r.toml", tiny_model_dir, data, tmp_path / "runs", "k", "lora", train={"batch_sise": 2})
    res = tuitune("train", str(recipe))
    assert res.returncode == 2
    assert "train.batch_sise" in res.stderr and "batch_size" in res.stderr and "Traceback" not in res.stderr


def test_missing_model_then_the_fixed_recipe_reuses_the_name(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", FACTS)
    runs = tmp_path / "runs"
    bad = write_recipe(tmp_path / "r.toml", tmp_path / "no-such-model", data, runs, "m", "lora")
    res = tuitune("train", str(bad))
    assert res.returncode == 2
    out = res.stdout + res.stderr
    assert "no-such-model" in out and "Traceback" not in out
    assert status(runs / "m")["status"] == "failed"
    good = write_recipe(tmp_path / "r.toml", tiny_model_dir, data, runs, "m", "lora", train={"max_steps": 2})
    res = tuitune("train", str(good))
    assert res.returncode == 0, res.stdout + res.stderr
    assert status(runs / "m")["status"] == "done"


def test_broken_lines_are_skipped_with_their_numbers(tiny_model_dir, tmp_path):
    data = tmp_path / "d.jsonl"
    good = [json.dumps({"instruction": q, "output": a}) for q, a in FACTS]
    data.write_text("\n".join([good[0], '{"instruction": "broken', good[1], "not json", good[2], good[3]]) + "\n")
    recipe = write_recipe(tmp_path / "r.toml", tiny_model_dir, data, tmp_path / "runs", "b", "lora", train={"max_steps": 2})
    res = tuitune("train", str(recipe))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "line 2" in out and "line 4" in out and "Traceback" not in out
    assert "4 train rows" in out
