"""prepare_training_data: the recipe's data section honoured end to end."""

from __future__ import annotations

import json

import pytest
from tiny_model import build_tokenizer

from tuitune.core.data import IGNORE_INDEX, Encoded, Packed, prepare_training_data, split_indices
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def recipe_for(tmp_path, rows, **data):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = Recipe()
    recipe.data.path = str(path)
    recipe.data.cutoff_len = data.pop("cutoff_len", 256)
    for key, value in data.items():
        setattr(recipe.data, key, value)
    return recipe


ROWS = [{"instruction": f"Question number {i}?", "output": f"Answer {i}."} for i in range(40)]


def test_split_is_seeded_and_deterministic(tmp_path, tok):
    recipe = recipe_for(tmp_path, ROWS, val_size=0.1)
    a = prepare_training_data(recipe, tok)
    b = prepare_training_data(recipe, tok)
    assert len(a.train) == 36 and len(a.eval) == 4
    assert [e.line for e in a.eval] == [e.line for e in b.eval]
    recipe.train.seed = 7
    c = prepare_training_data(recipe, tok)
    assert [e.line for e in c.eval] != [e.line for e in a.eval]
    assert sorted(e.line for e in c.train + c.eval) == list(range(1, 41))
    assert split_indices(40, 0.1, 42) == split_indices(40, 0.1, 42)


def test_result_carries_stats_format_and_counts(tmp_path, tok):
    prepared = prepare_training_data(recipe_for(tmp_path, ROWS), tok)
    assert prepared.format == "alpaca" and prepared.rows == 40 and prepared.examples == 40
    assert all(isinstance(e, Encoded) for e in prepared.train) and prepared.eval == []
    lengths = sorted(len(e.input_ids) for e in prepared.train)
    assert prepared.stats.rows == 40 and prepared.stats.min == lengths[0] and prepared.stats.max == lengths[-1]
    assert prepared.trained_tokens == sum(sum(1 for t in e.labels if t != IGNORE_INDEX) for e in prepared.train)
    assert prepared.template == "tokenizer"


def test_packing_applies_to_the_train_split_only(tmp_path, tok):
    prepared = prepare_training_data(recipe_for(tmp_path, ROWS, packing=True, cutoff_len=64, val_size=0.1), tok)
    assert all(isinstance(r, Packed) for r in prepared.train)
    assert all(isinstance(e, Encoded) for e in prepared.eval)
    assert sum(len(r.lengths) for r in prepared.train) == 36
    assert all(len(r.input_ids) <= 64 for r in prepared.train)
    assert len(prepared.train) < 36


def test_max_samples_and_train_on_prompt(tmp_path, tok):
    prepared = prepare_training_data(recipe_for(tmp_path, ROWS, max_samples=5, train_on_prompt=True), tok)
    assert len(prepared.train) == 5
    assert all(e.labels == e.input_ids for e in prepared.train)


def test_rows_with_nothing_left_to_train_are_dropped_with_a_problem(tmp_path, tok):
    rows = [{"instruction": "word " * 60, "output": "late answer"}, {"instruction": "short?", "output": "yes"}]
    prepared = prepare_training_data(recipe_for(tmp_path, rows, cutoff_len=24), tok)
    assert [e.line for e in prepared.train] == [2]
    assert prepared.dropped == 1
    assert [(p.line, p.message) for p in prepared.problems] == [
        (1, f"nothing left to train after truncating to cutoff_len = 24 ({prepared.stats.max} tokens); row dropped")
    ]
    assert prepared.stats.over_cutoff == 1


def test_columns_format_template_and_system_from_the_recipe(tmp_path, tok):
    rows = [{"q": "Who are you?", "a": "Tally."}]
    recipe = recipe_for(
        tmp_path, rows, columns={"prompt": "q", "completion": "a"}, format="prompt-completion", template="alpaca", system="Answer."
    )
    prepared = prepare_training_data(recipe, tok)
    text = tok.decode(prepared.train[0].input_ids)
    assert text.startswith("Answer.\n\n### Instruction:\nWho are you?\n\n### Response:\nTally.")
    assert prepared.template == "alpaca"


def test_unusable_data_is_one_user_error(tmp_path, tok):
    with pytest.raises(UserError, match="no usable rows"):
        prepare_training_data(recipe_for(tmp_path, [{"instruction": "x"}]), tok)
    recipe = Recipe()
    recipe.data.path = str(tmp_path / "missing.jsonl")
    with pytest.raises(UserError, match="missing.jsonl: no such file or folder"):
        prepare_training_data(recipe, tok)
    with pytest.raises(UserError, match="leaves no rows to train on"):
        split_indices(1, 0.5, 1)
