"""The recipe schema: defaults, validation messages, TOML round trip, overrides, shipped recipes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuitune.core import recipe as r

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "recipes").glob("*.toml"))


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuitune", *args], capture_output=True, text=True, cwd=cwd)


def test_required_keys_exist_with_documented_defaults():
    f = r.FIELDS
    for key in [
        "name", "model.name_or_path", "model.dtype", "model.trust_remote_code", "method.type", "lora.r",
        "lora.alpha", "lora.dropout", "lora.target_modules", "lora.use_dora", "lora.use_rslora",
        "quantization.bits", "quantization.quant_type", "quantization.double_quant",
        "quantization.compute_dtype", "freeze.trainable_layers", "prompt.num_virtual_tokens", "data.path",
        "data.format", "data.cutoff_len", "data.val_size", "data.max_samples", "data.packing",
        "data.train_on_prompt", "train.epochs", "train.max_steps", "train.learning_rate", "train.lr_scheduler",
        "train.warmup_ratio", "train.batch_size", "train.gradient_accumulation", "train.gradient_checkpointing",
        "train.optimizer", "train.weight_decay", "train.max_grad_norm", "train.seed", "train.logging_steps",
        "train.save_steps", "train.eval_steps", "train.save_total_limit", "output.runs_dir",
    ]:
        assert key in f, key
    assert f["model.trust_remote_code"].default is False
    assert f["train.learning_rate"].default == 3e-4
    assert (f["train.learning_rate"].min, f["train.learning_rate"].max) == (1e-6, 1e-2)
    assert f["lora.target_modules"].default == ["q_proj", "v_proj"]
    assert set(f["method.type"].choices) == {"full", "freeze", "lora", "qlora", "prefix", "prompt", "p-tuning", "ia3", "llama-adapter"}
    assert f["quantization.bits"].choices == (4, 8)


def test_every_field_has_guidance_in_both_languages():
    for spec in r.fields():
        assert len(spec.text("en")) > 40, spec.key
        zh = spec.text("zh")
        assert zh != spec.text("en") and any("\u4e00" <= ch <= "\u9fff" for ch in zh), spec.key
        assert spec.title("zh"), spec.key


def test_guidance_states_ranges_and_tradeoffs():
    assert "4-8" in r.FIELDS["lora.r"].text() and "64-256" in r.FIELDS["lora.r"].text()
    assert "diverges" in r.FIELDS["train.learning_rate"].text()
    assert "overfit" in r.FIELDS["train.epochs"].text()


def test_alpha_defaults_to_twice_rank():
    recipe, problems = r.from_dict({"lora": {"r": 32}})
    assert problems == [] and recipe.lora.alpha == 64
    recipe, _ = r.from_dict({"lora": {"r": 32, "alpha": 8}})
    assert recipe.lora.alpha == 8


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_is_valid(path):
    recipe, problems = r.load_recipe(path)
    assert problems == [], [p.format(str(path)) for p in problems]
    assert r.validate(recipe) == []


def test_shipped_recipes_cover_the_promised_setups():
    names = {p.name for p in SHIPPED}
    assert "quickstart.toml" in names
    methods = {r.load_recipe(p)[0].method.type for p in SHIPPED}
    assert {"lora", "qlora", "full", "prefix", "prompt"} <= methods
    quick, _ = r.load_recipe(REPO / "recipes" / "quickstart.toml")
    assert quick.model.name_or_path == r.DEMO_MODEL and quick.method.type == "lora"
    assert Path(quick.data_path).is_file(), "quickstart's dataset must resolve next to the recipe"


def test_broken_recipe_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad name!"\n[model]\nname_or_pth = "x"\n[method]\ntype = "full"\n[lora]\nr = 0\n'
        '[quantization]\nbits = 3\n[train]\nlearning_rate = 1.0\nlr_scheduler = "cosin"\nbatch_size = 2.5\n'
        'gradient_checkpointing = "yes"\n[trian]\nx = 1\n'
    )
    _, problems = r.load_recipe(bad)
    text = "\n".join(p.format(str(bad)) for p in problems)
    assert f"{bad}: model.name_or_pth: unknown key; did you mean 'model.name_or_path'?" in text
    assert f"{bad}: lora.r: 0 is out of range (an integer 1..4096)" in text
    assert "quantization.bits: 3 is not a choice (one of 4, 8)" in text
    assert "train.learning_rate: 1.0 is out of range (a number 1e-06..0.01)" in text
    assert "did you mean 'cosine'?" in text
    assert "train.batch_size: 2.5 is a number, not an integer" in text
    assert 'train.gradient_checkpointing: "yes" is a string' in text
    assert "trian: unknown key; did you mean 'train'?" in text
    assert 'quantization: [quantization] does not apply to method.type = "full"' in text
    assert "name: " in text


def test_cli_validate_exit_codes_and_no_traceback(tmp_path):
    ok = cli("recipe", "validate", *map(str, SHIPPED))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nlearning_rate = "fast"\n[model\n')
    res = cli("recipe", "validate", str(bad))
    assert res.returncode == 2
    assert f"{bad}: toml: syntax error" in res.stdout
    assert "Traceback" not in res.stdout + res.stderr
    missing = cli("recipe", "validate", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "nope.toml: file: not found" in missing.stdout


@pytest.mark.parametrize("method", r.METHODS)
def test_recipe_new_prints_a_valid_complete_recipe(method, tmp_path):
    res = cli("recipe", "new", "--method", method, "--model", "Qwen/Qwen2.5-0.5B")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "new.toml"
    out.write_text(res.stdout)
    recipe, problems = r.load_recipe(out)
    assert problems == []
    assert recipe.method.type == method and recipe.model.name_or_path == "Qwen/Qwen2.5-0.5B"
    assert ("[lora]" in res.stdout) == (method in ("lora", "qlora"))
    assert ("[quantization]" in res.stdout) == (method == "qlora")
    assert "# " in res.stdout  # guidance comments


def test_overrides_parse_by_field_type_and_report_bad_keys():
    recipe = r.Recipe()
    assert r.apply_overrides(recipe, ["train.learning_rate=1e-4", "lora.r=16", "data.packing=true", "lora.target_modules=all-linear"]) == []
    assert recipe.train.learning_rate == 1e-4 and recipe.lora.r == 16 and recipe.lora.alpha == 32
    assert recipe.data.packing is True and recipe.lora.target_modules == "all-linear"
    problems = r.apply_overrides(recipe, ["train.lr=1", "lora.r=abc", "noequals"])
    text = [p.format() for p in problems]
    assert any("train.lr: unknown key; did you mean 'train.lr_scheduler'" in t or "did you mean" in t for t in text)
    assert any(t.startswith('lora.r: "abc" is not valid') for t in text)
    assert any(t.startswith("noequals: expected key=value") for t in text)


def test_applies_hides_sections_not_used_by_method():
    recipe = r.new_recipe("prefix")
    assert not recipe.applies("lora.r") and recipe.applies("prompt.num_virtual_tokens")
    assert not recipe.applies("prompt.init_text")
    recipe.method.type = "qlora"
    assert recipe.applies("quantization.quant_type")
    recipe.quantization.bits = 8
    assert not recipe.applies("quantization.quant_type")


def test_save_and_load_round_trip(tmp_path):
    recipe = r.new_recipe("qlora", "meta-llama/Meta-Llama-3-8B")
    recipe.name = "rt"
    recipe.data.columns = {"instruction": "question"}
    recipe.lora.target_modules = "all-linear"
    path = r.save_recipe(recipe, tmp_path / "rt.toml")
    loaded, problems = r.load_recipe(path)
    assert problems == []
    assert r.diff(recipe, loaded) == []


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-6, 1e-2),
    rank=st.integers(1, 4096),
    method=st.sampled_from(r.METHODS),
    name=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    modules=st.lists(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), min_size=1, max_size=4),
)
def test_round_trip_property(tmp_path_factory, lr, rank, method, name, modules):
    recipe = r.new_recipe(method)
    recipe.name, recipe.train.learning_rate, recipe.lora.r, recipe.lora.target_modules = name, lr, rank, modules
    loaded, problems = r.from_dict(__import__("tomllib").loads(r.to_toml(recipe)))
    assert problems == []
    for key in r.FIELDS:
        if recipe.applies(key) or key.split(".")[0] not in r.OPTIONAL_SECTIONS:
            assert loaded.get(key) == recipe.get(key), key


def test_parse_text_checks_ranges_for_the_form():
    spec = r.FIELDS["data.val_size"]
    assert r.parse_text(spec, "0.1") == (0.1, None)
    value, problem = r.parse_text(spec, "0.9")
    assert problem is not None and problem.format() == "data.val_size: 0.9 is out of range (a number 0..0.5)"
