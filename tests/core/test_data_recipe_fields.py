"""The recipe's new data fields: data.dataset, data.text_split, data.chunk_long_text checked like every
field (type, choices, a suggestion for a typo), with guidance in both languages, and round-tripped."""

from __future__ import annotations

from tuitune.core import recipe as r

NEW = ("data.dataset", "data.text_split", "data.chunk_long_text")


def test_the_new_fields_are_declared_with_defaults_and_guidance():
    f = r.FIELDS
    assert (f["data.dataset"].default, f["data.text_split"].default, f["data.chunk_long_text"].default) == ("", "auto", False)
    assert f["data.text_split"].choices == ("auto", "line", "paragraph", "file")
    for key in NEW:
        assert "LLaMA-Factory" in f[key].text() or key != "data.dataset"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in f[key].text("zh")) and f[key].title("zh") != f[key].title("en")


def test_bad_values_are_reported_like_any_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\ndataset = 3\ntext_split = "lines"\nchunk_long_text = "yes"\n')
    _, problems = r.load_recipe(bad)
    text = "\n".join(p.format() for p in problems)
    assert "data.dataset: 3 is a integer, not a string" in text
    assert "data.text_split: \"lines\" is not a choice; did you mean 'line'?" in text
    assert 'data.chunk_long_text: "yes" is a string, not true or false' in text


def test_the_new_fields_round_trip(tmp_path):
    recipe = r.Recipe()
    recipe.data.dataset, recipe.data.text_split, recipe.data.chunk_long_text = "weather_tools", "paragraph", True
    path = tmp_path / "x.toml"
    r.save_recipe(recipe, path)
    loaded, problems = r.load_recipe(path)
    assert problems == [] and [loaded.get(k) for k in NEW] == ["weather_tools", "paragraph", True]
