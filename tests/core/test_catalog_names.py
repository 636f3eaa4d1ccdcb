"""The model name a recipe gets from what a user typed in the planner."""

from __future__ import annotations

from tuitune.core.models.catalog import recipe_model_name


def test_aliases_become_hub_ids_and_the_rest_stays(tmp_path, monkeypatch):
    assert recipe_model_name("llama-3-8b") == "meta-llama/Meta-Llama-3-8B"
    assert recipe_model_name(" Qwen2.5-7B ") == "Qwen/Qwen2.5-7B"
    assert recipe_model_name("meta-llama/Meta-Llama-3-8B-Instruct") == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert recipe_model_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert recipe_model_name("some-model-nobody-knows") == "some-model-nobody-knows"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llama-3-8b").mkdir()  # a local folder of that name wins over the alias
    assert recipe_model_name("llama-3-8b") == "llama-3-8b"
