"""Answers while training: `sample` events at eval.sample_every steps and at the last one, from the
prompts the recipe names (or held-out ones, or the demo's identity questions), with the cost in the
log, and training itself unchanged by them. Real (short) runs of the tiny model in this process."""

from __future__ import annotations

import pytest
from engine_support import FACTS, events, write_jsonl, write_recipe

from tuitune.core.data import split_indices
from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.samples import IDENTITY_QUESTIONS, SAMPLE_MAX_NEW_TOKENS
from tuitune.core.engine.session import train_run
from tuitune.core.events import event_markup
from tuitune.core.recipe import load_recipe
from tuitune.core.runs.history import RunHistory


def train(tmp_path, model_dir, name="s", data_name=None, repeat=3, **sections):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / (data_name or f"{name}.jsonl"), FACTS, repeat=repeat)
    recipe_file = write_recipe(tmp_path / f"{name}.toml", model_dir, data, tmp_path / "runs", name, "lora", **sections)
    recipe, problems = load_recipe(recipe_file)
    assert not problems, problems
    run = prepare_run(recipe)
    return train_run(run.path), run, recipe


def test_held_out_prompts_answered_every_n_steps_and_at_the_end(model_dir, tmp_path):
    code, run, recipe = train(tmp_path, model_dir, data={"val_size": 0.25},
                              train={"max_steps": 10}, eval={"sample_every": 4})
    assert code == 0
    samples = events(run.path, "sample")
    # 12 rows, a quarter held out: the eval split's 3 questions, at steps 4, 8 and the last (10).
    _, held = split_indices(12, 0.25, recipe.train.seed)
    questions = [(FACTS * 3)[i][0] for i in held]
    assert [(e["step"], e["prompt"]) for e in samples] == [(s, q) for s in (4, 8, 10) for q in questions]
    assert all(isinstance(e["answer"], str) for e in samples)
    logs = [e["message"] for e in events(run.path, "log")]
    assert any("sample answers every 4 steps to 3 prompt(s): the first held-out prompts" in m for m in logs)
    costs = [m for m in logs if m.startswith("sample answers at step")]
    assert len(costs) == 3 and f"up to {SAMPLE_MAX_NEW_TOKENS} new tokens each" in costs[0] and " s" in costs[0]

    # The last samples are what the finished model says: greedy, prompted as chat prompts it.
    from tuitune.core.chat import ChatSession, GenerationSettings

    session = ChatSession.open(str(run.path), runs_dir=tmp_path / "runs", device="cpu")
    greedy = GenerationSettings(temperature=0, max_new_tokens=SAMPLE_MAX_NEW_TOKENS)
    for e in samples[-3:]:
        assert e["answer"] == session.reply([{"role": "user", "content": e["prompt"]}], greedy).strip()


def test_samples_leave_training_exactly_as_it_was(model_dir, tmp_path):
    """Greedy answers in eval mode draw no random numbers: with LoRA dropout on, the losses match."""
    lora = {"dropout": 0.1}
    _, quiet, _ = train(tmp_path / "a", model_dir, lora=lora, train={"max_steps": 8, "logging_steps": 1}, eval={"sample_every": 0})
    _, sampled, _ = train(tmp_path / "b", model_dir, lora=lora, train={"max_steps": 8, "logging_steps": 1}, eval={"sample_every": 2})
    assert events(quiet.path, "sample") == [] and len(events(sampled.path, "sample")) == 4 * 3
    assert [e["loss"] for e in events(quiet.path, "step")] == [e["loss"] for e in events(sampled.path, "step")]


def test_prompts_named_in_the_recipe(model_dir, tmp_path):
    prompts = ["Where do you live?", "你好"]
    code, run, _ = train(tmp_path, model_dir, train={"max_steps": 3}, eval={"sample_every": 100, "sample_prompts": prompts})
    assert code == 0
    assert [(e["step"], e["prompt"]) for e in events(run.path, "sample")] == [(3, p) for p in prompts]  # the last step
    assert any("eval.sample_prompts" in e["message"] for e in events(run.path, "log"))


def test_demo_data_gets_its_identity_questions_and_no_split_the_first_prompts(model_dir, tmp_path):
    _, demo, _ = train(tmp_path / "demo", model_dir, data_name="identity.jsonl", train={"max_steps": 2}, eval={"sample_every": 2})
    assert [e["prompt"] for e in events(demo.path, "sample")] == IDENTITY_QUESTIONS["identity.jsonl"]
    _, plain, _ = train(tmp_path / "plain", model_dir, train={"max_steps": 2}, eval={"sample_every": 2})
    assert [e["prompt"] for e in events(plain.path, "sample")] == [q for q, _ in FACTS[:3]]
    assert any("the first training prompts (no eval split)" in e["message"] for e in events(plain.path, "log"))


def test_history_keeps_the_latest_answer_per_prompt_and_the_cli_prints_them():
    history = RunHistory()
    history.add([
        {"type": "start", "time": 0.0, "resumed_from": None},
        {"type": "sample", "time": 1.0, "step": 4, "prompt": "Who are you?", "answer": "a"},
        {"type": "sample", "time": 1.0, "step": 4, "prompt": "Who made you?", "answer": "b"},
        {"type": "sample", "time": 2.0, "step": 8, "prompt": "Who are you?", "answer": "I am Tally."},
    ])
    assert [(s["prompt"], s["step"], s["answer"]) for s in history.samples.values()] == [
        ("Who are you?", 8, "I am Tally."), ("Who made you?", 4, "b")
    ]
    history.add([{"type": "start", "time": 3.0, "resumed_from": 5}])  # resumed from step 5's checkpoint
    assert [(s["prompt"], s["step"]) for s in history.samples.values()] == [("Who made you?", 4)]
    line = event_markup({"type": "sample", "time": 0.0, "step": 8, "prompt": "Who are you?", "answer": "I am\n Tally."})
    assert "sample" in line and "step 8" in line and "Who are you?" in line and "I am Tally." in line


def test_runs_watch_prints_the_answers(model_dir, tmp_path, capsys):
    from tuitune import cli

    code, run, _ = train(tmp_path, model_dir, train={"max_steps": 2}, eval={"sample_every": 1, "sample_prompts": ["Who made you?"]})
    assert code == 0
    assert cli.main(["runs", "watch", run.path.name, "--runs-dir", str(run.path.parent)]) == 0
    out = capsys.readouterr().out
    watched = [line for line in out.splitlines() if " sample step " in line]
    answers = [e["answer"] for e in events(run.path, "sample")]
    assert len(watched) == 2 and "step 1" in watched[0] and "Who made you?" in watched[1]
    for line, answer in zip(watched, answers, strict=True):
        assert " ".join(answer.split())[:40] in line  # folded to one line


@pytest.mark.parametrize(
    "toml, problem",
    [
        ('[eval]\nsample_prompts = ["Who are you?", "你是谁？"]\nsample_every = 50\n', None),
        ('[eval]\nsample_prompts = "auto"\n', None),
        ('[eval]\nsample_prompts = []\n', "eval.sample_prompts"),
        ('[eval]\nsample_prompts = "some"\n', "eval.sample_prompts"),
        ('[eval]\nsample_every = -1\n', "eval.sample_every"),
        ('[eval]\nsample_evry = 5\n', "sample_evry"),
    ],
)
def test_recipe_keys(tmp_path, toml, problem):
    path = tmp_path / "r.toml"
    path.write_text('name = "r"\n' + toml, encoding="utf-8")
    recipe, problems = load_recipe(path)
    if problem is None:
        assert problems == [] and recipe.eval.sample_prompts in (["Who are you?", "你是谁？"], "auto")
    else:
        assert [p.key for p in problems] and problem in problems[0].format()


def test_guidance_names_the_benchmarks_in_both_languages():
    from tuitune.core.recipe import FIELDS

    spec = FIELDS["eval.sample_every"]
    assert "C-Eval" in spec.text("en") and "CMMLU" in spec.text("en")
    assert "C-Eval" in spec.text("zh") and "基准测试" in spec.text("zh")
    assert "身份问题" in FIELDS["eval.sample_prompts"].text("zh")
