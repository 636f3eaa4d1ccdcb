"""GGUF export: llama.cpp's converter writes a file that carries the trained chat template, system
prompt and end-of-turn token, loads back with transformers, answers like the merged model, and the
command says so (or fails with exit 1 and keeps the files).

The tiny LoRA run memorizes one answer ending with <|im_end|>, so a GGUF that lost its stop token
would run past it. llama.cpp's half of the check runs only where llama-cpp-python is installed.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT, RunCache

from tuitune import cli
from tuitune.core import gguf_convert
from tuitune.core.errors import UserError


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    from tuitune.core.tuned import quiet_libraries

    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("gguf-runs"), tiny_model_dir)


@pytest.fixture(scope="module")
def system_run(runs):
    return runs.get("lora", name="tally", data__system="You are Tally.")


def _cli_json(capsys, *argv) -> tuple[int, dict]:
    code = cli.main(["export", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_gguf_export_carries_template_system_and_stop_and_passes_parity(system_run, tmp_path, capsys, quant):
    code, result = _cli_json(capsys, str(system_run), "--gguf", str(tmp_path / "gguf"), "--quant", quant)
    assert code == 0, result
    path = tmp_path / "gguf" / f"tally-{quant}.gguf"
    assert result["path"] == str(path) and path.is_file() and result["passed"] is True

    facts = gguf_convert.read_facts(path)
    assert facts.architecture == "llama" and facts.file_type == {"f16": 1, "q8_0": 7}[quant]
    # The trained template with the system prompt as its default; <|im_end|> (id 2 here) ends a turn.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>system\nYou are Tally.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert facts.eot_id == tok.convert_tokens_to_ids("<|im_end|>") == facts.eos_id

    parity = result["parity"]
    engine = parity["engines"][0]
    assert engine["engine"] == "transformers" and engine["template_ok"] and engine["tokens_ok"]
    assert engine["share"] >= parity["expected_share"] and engine["ran_past"] == 0


def test_cli_prints_parity_and_commands(runs, tmp_path, capsys):
    run = runs.get("lora")
    assert cli.main(["export", str(run), "--gguf", str(tmp_path / "g"), "--quant", "f16", "--ollama"]) == 0
    out = capsys.readouterr().out
    assert f"gguf: wrote {tmp_path / 'g' / run.name}-f16.gguf" in out
    assert "transformers: 100% of the first 16 tokens identical" in out and ": pass" in out
    assert f"ollama create {run.name} -f {tmp_path / 'g' / 'Modelfile'}" in out
    assert "llama-cli -m" in out


def test_failed_parity_exits_1_and_keeps_the_files(runs, tmp_path, capsys, monkeypatch):
    # Demand more agreement than any answer can give: the real export runs, the check fails.
    strict = dataclasses.replace(gguf_convert.QUANT_TYPES["f16"], expected_share=1.01)
    monkeypatch.setitem(gguf_convert.QUANT_TYPES, "f16", strict)
    code, result = _cli_json(capsys, str(runs.get("lora")), "--gguf", str(tmp_path / "g"), "--quant", "f16", "--ollama")
    assert code == 1 and result["passed"] is False
    assert "below the 101% expected" in result["parity"]["engines"][0]["problems"][-1]
    assert (tmp_path / "g" / "Modelfile").is_file() and list((tmp_path / "g").glob("*.gguf"))
    # The run memorized one answer: the GGUF gives it token for token and stops at <|im_end|>.
    memorized = next(p for p in result["parity"]["engines"][0]["prompts"] if p["prompt"] == MEMORY_PROMPT)
    assert memorized["reference"]["text"] == MEMORY_ANSWER and memorized["reference"]["stopped"]
    assert memorized["answer"]["tokens"] == memorized["reference"]["tokens"] and memorized["answer"]["stopped"]
    assert not [p for p in (tmp_path / "g").iterdir() if p.name.startswith(".")]  # the temporary merge is gone


def test_parity_catches_a_gguf_that_lost_its_template_and_stop_token(runs, tmp_path):
    from transformers import AutoTokenizer

    from tuitune.core import export
    from tuitune.core.data.templates import LLAMA3
    from tuitune.core.parity import check_parity
    from tuitune.core.served_template import served_template

    merged = export.merge_run(runs.get("lora"), tmp_path / "merged").path
    tok = AutoTokenizer.from_pretrained(str(merged))
    served = served_template(tok)
    # What a careless export writes: another template, and its stop token as the only one.
    broken = gguf_convert.convert(merged, tmp_path / "broken.gguf", "f16", chat_template=LLAMA3, end_tokens=("<|endoftext|>",))
    chats = [[{"role": "user", "content": MEMORY_PROMPT}]]
    result = check_parity(broken, merged, chats, served=served, quant="f16", expected_share=0.9, llama_cpp=False)
    engine = result.engines[0]
    assert not result.passed and not engine.template_ok
    assert "renders the prompt differently" in engine.problems[0]


def test_eos_lost_makes_answers_run_past_end_of_turn(runs, tmp_path):
    from transformers import AutoTokenizer

    from tuitune.core import export
    from tuitune.core.parity import check_parity
    from tuitune.core.served_template import served_template

    merged = export.merge_run(runs.get("lora"), tmp_path / "merged").path
    tok = AutoTokenizer.from_pretrained(str(merged))
    served = served_template(tok)
    # A tokenizer whose eos is another token, and no end-of-turn id written: nothing stops at <|im_end|>.
    config = json.loads((merged / "tokenizer_config.json").read_text())
    config["eos_token"] = "<|endoftext|>"
    (merged / "tokenizer_config.json").write_text(json.dumps(config))
    gguf = gguf_convert.convert(merged, tmp_path / "no-stop.gguf", "f16", chat_template=served.jinja, end_tokens=())
    chats = [[{"role": "user", "content": MEMORY_PROMPT}]]
    result = check_parity(gguf, merged, chats, served=served, quant="f16", expected_share=0.0, llama_cpp=False)
    engine = result.engines[0]
    assert engine.ran_past == 1 and not result.passed
    assert "go on" in engine.problems[-1]


def test_unknown_quant_and_missing_llama_cpp_say_what_to_do(runs, tmp_path, monkeypatch, capsys):
    with pytest.raises(UserError, match="not known"):
        gguf_convert.check_quant("q9_9")
    monkeypatch.setattr(gguf_convert, "llama_cpp_installed", lambda: False)
    code = cli.main(["export", str(runs.get("lora")), "--gguf", str(tmp_path / "g"), "--quant", "q4_k_m"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'tuitune[llama-cpp]'" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists()
    rows = {r.quant: r for r in gguf_convert.quant_availability()}
    assert rows["q8_0"].available and not rows["q4_k_m"].available and "llama-cpp" in rows["q4_k_m"].reason


def test_plain_model_exports_with_its_own_template(tiny_model_dir, tmp_path, capsys):
    code, result = _cli_json(capsys, str(tiny_model_dir), "--gguf", str(tmp_path / "g"), "--quant", "f32")
    assert code == 0 and result["parity"]["prompt_source"].startswith("general questions")
    engine = result["parity"]["engines"][0]
    assert engine["template_ok"] and engine["share"] == 1.0  # f32: the very same weights


@pytest.mark.skipif(not gguf_convert.llama_cpp_installed(), reason="llama-cpp-python is an optional extra")
def test_k_quant_and_llama_cpp_parity(runs, tmp_path, capsys):
    code, result = _cli_json(capsys, str(runs.get("lora")), "--gguf", str(tmp_path / "g"), "--quant", "q6_k")
    engines = {e["engine"]: e for e in result["parity"]["engines"]}
    assert set(engines) == {"transformers", "llama.cpp"}
    assert engines["llama.cpp"]["tokens_ok"] and engines["llama.cpp"]["ran_past"] == 0
    assert code == (0 if result["passed"] else 1)


def test_gguf_refusals_come_before_loading(runs, tmp_path, capsys):
    (tmp_path / "g").mkdir()
    run = runs.get("lora")
    (tmp_path / "g" / f"{run.name}-q8_0.gguf").write_text("x")
    assert cli.main(["export", str(run), "--gguf", str(tmp_path / "g")]) == 2
    assert "exists" in capsys.readouterr().err
    assert cli.main(["export", str(run), "--ollama"]) == 2
    assert "add --gguf DIR" in capsys.readouterr().err
    assert cli.main(["export", "no-such-thing", "--gguf", str(tmp_path / "g2")]) == 2
    assert "is not a run, a model folder or a hub id" in capsys.readouterr().err
