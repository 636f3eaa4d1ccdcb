"""Export: adapter folders that describe themselves, merged models that plain transformers loads
with the same logits as base + adapter, and refusals that come before anything is loaded.

Tolerances (float32 on CPU): merged vs base + adapter, max |logit difference| < 1e-5 (measured
~3e-7). QLoRA merges into the original unquantized weights, so it is held to the same bound
against the unquantized base + adapter; against the 4-bit base it was trained on it differs by the
quantization error (max ~0.2 with 4 bits, ~0.015 with 8 bits on this tiny random model) and only
its greedy answer must match.
"""

from __future__ import annotations

import json
import shutil

import pytest
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT, RunCache

from tuitune import cli
from tuitune.core import export
from tuitune.core.errors import UserError
from tuitune.core.recipe import load_recipe, save_recipe
from tuitune.core.runs import read_run
from tuitune.core.tuned import quiet_libraries

LOGITS_ATOL = 1e-5


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("runs"), tiny_model_dir)


def _inputs():
    import torch

    torch.manual_seed(0)
    return torch.randint(3, 400, (2, 12))


def _logits_base_plus_adapter(run, base_dir, ids):
    """Logits of the unquantized base (plain transformers) with the run's adapter on top (peft)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(run / "adapter")).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def _logits_plain(folder, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        return model(input_ids=ids).logits, model


@pytest.mark.parametrize(
    "method, options",
    [
        ("lora", {}),
        ("lora", {"lora__use_dora": True}),
        ("lora", {"lora__use_rslora": True, "lora__target_modules": "all-linear"}),
        ("ia3", {}),
    ],
    ids=["lora", "dora", "rslora-all-linear", "ia3"],
)
def test_merged_model_loads_with_plain_transformers_and_matches_base_plus_adapter(runs, tiny_model_dir, tmp_path, method, options):
    run = runs.get(method, **options)
    result = export.merge_run(run, tmp_path / "merged")
    assert result.kind == "merged" and result.warnings == []

    ids = _inputs()
    merged_logits, merged = _logits_plain(tmp_path / "merged", ids)
    expected = _logits_base_plus_adapter(run, tiny_model_dir, ids)
    base_logits, _ = _logits_plain(tiny_model_dir, ids)
    assert (merged_logits - expected).abs().max().item() < LOGITS_ATOL
    assert (merged_logits - base_logits).abs().max().item() > 1e-3, "the trained adapter must change the logits"
    assert type(merged).__name__ == "LlamaForCausalLM"
    assert not any("lora" in k or "ia3" in k for k in merged.state_dict())


@pytest.mark.parametrize("bits", [4, 8])
def test_merged_qlora_is_dequantized_and_answers_as_the_quantized_model(runs, tiny_model_dir, tmp_path, bits):
    import torch

    from tuitune.core.chat import ChatSession, GenerationSettings

    run = runs.get("qlora", quantization__bits=bits)
    result = export.merge_run(run, tmp_path / "merged", qlora_base="original")
    assert result.warnings == [export.QLORA_WARNING]
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "quantization_config" not in config

    ids = _inputs()
    merged_logits, _ = _logits_plain(tmp_path / "merged", ids)
    assert (merged_logits - _logits_base_plus_adapter(run, tiny_model_dir, ids)).abs().max().item() < LOGITS_ATOL

    as_trained = ChatSession.open(str(run), device="cpu")
    with torch.no_grad():
        trained_logits = as_trained.loaded.model(input_ids=ids).logits
    quantization_gap = (merged_logits - trained_logits).abs().max().item()
    assert 1e-4 < quantization_gap < 1.0  # the original weights, not the quantized ones: close, not equal

    greedy = GenerationSettings(temperature=0, max_new_tokens=24)
    merged_chat = ChatSession.open(str(tmp_path / "merged"), device="cpu")
    assert merged_chat.reply([{"role": "user", "content": MEMORY_PROMPT}], greedy) == MEMORY_ANSWER


@pytest.mark.parametrize("bits", [4, 8])
def test_qlora_merge_into_the_quantized_weights_keeps_the_model_as_trained(runs, tmp_path, bits):
    import torch

    from tuitune.core.tuned import load_run_model

    run = runs.get("qlora", quantization__bits=bits)
    original = export.merge_run(run, tmp_path / "original", qlora_base="original")
    quantized = export.merge_run(run, tmp_path / "quantized")  # the default: the model as trained
    assert quantized.warnings == [export.QLORA_QUANTIZED_NOTE] and original.warnings == [export.QLORA_WARNING]
    assert "quantization_config" not in json.loads((tmp_path / "quantized" / "config.json").read_text())

    ids = _inputs()
    with torch.no_grad():
        trained = load_run_model(read_run(run), "cpu").model(input_ids=ids).logits
    gap_original = (_logits_plain(tmp_path / "original", ids)[0] - trained).abs().max().item()
    gap_quantized = (_logits_plain(tmp_path / "quantized", ids)[0] - trained).abs().max().item()
    print(f"QLoRA {bits}-bit: max |logit - as trained|: original base {gap_original:.2e}, quantized base {gap_quantized:.2e}")
    # 4-bit layers compute with the dequantized weights, so that merge is the model as trained; 8-bit
    # (LLM.int8) also rounds activations, which no merged float model can copy.
    assert gap_quantized < (gap_original / 4 if bits == 4 else gap_original)


def test_merged_folder_has_tokenizer_chat_template_and_description(runs, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    run = runs.get("lora")
    export.merge_run(run, tmp_path / "merged")
    out = tmp_path / "merged"
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template
    assert list(out.glob("*.safetensors"))
    meta = json.loads((out / "tuitune.json").read_text())
    assert meta["kind"] == "merged" and meta["method"] == "lora" and meta["base_model"] == str(tiny_model_dir)
    assert load_recipe(out / export.RECIPE_COPY)[0] == read_run(run).recipe
    assert "AutoModelForCausalLM.from_pretrained" in (out / "README.md").read_text()
    assert not (tmp_path / "merged.partial").exists()


def test_merged_tokenizer_carries_the_template_the_run_was_trained_with(runs, tmp_path):
    from transformers import AutoTokenizer

    from tuitune.core.data import TEMPLATES

    export.merge_run(runs.get("lora", data__template="zephyr", name="lora_zephyr"), tmp_path / "merged")
    assert AutoTokenizer.from_pretrained(tmp_path / "merged").chat_template == TEMPLATES["zephyr"]


def test_merge_reports_progress_in_order(runs, tmp_path):
    seen = []
    export.merge_run(runs.get("lora"), tmp_path / "merged", progress=seen.append)
    stages = [p.stage for p in seen]
    assert stages[0] == "load" and stages[-1] == "done"
    assert stages.index("merge") < stages.index("save") < stages.index("done")


@pytest.mark.parametrize("method", ["prefix", "prompt", "p-tuning", "llama-adapter"])
def test_prompt_learning_merge_is_refused_before_loading_anything(runs, tmp_path, method):
    # The recipe copy points at a base model that does not exist: any attempt to load would fail
    # with a different message, so the refusal below proves nothing was loaded first.
    run = tmp_path / "run"
    shutil.copytree(runs.get(method), run)
    recipe, _ = load_recipe(run / "recipe.toml")
    recipe.model.name_or_path = str(tmp_path / "no-such-model")
    save_recipe(recipe, run / "recipe.toml")
    with pytest.raises(UserError, match="cannot be merged: .* does not change the model's weights") as err:
        export.merge_run(run, tmp_path / "out")
    assert "--adapter OUT" in err.value.hint
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_full_run_merge_copies_the_model_and_says_so(runs, tmp_path):
    run = runs.get("freeze", freeze__trainable_layers=1)
    result = export.merge_run(run, tmp_path / "out")
    assert result.kind == "copied"
    assert "nothing to merge" in result.warnings[0]
    ids = _inputs()
    copied, _ = _logits_plain(tmp_path / "out", ids)
    original, _ = _logits_plain(run / "model", ids)
    assert (copied - original).abs().max().item() == 0.0
    with pytest.raises(UserError, match="has no adapter, its model/ is already a full model"):
        export.export_adapter(run, tmp_path / "adapter")


def test_adapter_export_is_self_describing_and_loads_with_peft(runs, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run = runs.get("lora")
    (run / "adapter" / "training_args.bin").write_bytes(b"pickle")  # as the Trainer leaves it
    result = export.export_adapter(run, tmp_path / "adapter")
    assert "training_args.bin" not in result.files
    out = tmp_path / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tuitune.json", export.RECIPE_COPY} <= set(result.files)
    meta = json.loads((out / "tuitune.json").read_text())
    assert meta["base_model"] == str(tiny_model_dir) and meta["method"] == "lora" and meta["run"] == run.name
    assert f"A lora adapter for `{tiny_model_dir}`" in (out / "README.md").read_text()

    ids = _inputs()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out)).eval()
    with torch.no_grad():
        exported = model(input_ids=ids).logits
    assert torch.equal(exported, _logits_base_plus_adapter(run, tiny_model_dir, ids))


def test_adapter_export_names_a_hub_base_by_its_id(runs, tmp_path):
    run = tmp_path / "hubrun"
    shutil.copytree(runs.get("prefix"), run)
    recipe, _ = load_recipe(run / "recipe.toml")
    recipe.model.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    save_recipe(recipe, run / "recipe.toml")
    export.export_adapter(run, tmp_path / "out")
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_occupied_output_needs_force(runs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="exists and is not empty"):
        export.export_adapter(runs.get("lora"), out)
    assert (out / "keep.txt").exists()
    export.export_adapter(runs.get("lora"), out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "adapter_config.json").exists()


def test_unfinished_run_is_refused(tiny_model_dir, tmp_path):
    from tuitune.core.recipe import new_recipe

    recipe = new_recipe("lora", str(tiny_model_dir))
    recipe.name = "halfway"
    save_recipe(recipe, tmp_path / "halfway" / "recipe.toml")
    for action in (export.export_adapter, export.merge_run):
        with pytest.raises(UserError, match="has no adapter/ yet: training has not finished"):
            action(tmp_path / "halfway", tmp_path / "out")


# ---------------------------------------------------------------------------------- the command


def test_cli_merge_writes_the_model(runs, tmp_path, capsys):
    run = runs.get("lora")
    code = cli.main(["export", run.name, "--runs-dir", str(run.parent), "--merge", str(tmp_path / "m")])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.startswith(f"merged: wrote {tmp_path / 'm'}")
    assert "shard by shard" in captured.err and "[save] saving merged shard 1/1" in captured.err
    assert (tmp_path / "m" / "config.json").exists()


def test_cli_qlora_merge_says_which_base_it_used(runs, tmp_path, capsys):
    code = cli.main(["export", str(runs.get("qlora")), "--merge", str(tmp_path / "m")])
    assert code == 0
    assert "QLoRA: merged into the dequantized quantized base weights" in capsys.readouterr().err
    code = cli.main(["export", str(runs.get("qlora")), "--merge", str(tmp_path / "o"), "--qlora-base", "original"])
    assert code == 0
    assert "warning: QLoRA: merged into the original (unquantized) base weights" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "nosuch", "--merge", "x"], "error: 'nosuch' is not a run"),
        (["export", "{prefix}", "--merge", "x"], "cannot be merged"),
    ],
)
def test_cli_refusals_exit_2(runs, tmp_path, capsys, args, message):
    args = [a.replace("{prefix}", str(runs.get("prefix"))) for a in args]
    args = [str(tmp_path / a) if a == "x" else a for a in args]
    assert cli.main([*args, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "nothing to export"),
        (["--adapter", "a", "--merge", "b"], "--adapter and --merge are two exports"),
        (["--quant", "q9"], "argument --quant: invalid choice"),
    ],
)
def test_cli_bad_flags_exit_2(flags, message, capsys):
    try:
        code = cli.main(["export", "somerun", *flags])
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    assert code == 2
    assert message in capsys.readouterr().err
