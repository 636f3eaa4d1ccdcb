"""vLLM serve commands for what vLLM can and cannot serve, and the shard-by-shard LoRA merge
against peft's merge_and_unload on the tiny model split into several shards."""

from __future__ import annotations

import json
import shlex

import pytest
from run_dirs import RunCache

from tuitune import cli
from tuitune.core import shard_merge, vllm
from tuitune.core.errors import UserError
from tuitune.core.runs import open_finished_run


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    from tuitune.core.tuned import quiet_libraries

    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("vllm-runs"), tiny_model_dir)


def test_lora_adapter_is_served_on_its_base(runs, tmp_path, capsys):
    run = runs.get("lora", lora__r=12)
    assert cli.main(["export", str(run), "--vllm", str(tmp_path / "v"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    script = (tmp_path / "v" / "serve.sh").read_text()
    command = script.splitlines()[-1].removeprefix("exec ").removesuffix(' "$@"')
    argv = shlex.split(command)
    assert argv[:3] == ["vllm", "serve", str(open_finished_run(run).recipe.model.name_or_path)]
    assert "--enable-lora" in argv
    assert argv[argv.index("--lora-modules") + 1] == f"{run.name}={(tmp_path / 'v' / 'adapter').resolve()}"
    assert argv[argv.index("--max-lora-rank") + 1] == "16"  # the smallest allowed value holding r = 12
    assert (tmp_path / "v" / "adapter" / "adapter_config.json").is_file()
    assert result["serves"] == "lora" and result["command"] == command


def test_dora_is_merged_for_vllm_with_a_note(runs, tmp_path, capsys):
    run = runs.get("lora", lora__use_dora=True)
    assert cli.main(["export", str(run), "--vllm", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    assert "DoRA is not supported by vLLM's LoRA" in out
    merged = (tmp_path / "v" / "merged").resolve()
    assert f"vllm serve {merged} --served-model-name {run.name}" in out
    assert (merged / "config.json").is_file() and "--enable-lora" not in out


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_prompt_learning_cannot_be_served(runs, tmp_path, capsys, method):
    assert cli.main(["export", str(runs.get(method)), "--vllm", str(tmp_path / "v")]) == 2
    assert "vLLM cannot serve" in capsys.readouterr().err and not (tmp_path / "v").exists()


def test_rank_above_vllm_limit_is_merged(runs):
    assert vllm.lora_rank_limit(512) == 512 and vllm.lora_rank_limit(513) is None
    assert vllm._lora_obstacle("lora", {"r": 1024}).startswith("rank 1024 is above")
    assert vllm._lora_obstacle("ia3", {}) and not vllm._lora_obstacle("lora", {"r": 8, "target_modules": ["q_proj"]})


# ------------------------------------------------------------------------------ shard-by-shard merge


def _split(model_dir, out, shard_size: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.save_pretrained(out, max_shard_size=shard_size)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def test_shard_merge_equals_peft_merge_and_unload(runs, tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    sharded = _split(tiny_model_dir, tmp_path / "sharded", "60KB")
    shards = shard_merge.base_shards(sharded)
    assert len(shards) >= 4
    run = runs.get("lora", lora__use_rslora=True, lora__target_modules="all-linear")
    adapter = run / "adapter"
    assert shard_merge.shard_merge_obstacle(adapter, sharded) == ""

    seen = []
    shard_merge.merge_by_shard(adapter, sharded, tmp_path / "merged", dtype_name="float32", progress=seen.append)
    assert [p.total for p in seen if p.stage == "save"] == [len(shards)] * len(shards)

    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sharded), str(adapter)).merge_and_unload().state_dict()
    got: dict = {}
    for shard in shards:
        got.update(load_file(str(tmp_path / "merged" / shard)))
    assert set(got) == {k for k in expected if k != "lm_head.weight" or "lm_head.weight" in got}
    worst = max((got[k] - expected[k]).abs().max().item() for k in got)
    assert worst < 1e-5
    changed = sum(1 for k in got if not torch.equal(got[k], load_file(str(sharded / _shard_of(sharded, k)))[k]))
    assert changed >= 14  # every targeted Linear of the two layers moved
    # ...and it loads with plain transformers.
    AutoModelForCausalLM.from_pretrained(tmp_path / "merged")


def _shard_of(folder, key):
    index = json.loads((folder / shard_merge.INDEX).read_text())
    return index["weight_map"][key]


def test_merge_run_uses_shards_and_obstacles_fall_back_to_peft(runs, tmp_path):
    from tuitune.core import export

    seen = []
    export.merge_run(runs.get("lora"), tmp_path / "m", progress=seen.append)
    assert any("shard by shard" in p.message for p in seen)
    dora = runs.get("lora", lora__use_dora=True) / "adapter"
    assert shard_merge.shard_merge_obstacle(dora, tmp_path / "m") == "DoRA"
    assert shard_merge.shard_merge_obstacle(runs.get("ia3") / "adapter", tmp_path / "m") == "IA3 adapter"
    with pytest.raises(UserError, match="no weight for"):
        shard_merge.merge_by_shard(runs.get("lora") / "adapter", _empty_model(tmp_path), tmp_path / "x", dtype_name="float32")


def _empty_model(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "empty"
    folder.mkdir()
    save_file({"other.weight": torch.zeros(2, 2)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}")
    return folder
