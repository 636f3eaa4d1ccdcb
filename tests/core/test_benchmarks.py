"""Benchmarks through lm-eval, for real: the tests' own lm-eval tasks (YAML over local JSONL, one
multiple choice, one generation) scored on tiny runs that memorized "Who are you?", base vs tuned
in one process. No network: HF_HUB_OFFLINE=1 and local data files only."""

from __future__ import annotations

import json
import math
import threading

import pytest
from benchmark_tasks import write_tasks
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT, RunCache

from tuitune import cli
from tuitune.core import benchmarks as bm
from tuitune.core.errors import UserError
from tuitune.core.evaluate import Cancelled
from tuitune.core.runs import read_run
from tuitune.core.tuned import quiet_libraries

TASKS = ["tally_mc", "tally_gen"]


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> RunCache:
    quiet_libraries()
    return RunCache(tmp_path_factory.mktemp("bench-runs"), tiny_model_dir)


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory):
    return write_tasks(tmp_path_factory.mktemp("tasks"))


def _by_task(report) -> dict[str, bm.MetricScore]:
    return {t.task: t.primary for t in report.tasks}


def test_parse_task_names():
    assert bm.parse_task_names("mmlu, cmmlu,ceval-valid  gsm8k,mmlu") == ["mmlu", "cmmlu", "ceval-valid", "gsm8k"]
    assert bm.parse_task_names(["mmlu,gsm8k", "gsm8k"]) == ["mmlu", "gsm8k"]
    assert bm.parse_task_names(" , ") == []


def test_lora_run_before_and_after(runs, tasks_dir):
    run = runs.get("lora")
    seen = []
    report = bm.run_benchmarks(run, TASKS, include=[str(tasks_dir)], progress=seen.append, device="cpu")
    scores = _by_task(report)
    assert [t.task for t in report.tasks] == TASKS
    # The tuned model picks the memorized answer among variants one word apart, wherever it stands.
    assert (scores["tally_mc"].metric, scores["tally_mc"].tuned) == ("acc", 1.0)
    # It answers the memorized sentence every time: 3 of the 4 references; the base never does.
    gen = scores["tally_gen"]
    assert (gen.metric, gen.filter) == ("exact_match", "none")
    assert gen.tuned == pytest.approx(0.75) and gen.tuned_stderr == pytest.approx(0.25)
    assert gen.base == 0.0 and gen.change == pytest.approx(0.75)
    assert all(t.samples == 4 and t.fewshot == 0 and t.subtasks == 0 for t in report.tasks)
    assert report.chat_prompts and report.notes == []

    saved = json.loads((run / "eval" / "benchmarks.json").read_text())
    assert saved["path"] == report.path and saved["tasks"][1]["metrics"][0]["tuned"] == pytest.approx(0.75)
    assert saved["tasks"][1]["metrics"][0]["change"] == pytest.approx(0.75)
    assert saved["raw"]["tuned"]["results"]["tally_gen"]["exact_match,none"] == pytest.approx(0.75)  # lm-eval's own
    assert saved["raw"]["base"]["n-samples"]["tally_mc"]["effective"] == 4
    stages = [p.stage for p in seen]
    assert stages[0] == "tasks" and stages[-1] == "done"
    assert stages.index("tuned loglikelihood") < stages.index("base loglikelihood")
    assert "base generate" in stages
    last = [p for p in seen if p.stage == "base generate"][-1]
    assert (last.done, last.total) == (4, 4)


def test_untrained_adapter_scores_like_its_base(runs, tasks_dir):
    """LoRA starts with B = 0: switched on or off, the same model, so every figure must match."""
    run = runs.get("lora", train=False, name="untrained")
    report = bm.run_benchmarks(run, TASKS, include=[str(tasks_dir)], device="cpu", write=False)
    for task in report.tasks:
        for m in task.metrics:
            assert m.base == m.tuned and m.base_stderr == m.tuned_stderr, task.task


def test_full_run_loads_its_base_separately(runs, tasks_dir):
    report = bm.run_benchmarks(runs.get("full"), ["tally_gen"], include=[str(tasks_dir)], device="cpu", write=False)
    gen = report.tasks[0].primary
    assert gen.tuned == pytest.approx(0.75) and gen.base == 0.0
    assert any("loaded separately" in n for n in report.notes)


def test_limit_and_fewshot(runs, tasks_dir):
    report = bm.run_benchmarks(
        runs.get("lora"), ["tally_mc"], include=[str(tasks_dir)], limit=2, num_fewshot=1, device="cpu", write=False
    )
    task = report.tasks[0]
    assert (task.samples, task.fewshot) == (2, 1)
    assert report.raw["tuned"]["n-shot"]["tally_mc"] == 1
    assert any("at most 2 examples" in n for n in report.notes)


def test_plain_prompts_miss_what_the_run_learned(runs, tasks_dir):
    """Without the chat template the prompt is not what the adapter was trained on."""
    report = bm.run_benchmarks(
        runs.get("lora"), ["tally_gen"], include=[str(tasks_dir)], chat_prompts=False, device="cpu", write=False
    )
    assert report.tasks[0].primary.tuned == 0.0 and not report.chat_prompts


@pytest.mark.parametrize("method", ["lora", "prompt"])
def test_loglikelihood_matches_the_models_own_loss(runs, method):
    """lm-eval's loglikelihood through RunLM equals the run's own per-token loss (evaluate.py's, which
    skips a prompt-tuning model's virtual tokens), with the adapter on and off."""
    from lm_eval.api.instance import Instance

    from tuitune.core.benchmark_lm import RunLM
    from tuitune.core.evaluate import EvalItem, negative_log_likelihood
    from tuitune.core.tuned import load_run_model

    loaded = load_run_model(read_run(runs.get(method)), "cpu")
    lm = RunLM(loaded, batch_size=2)
    context = lm.apply_chat_template([{"role": "user", "content": MEMORY_PROMPT}])
    # lm-eval moves the context's trailing whitespace (the template's newline) into the continuation.
    ctx_ids = loaded.tokenizer(context.rstrip(), add_special_tokens=False)["input_ids"]
    full_ids = loaded.tokenizer(context + MEMORY_ANSWER, add_special_tokens=False)["input_ids"]
    item = EvalItem(full_ids, [-100] * len(ctx_ids) + full_ids[len(ctx_ids):], line=1)
    request = Instance("loglikelihood", {}, (context, MEMORY_ANSWER), 0)
    for use_adapter in (True, False):
        lm.use_adapter = use_adapter
        (logprob, _), = lm.loglikelihood([request])
        ctx = loaded.model.disable_adapter() if not use_adapter else _nothing()
        with ctx:
            nll, tokens = negative_log_likelihood(loaded.model, [item], pad_id=loaded.tokenizer.pad_token_id)
        assert tokens == len(full_ids) - len(ctx_ids)
        assert logprob == pytest.approx(-nll, rel=1e-4), use_adapter


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_chat_prompts_are_the_training_rendering(runs):
    """lm-eval's chat turns go through the run's template and system prompt, like chat and training."""
    from tuitune.core.benchmark_lm import RunLM
    from tuitune.core.chat import ChatSession
    from tuitune.core.tuned import load_run_model

    loaded = load_run_model(read_run(runs.get("lora", data__system="You are Tally.", name="with_system")), "cpu")
    lm = RunLM(loaded)
    messages = [{"role": "user", "content": MEMORY_PROMPT}]
    text = lm.apply_chat_template(messages)
    assert "You are Tally." in text and text.endswith("assistant\n")
    assert loaded.tokenizer(text, add_special_tokens=False)["input_ids"] == ChatSession(loaded).prompt_ids(messages)


def test_cancel_stops_between_batches(runs, tasks_dir):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        bm.run_benchmarks(runs.get("lora"), TASKS, include=[str(tasks_dir)], cancel=cancel, device="cpu", write=False)


# ------------------------------------------------------------------------------ what goes wrong


def test_unknown_task_names_close_ones(tasks_dir):
    with pytest.raises(UserError, match=r"unknown lm-eval task 'tally_mcq'") as err:
        bm.task_manager(["tally_mcq"], [str(tasks_dir)])
    assert "tally_mc" in err.value.hint and "--include DIR" in err.value.hint


def test_hub_task_offline_says_it_is_fetched_on_first_use(runs):
    """Built-in tasks' data comes from the hub on first use; tests run offline, so it cannot."""
    with pytest.raises(UserError, match=r"task 'gsm8k': its data could not be fetched") as err:
        bm.run_benchmarks(runs.get("lora"), ["gsm8k"], device="cpu", write=False)
    assert "on first use" in err.value.hint


def test_missing_include_folder(tmp_path):
    with pytest.raises(UserError, match=r"--include .*/nope: no such folder"):
        bm.task_manager(["x"], [str(tmp_path / "nope")])


# ------------------------------------------------------------------------------ the command


def test_cli_table(runs, tasks_dir, capsys):
    run = runs.get("lora")
    code = cli.main(["eval", run.name, "--runs-dir", str(run.parent), "--tasks", ",".join(TASKS), "--include", str(tasks_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    gen_row = next(line for line in captured.out.splitlines() if line.strip().startswith("tally_gen"))
    assert "exact_match" in gen_row and "0.0000±0.0000" in gen_row and "0.7500±0.2500" in gen_row and "+0.7500" in gen_row
    assert "before (base)" in captured.out and "standard error" in captured.out
    assert "prompts: through the run's chat template" in captured.out
    assert "tuned: generate" in captured.err and "base: loglikelihood" in captured.err


def test_cli_json(runs, tasks_dir, capsys):
    run = runs.get("lora")
    code = cli.main(["eval", str(run), "--tasks", "tally_gen", "--include", str(tasks_dir), "--limit", "3", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    metric = report["tasks"][0]["metrics"][0]
    assert report["limit"] == 3 and report["tasks"][0]["samples"] == 3
    assert metric["tuned"] == 1.0 and metric["base"] == 0.0 and math.isfinite(metric["tuned_stderr"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "5"], "--limit applies to benchmarks only"),
        (["--tasks", "mmlu", "--data", "x.jsonl"], "--data applies to the perplexity and answer evaluation"),
    ],
)
def test_cli_flags_that_do_not_go_together(args, message, capsys):
    assert cli.main(["eval", "somerun", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_bad_limit_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "somerun", "--tasks", "mmlu", "--limit", "0"])
    assert exit_info.value.code == 2
    assert "argument --limit: 0 must be 1 or more" in capsys.readouterr().err


def test_task_files_by_path(runs, tasks_dir):
    """A task YAML named by its path: its task name, its folder indexed."""
    names, include = bm.task_files([str(tasks_dir / "tally_gen.yaml"), "mmlu"], [])
    assert names == ["tally_gen", "mmlu"] and include == [str(tasks_dir.resolve())]
    report = bm.run_benchmarks(runs.get("lora"), str(tasks_dir / "tally_gen.yaml"), limit=2, device="cpu", write=False)
    assert [t.task for t in report.tasks] == ["tally_gen"] and report.tasks[0].primary.tuned == 1.0
    with pytest.raises(UserError, match=r"task file .*nope.yaml: no such file"):
        bm.task_files(["nope.yaml"])


def test_shipped_tally_tasks_load_their_rows_from_any_folder(runs, repo_root, tmp_path, monkeypatch):
    """recipes/tasks/tally reads its JSONL next to the YAML (custom_dataset), whatever the cwd; the
    metric its YAML lists first (acc_norm) heads the row."""
    monkeypatch.chdir(tmp_path)
    include = [str(repo_root / "recipes" / "tasks" / "tally")]
    report = bm.run_benchmarks(runs.get("lora"), "tally_identity,tally_identity_gen", include=include, limit=2,
                               device="cpu", write=False)
    mc, gen = report.tasks
    assert [m.metric for m in mc.metrics] == ["acc_norm", "acc"] and mc.samples == 2
    assert (gen.primary.metric, gen.primary.filter) == ("exact_match", "names-tally")


def test_progress_lines_at_each_stage_and_tenth(capsys):
    from tuitune.commands.eval_benchmarks import stage_printer
    from tuitune.core.progress import Progress

    show = stage_printer()
    for done in range(0, 201):
        show(Progress("tuned loglikelihood", f"tuned: loglikelihood {done}/200", done, 200))
    show(Progress("base loglikelihood", "base: loglikelihood 0/200", 0, 200))
    lines = capsys.readouterr().err.split("\n")
    assert lines[:3] == ["  tuned: loglikelihood 0/200", "  tuned: loglikelihood 20/200", "  tuned: loglikelihood 40/200"]
    assert lines[10:12] == ["  tuned: loglikelihood 200/200", "  base: loglikelihood 0/200"]
