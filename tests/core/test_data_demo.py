"""The bundled identity datasets: clean, alpaca, short answers, and ready for the quickstart recipe."""

from __future__ import annotations

import re

import pytest

from tuitune.core.data import load_examples, prepare_training_data
from tuitune.core.recipe import load_recipe

DATA = {"identity.jsonl": ("Tally", "tuitune project"), "identity_zh.jsonl": ("Tally", "tuitune 项目")}


@pytest.mark.parametrize("name", sorted(DATA))
def test_identity_dataset_is_clean_alpaca(repo_root, name):
    data = load_examples(repo_root / "recipes" / "data" / name)
    assert data.format == "alpaca" and data.problems == []
    assert 60 <= len(data.examples) <= 100
    name_word, maker = DATA[name]
    replies = [ex.messages[-1]["content"] for ex in data.examples]
    about_self = [r for r in replies if name_word in r or maker in r]
    assert len(about_self) >= 0.8 * len(replies)
    # Another assistant's name only ever comes up to be corrected with the right identity.
    others = [r for r in replies if re.search(r"OpenAI|ChatGPT|SmolLM|Hugging Face|Google|Claude", r)]
    assert others and all(name_word in r and maker in r for r in others)
    assert sum(1 for ex in data.examples if "\n\n" in ex.messages[0]["content"]) >= 5  # rows with an input
    assert max(len(re.findall(r"[.!?。！？](\s|$)", r)) for r in replies) <= 3


def test_quickstart_recipe_prepares_with_the_demo_tokenizer(repo_root):
    from tuitune.core.models import load_tokenizer, resolve_model

    recipe, problems = load_recipe(repo_root / "recipes" / "quickstart.toml")
    assert problems == []
    tok = load_tokenizer(resolve_model(recipe.model.name_or_path))
    prepared = prepare_training_data(recipe, tok)
    assert prepared.problems == [] and prepared.stats.over_cutoff == 0
    assert prepared.examples == len(load_examples(recipe.data_path).examples)
    assert prepared.packed and all(len(r.input_ids) <= recipe.data.cutoff_len for r in prepared.train)
