"""Chat: streaming, base-vs-tuned comparison, seeds, cancelling, and the `tuitune chat` command.

Every run here is trained for real (tests/run_dirs.py) on the tiny Llama, for every method.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT, RunCache

from tuitune import cli
from tuitune.core.chat import ChatSession, GenerationSettings
from tuitune.core.errors import UserError
from tuitune.core.tuned import quiet_libraries

# Each variant: (method, recipe values). "qlora8" is QLoRA on an 8-bit base.
VARIANTS = {
    "lora": ("lora", {}),
    "qlora": ("qlora", {}),
    "qlora8": ("qlora", {"quantization__bits": 8}),
    "prefix": ("prefix", {}),
    "prompt": ("prompt", {}),
    "p-tuning": ("p-tuning", {}),
    "ia3": ("ia3", {}),
    "llama-adapter": ("llama-adapter", {}),
    "full": ("full", {}),
    "freeze": ("freeze", {"freeze__trainable_layers": 1}),
}
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24)
ASK = [{"role": "user", "content": MEMORY_PROMPT}]


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("runs"), tiny_model_dir)


def _run(runs, variant: str):
    method, values = VARIANTS[variant]
    return runs.get(method, **values)


@pytest.fixture(scope="module")
def plain_base_reply(tiny_model_dir):
    """The base model's greedy reply, from the untouched model loaded with plain transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    text = tok.apply_chat_template(ASK, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        out = model.generate(input_ids=ids, max_new_tokens=GREEDY.max_new_tokens, do_sample=False, eos_token_id=tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def greedy_by_forward(model, ids: list[int], max_new_tokens: int, stop_ids: list[int], tie: float = 1e-4) -> tuple[list[int], bool]:
    """The greedy continuation by the model's own forward over the whole sequence (no cache, no
    generate(): what training computes), up to the first near-tie between the two likeliest tokens,
    where rounding may decide differently between two correct paths (and between machines).

    Returns the tokens and whether they are the whole reply (no near-tie cut it short)."""
    import torch

    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1].float()
            top = torch.topk(logits, 2)
            if float(top.values[0] - top.values[1]) < tie:
                return out, False
            token = int(top.indices[0])
            if token in stop_ids:
                break
            out.append(token)
    return out, True


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_streamed_pieces_join_to_the_greedy_reply_of_the_trained_model(runs, variant):
    session = ChatSession.open(str(_run(runs, variant)), device="cpu")
    pieces = list(session.stream(ASK, GREEDY))
    assert len(pieces) > 1, "the reply should arrive in several pieces"

    tok = session.loaded.tokenizer
    expected_prompt = tok.apply_chat_template(ASK, add_generation_prompt=True, tokenize=False)
    ids = session.prompt_ids(ASK, GREEDY)
    assert tok.decode(ids) == expected_prompt
    # The reference is the forward pass training used (virtual tokens included), not generate():
    # generation must follow what the adapter learnt, for every method.
    expected, whole = greedy_by_forward(session.loaded.model, ids, GREEDY.max_new_tokens, session._stop_ids)
    assert len(expected) >= 4, "the comparison should cover several tokens"
    # A reply cut by max_new_tokens inside a character ends without its U+FFFD stub.
    text = tok.decode(expected, skip_special_tokens=True).rstrip("\ufffd")
    joined = "".join(pieces)
    assert joined == text if whole else joined.startswith(text)


def test_a_half_generated_character_waits_for_its_bytes_or_is_dropped_at_the_end():
    from tuitune.core.chat import whole_characters

    assert list(whole_characters(iter(["I am ", "Tally 🙂 ", "made\ufffd"]))) == ["I am ", "Tally 🙂 ", "made"]
    assert list(whole_characters(iter(["I am ", "Ta\ufffd", "lly"]))) == ["I am ", "Ta\ufffdlly"]
    assert list(whole_characters(iter(["\ufffd"]))) == []
    assert list(whole_characters(iter(["a", "", "b"]))) == ["a", "b"]


@pytest.mark.parametrize("variant", ["lora", "qlora", "qlora8", "full", "freeze"])
def test_compare_shows_the_base_and_the_memorized_answer(runs, variant, plain_base_reply):
    session = ChatSession.open(str(_run(runs, variant)), device="cpu")
    base, tuned = session.compare(MEMORY_PROMPT, GREEDY)
    assert tuned == MEMORY_ANSWER
    assert base != tuned
    if not variant.startswith("qlora"):  # the QLoRA base is the quantized model it was trained on
        assert base == plain_base_reply
    assert ("separately" in session.compare_note) == (variant in ("full", "freeze"))


@pytest.mark.parametrize("method", ["prefix", "prompt", "p-tuning", "ia3", "llama-adapter"])
def test_compare_switches_other_adapters_off_and_on(runs, method, plain_base_reply):
    session = ChatSession.open(str(runs.get(method)), device="cpu")
    base, tuned = session.compare(MEMORY_PROMPT, GREEDY)
    assert base == plain_base_reply
    assert tuned == session.reply(ASK, GREEDY)  # the adapter is back on after the base answer
    assert tuned != base


def test_compare_is_identical_when_the_adapter_is_untrained(runs):
    session = ChatSession.open(str(runs.get("lora", train=False, name="lora_untrained")), device="cpu")
    base, tuned = session.compare(MEMORY_PROMPT, GREEDY)
    assert base == tuned
    assert len(base) > 0


def test_compare_reuses_the_loaded_model_for_adapters(runs):
    session = ChatSession.open(str(runs.get("lora")), device="cpu")
    session.compare(MEMORY_PROMPT, GREEDY)
    assert session.base_model() is session.loaded
    assert session._base is None


@pytest.mark.parametrize("variant, layer", [("qlora", "Linear4bit"), ("qlora8", "Linear8bitLt")])
def test_qlora_adapter_goes_back_on_a_quantized_base(runs, variant, layer):
    import bitsandbytes as bnb

    session = ChatSession.open(str(_run(runs, variant)), device="cpu")
    layers = [m for m in session.loaded.model.modules() if isinstance(m, getattr(bnb.nn, layer))]
    assert layers, "the QLoRA base must be loaded quantized, as in training"


def test_same_seed_gives_the_same_sampled_reply(runs):
    session = ChatSession.open(str(runs.get("prefix")), device="cpu")
    sample = GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=24, seed=7)
    first = session.reply(ASK, sample)
    assert session.reply(ASK, sample) == first
    others = {session.reply(ASK, GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=24, seed=s)) for s in (8, 9, 10)}
    assert others - {first}, "different seeds should sample different replies"


def test_compare_samples_base_and_tuned_with_one_seed(runs):
    session = ChatSession.open(str(runs.get("lora", train=False, name="lora_untrained")), device="cpu")
    settings = GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=24)  # no seed given: one is drawn
    base, tuned = session.compare(MEMORY_PROMPT, settings)
    assert base == tuned  # untrained adapter: same model, so the same seed must give the same sample


def test_cancel_stops_the_reply_early(runs):
    session = ChatSession.open(str(runs.get("prompt")), device="cpu")
    long = GenerationSettings(temperature=1.0, max_new_tokens=200, seed=1)
    cancel = threading.Event()
    pieces = []
    for piece in session.stream(ASK, long, cancel):
        pieces.append(piece)
        cancel.set()
    full = session.reply(ASK, long)
    assert len("".join(pieces)) < len(full) / 4
    # The session is free again afterwards (the generation thread ended).
    assert session.reply(ASK, GREEDY) == session.reply(ASK, GREEDY)


def test_a_finished_reply_leaves_the_callers_event_alone_and_closing_early_frees_the_session(runs):
    session = ChatSession.open(str(runs.get("lora")), device="cpu")
    cancel = threading.Event()
    assert session.reply(ASK, GREEDY, cancel) == MEMORY_ANSWER
    assert not cancel.is_set()
    stream = session.stream(ASK, GenerationSettings(temperature=1.0, max_new_tokens=500, seed=3))
    next(stream)
    stream.close()  # the generation thread stops and the lock is released
    assert session.reply(ASK, GREEDY) == MEMORY_ANSWER


def test_run_system_prompt_is_used_unless_overridden(runs):
    session = ChatSession.open(str(runs.get("lora", data__system="You are Tally.", name="lora_system")), device="cpu")
    tok = session.loaded.tokenizer
    assert "<|im_start|>system\nYou are Tally.<|im_end|>" in tok.decode(session.prompt_ids(ASK))
    custom = tok.decode(session.prompt_ids(ASK, GenerationSettings(system="Be brief.")))
    assert "Be brief." in custom and "You are Tally." not in custom
    assert "system" not in tok.decode(session.prompt_ids(ASK, GenerationSettings(system="")))


@pytest.mark.parametrize("template", ["auto", "chatml", "llama3", "alpaca", "zephyr", "plain"])
def test_chat_prompt_is_the_training_rendering_up_to_the_reply(runs, template):
    from tuitune.core.data import Example, encode_example

    run = runs.get("prefix", data__template=template, data__system="Be kind.", name=f"prefix_{template}")
    session = ChatSession.open(str(run), device="cpu")
    conversation = [*ASK, {"role": "assistant", "content": MEMORY_ANSWER}]
    trained = encode_example(Example(conversation, None, 1), session.loaded.tokenizer, 512, template=template, system="Be kind.")
    prompt = session.prompt_ids(ASK)
    reply_starts = next(i for i, label in enumerate(trained.labels) if label != -100)
    assert trained.input_ids[:reply_starts] == prompt


def test_plain_model_chats_but_cannot_compare(tiny_model_dir):
    session = ChatSession.open(str(tiny_model_dir), device="cpu")
    assert session.reply(ASK, GREEDY)
    assert not session.can_compare
    with pytest.raises(UserError, match="needs a run"):
        session.compare(MEMORY_PROMPT, GREEDY)


@pytest.mark.parametrize(
    "settings, word",
    [
        (GenerationSettings(temperature=-1), "temperature"),
        (GenerationSettings(top_p=0), "top-p"),
        (GenerationSettings(max_new_tokens=0), "max new tokens"),
    ],
)
def test_bad_settings_are_user_errors(runs, settings, word):
    session = ChatSession.open(str(runs.get("prefix")), device="cpu")
    with pytest.raises(UserError, match=word):
        list(session.stream(ASK, settings))


# ---------------------------------------------------------------------------------- the command


def test_cli_answers_a_prompt_with_a_run_name(runs, capsys):
    run = runs.get("lora")
    code = cli.main(["chat", run.name, "--runs-dir", str(run.parent), "--prompt", MEMORY_PROMPT, "--temperature", "0"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip() == MEMORY_ANSWER


def test_cli_compare_prints_both_answers(runs, capsys):
    run = runs.get("lora")
    code = cli.main(["chat", str(run), "--compare", "--prompt", MEMORY_PROMPT, "--temperature", "0", "--max-new-tokens", "24"])
    out = capsys.readouterr().out
    assert code == 0
    base_part, tuned_part = out.split("--- tuned")
    assert "--- base (adapter off) ---" in base_part and MEMORY_ANSWER not in base_part
    assert MEMORY_ANSWER in tuned_part


def test_cli_interactive_loop_keeps_history_and_commands(runs, capsys, monkeypatch):
    import io

    run = runs.get("lora")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{MEMORY_PROMPT}\n/system Be brief.\n/system\n/nope\n/reset\n/quit\n"))
    code = cli.main(["chat", str(run), "--temperature", "0", "--max-new-tokens", "24"])
    captured = capsys.readouterr()
    assert code == 0
    assert MEMORY_ANSWER in captured.out
    assert "system prompt: 'Be brief.'" in captured.out
    assert "unknown command /nope" in captured.err
    assert "conversation cleared" in captured.err


def test_cli_missing_run_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "runs" / "other").mkdir(parents=True)
    (tmp_path / "runs" / "other" / "recipe.toml").write_text('name = "other"\n')
    code = cli.main(["chat", "nosuchrun", "--runs-dir", str(tmp_path / "runs"), "--prompt", "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'nosuchrun' is not a run, a model folder or a hub id" in err
    assert "runs in" in err and "other" in err


def test_cli_unfinished_run_says_training_has_not_finished(tmp_path, tiny_model_dir, capsys):
    from tuitune.core.recipe import new_recipe, save_recipe

    run = tmp_path / "runs" / "halfway"
    recipe = new_recipe("lora", str(tiny_model_dir))
    recipe.name = "halfway"
    save_recipe(recipe, run / "recipe.toml")
    (run / "status.json").write_text(json.dumps({"status": "training", "step": 3, "max_steps": 10}))
    code = cli.main(["chat", str(run), "--prompt", "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert "run 'halfway' has no adapter/ yet: training has not finished (status: training, step 3/10)" in err
    assert f"tuitune train --resume {run}" in err  # no trainer holds it: the hint is a command that works


def test_cli_broken_run_recipe_names_the_file_and_key(tmp_path, capsys):
    run = tmp_path / "broken"
    run.mkdir()
    (run / "recipe.toml").write_text('name = "broken"\n[lora]\nr = 0\n')
    code = cli.main(["chat", str(run), "--prompt", "hi"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{run / 'recipe.toml'}: lora.r: 0 is out of range (an integer 1..4096)" in err


def test_cli_compare_with_a_plain_model_is_refused(tiny_model_dir, capsys):
    code = cli.main(["chat", str(tiny_model_dir), "--compare", "--prompt", "hi"])
    assert code == 2
    assert "--compare needs a run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--temperature", "-0.5"], "argument --temperature: -0.5 is negative"),
        (["--top-p", "1.5"], "argument --top-p: 1.5 is outside (0, 1]"),
        (["--max-new-tokens", "zero"], "argument --max-new-tokens: 'zero' is not a whole number"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_flags_exit_2_with_the_reason(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["chat", "x", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_in_a_fresh_process_prints_no_traceback(runs, tmp_path):
    bad = subprocess.run(
        [sys.executable, "-m", "tuitune", "chat", "missing-run", "--runs-dir", str(tmp_path), "--prompt", "hi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and bad.stderr.startswith("error: 'missing-run' is not a run")

    good = subprocess.run(
        [sys.executable, "-m", "tuitune", "chat", str(runs.get("lora")), "--prompt", MEMORY_PROMPT, "--temperature", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == MEMORY_ANSWER
    assert "Warning" not in good.stderr and "Traceback" not in good.stderr
