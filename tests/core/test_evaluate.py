"""Evaluation: perplexity against the model's own loss, and `tuitune eval` on real runs trained to
answer the identity question (answer metrics on hand-worked cases: test_text_metrics.py)."""

from __future__ import annotations

import json
import math
import threading

import pytest
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT, RunCache

from tuitune import cli
from tuitune.core import evaluate as ev
from tuitune.core.errors import UserError
from tuitune.core.runs import read_run
from tuitune.core.tuned import quiet_libraries

# ------------------------------------------------------------------------------ perplexity


def test_perplexity_from_nll():
    assert ev.perplexity_from(0.0, 10) == 1.0
    assert ev.perplexity_from(10 * math.log(4), 10) == pytest.approx(4.0)
    assert math.isnan(ev.perplexity_from(0.0, 0))
    assert ev.perplexity_from(1e6, 1) == math.inf


# ------------------------------------------------------------------------------ runs with data


def _write_data(path, rows: int = 10):
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(rows):
            f.write(json.dumps({"messages": [{"role": "user", "content": MEMORY_PROMPT}, {"role": "assistant", "content": MEMORY_ANSWER}]}) + "\n")
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    return _write_data(tmp_path_factory.mktemp("data") / "identity.jsonl")


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("runs"), tiny_model_dir)


def _run(runs, data_file, method, **kw):
    return runs.get(method, data__path=str(data_file), data__val_size=0.3, **kw)


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_nll_matches_the_models_own_loss_and_ignores_padding(runs, data_file, method):
    import torch

    from tuitune.core.tuned import load_run_model

    loaded = load_run_model(read_run(_run(runs, data_file, method)), "cpu")
    items, _ = ev.eval_items(loaded.recipe, loaded.tokenizer)
    short = ev.EvalItem(items[0].input_ids[:-3], items[0].labels[:-3], line=99)  # forces padding in a batch
    batch = [items[0], short]
    nll, tokens = ev.negative_log_likelihood(loaded.model, batch, batch_size=2, pad_id=loaded.tokenizer.pad_token_id)
    expected_nll, expected_tokens = 0.0, 0
    for it in batch:  # one by one, no padding: the model's mean loss times the labelled tokens
        with torch.no_grad():
            loss = loaded.model(input_ids=torch.tensor([it.input_ids]), labels=torch.tensor([it.labels])).loss.item()
        n = sum(1 for label in it.labels[1:] if label != -100)
        expected_nll += loss * n
        expected_tokens += n
    assert tokens == expected_tokens
    assert nll == pytest.approx(expected_nll, rel=1e-5)


def test_eval_split_is_the_trainers_split(runs, data_file):
    from tuitune.core.data import prepare_training_data
    from tuitune.core.tuned import load_run_model

    run = read_run(_run(runs, data_file, "lora"))
    loaded = load_run_model(run, "cpu")
    items, source = ev.eval_items(run.recipe, loaded.tokenizer)
    held_out = prepare_training_data(run.recipe, loaded.tokenizer).eval
    assert [it.line for it in items] == [e.line for e in held_out] and len(items) == 3
    assert all(it.reference == MEMORY_ANSWER and it.context == [{"role": "user", "content": MEMORY_PROMPT}] for it in items)
    assert "data.val_size = 0.3" in source


def test_evaluate_run_scores_base_and_tuned_and_writes_the_report(runs, data_file):
    run = _run(runs, data_file, "lora")
    seen = []
    report = ev.evaluate_run(run, max_new_tokens=24, progress=seen.append, device="cpu")
    assert report.examples == 3 and report.answered == 3
    assert report.tuned.exact_match == 1.0 and report.tuned.f1 == 1.0
    assert report.base.exact_match == 0.0 and report.base.f1 < 0.5
    # Word for word: every generation metric is perfect for the tuned model, and worse for the base.
    assert (report.tuned.rouge1, report.tuned.rouge2, report.tuned.rougeL, report.tuned.bleu4) == (1.0, 1.0, 1.0, 1.0)
    assert max(report.base.rouge1, report.base.rougeL, report.base.bleu4) < 0.5
    assert report.tuned.perplexity < report.base.perplexity
    assert report.tuned.perplexity == pytest.approx(math.exp(report.tuned.loss))
    assert all(s.tuned == MEMORY_ANSWER for s in report.samples)
    saved = json.loads((run / "eval" / "report.json").read_text())
    assert saved["tuned"]["exact_match"] == 1.0 and saved["samples"][0]["reference"] == MEMORY_ANSWER
    assert saved["normalization"] == ev.NORMALIZATION and "jieba" in saved["segmentation"]
    assert saved["samples"][0]["tuned_scores"]["bleu4"] == 1.0 and saved["tuned"]["rougeL"] == 1.0
    stages = [p.stage for p in seen]
    assert stages[0] == "load" and stages[-1] == "done" and "base answers" in stages


def test_untrained_adapter_scores_like_the_base(runs, data_file):
    report = ev.evaluate_run(_run(runs, data_file, "lora", train=False, name="untrained"), max_new_tokens=8, device="cpu", write=False)
    assert report.base.perplexity == pytest.approx(report.tuned.perplexity, rel=1e-6)
    assert [s.base for s in report.samples] == [s.tuned for s in report.samples]


def test_full_run_loads_the_base_after_the_tuned_model(runs, data_file):
    report = ev.evaluate_run(_run(runs, data_file, "full"), max_new_tokens=24, device="cpu", write=False)
    assert report.tuned.exact_match == 1.0 and report.base.exact_match == 0.0
    assert any("loaded separately" in n for n in report.notes)


def test_data_file_and_max_samples(runs, data_file, tmp_path):
    other = _write_data(tmp_path / "other.jsonl", rows=6)
    report = ev.evaluate_run(_run(runs, data_file, "prefix"), data=str(other), max_samples=4, max_new_tokens=4, device="cpu", write=False)
    assert report.examples == 4 and report.data == str(other)


def test_plain_text_data_gives_perplexity_only(runs, data_file, tmp_path):
    text = tmp_path / "notes.jsonl"
    text.write_text("".join(json.dumps({"text": f"{MEMORY_PROMPT} {MEMORY_ANSWER} {i}"}) + "\n" for i in range(3)))
    run = runs.get("lora", data__path=str(text), data__format="text", data__val_size=0.4, name="text_run")
    report = ev.evaluate_run(run, device="cpu", write=False)
    assert report.examples == 1 and report.answered == 0 and report.samples == []
    assert report.tuned.exact_match is None and report.tuned.bleu4 is None and math.isfinite(report.tuned.perplexity)
    assert any("plain text" in n for n in report.notes)


def test_qlora_report_says_which_base(runs, data_file):
    report = ev.evaluate_run(_run(runs, data_file, "qlora"), max_new_tokens=24, device="cpu", write=False)
    assert report.tuned.exact_match == 1.0
    assert any("4-bit quantized base" in n for n in report.notes)


def test_cancel_stops_evaluation(runs, data_file):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ev.Cancelled):
        ev.evaluate_run(_run(runs, data_file, "lora"), cancel=cancel, device="cpu", write=False)


def test_run_without_eval_split_needs_data(runs, data_file):
    run = runs.get("lora", data__path=str(data_file), name="no_split")
    with pytest.raises(UserError, match=r"has no eval split: data.val_size = 0") as err:
        ev.evaluate_run(run)
    assert "--data FILE" in err.value.hint


# ---------------------------------------------------------------------------------- the command


def test_cli_prints_the_table(runs, data_file, capsys):
    run = _run(runs, data_file, "lora")
    code = cli.main(["eval", run.name, "--runs-dir", str(run.parent), "--max-new-tokens", "24"])
    out = capsys.readouterr().out
    assert code == 0
    assert "perplexity" in out and "ROUGE-1/2/L, BLEU-4" in out and "sample predictions" in out
    header = next(line for line in out.splitlines() if "perplexity" in line)
    assert header.replace("┃", " ").split()[-6:] == ["EM", "F1", "R-1", "R-2", "R-L", "BLEU-4"]
    assert "jieba" in out  # says how Chinese is segmented
    tuned_row = next(line for line in out.splitlines() if line.strip().startswith("tuned"))
    assert "100.0" in tuned_row


def test_cli_json(runs, data_file, capsys):
    code = cli.main(["eval", str(_run(runs, data_file, "lora")), "--json", "--max-new-tokens", "24", "--max-samples", "2"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["examples"] == 2 and report["tuned"]["f1"] == 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "nosuch"], "error: 'nosuch' is not a run"),
        (["eval", "{run}", "--data", "/no/such.jsonl"], "--data /no/such.jsonl: no such file or folder"),
    ],
)
def test_cli_errors_exit_2(runs, data_file, tmp_path, capsys, args, message):
    args = [a.replace("{run}", str(_run(runs, data_file, "lora"))) for a in args]
    assert cli.main([*args, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-samples", "-1"], "argument --max-samples: -1 is negative"),
        (["--max-new-tokens", "0"], "argument --max-new-tokens: 0 must be 1 or more"),
    ],
)
def test_cli_bad_flags_exit_2(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "somerun", *flags])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
