"""Several recipes trained together on one base (engine.together): each job learns what it learns alone.

Two jobs differ in rank, target modules, data, batch size, gradient accumulation, learning rate
and seed. Trained alone (the engine's own session) and together (both schedules) in this process,
each job's logged losses must match: round-robin runs the very same computation per job (also with
dropout, whose masks come from each job's own RNG), fused stacks both jobs' rows into one forward.
"""

from __future__ import annotations

import threading

import pytest
import torch
from engine_support import FACTS, events, status, write_jsonl, write_recipe

from tuitune.core.engine.prepare import prepare_run
from tuitune.core.engine.session import train_run
from tuitune.core.engine.together.plan import check_together, group_members, prepare_group
from tuitune.core.engine.together.session import train_group
from tuitune.core.engine.together.turns import Turns
from tuitune.core.errors import UserError
from tuitune.core.recipe import load_recipe
from tuitune.core.runs import RunDirectory, list_runs

MORE = [
    ("What is the best fruit?", "The best fruit is a ripe mango."),
    ("How many legs has a spider?", "A spider has eight legs."),
    ("Name a cold place.", "Antarctica is very cold."),
    ("What do owls eat?", "Owls eat mice and insects."),
    ("Say hi in Spanish.", "Hola."),
]


def two_recipes(root, model_dir, runs, dropout=0.0, max_steps=None, **train):
    """Job a: rank 4 on q/v, batch 2 x accumulation 2; job b: rank 8 on q/v/o, batch 3, other data."""
    a_data = write_jsonl(root / "a.jsonl", FACTS, repeat=3)
    b_data = write_jsonl(root / "b.jsonl", MORE, repeat=3)
    a = write_recipe(root / "a.toml", model_dir, a_data, runs, "a",
                     lora={"r": 4, "dropout": dropout, "target_modules": ["q_proj", "v_proj"]},
                     train={"max_steps": max_steps or 6, "logging_steps": 1, "seed": 3, "learning_rate": 3e-3,
                            "gradient_accumulation": 2, **train})
    b = write_recipe(root / "b.toml", model_dir, b_data, runs, "b",
                     lora={"r": 8, "dropout": dropout, "target_modules": ["q_proj", "v_proj", "o_proj"]},
                     train={"max_steps": max_steps or 8, "logging_steps": 1, "seed": 11, "learning_rate": 2e-3,
                            "batch_size": 3,
                            **train})
    return [load_recipe(p)[0] for p in (a, b)]


def losses(run: RunDirectory) -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in events(run.path, "step")]


def train_alone(root, model_dir, dropout):
    runs = []
    for recipe in two_recipes(root, model_dir, root / "runs", dropout):
        run = prepare_run(recipe)
        assert train_run(run.path) == 0
        runs.append(run)
    return runs


@pytest.fixture(scope="module")
def alone(model_dir, tmp_path_factory):
    """The two recipes each trained alone, without and with dropout."""
    return {d: train_alone(tmp_path_factory.mktemp(f"alone-{d}"), model_dir, d) for d in (0.0, 0.1)}


@pytest.mark.parametrize(("schedule", "dropout"), [("fused", 0.0), ("round-robin", 0.1)])
def test_each_job_trains_as_it_would_alone(schedule, dropout, alone, model_dir, tmp_path):
    plan = check_together(two_recipes(tmp_path, model_dir, tmp_path / "runs", dropout), schedule)
    runs = prepare_group(plan)
    assert train_group([str(r.path) for r in runs]) == 0
    for solo, grouped in zip(alone[dropout], runs, strict=True):
        expected, got = losses(solo), losses(grouped)
        assert [s for s, _ in got] == [s for s, _ in expected] and len(got) == grouped.recipe.train.max_steps
        assert [x for _, x in got] == pytest.approx([x for _, x in expected], rel=1e-4, abs=1e-5), grouped.name
        st = status(grouped.path)
        assert st["status"] == "done" and st["group"] == {"name": "a+b", "runs": [str(r.path.resolve()) for r in runs],
                                                          "schedule": schedule}
        # The result is a run's ordinary adapter: the same files and (nearly) the same weights as alone.
        from safetensors.torch import load_file

        mine, theirs = (load_file(r.adapter_dir / "adapter_model.safetensors") for r in (grouped, solo))
        assert sorted(mine) == sorted(theirs)
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key], rtol=1e-3, atol=1e-5)
        start = events(grouped.path, "start")[0]
        assert start["trainable_params"] == events(solo.path, "start")[0]["trainable_params"]
    summaries = {s.name: s for s in list_runs(tmp_path / "runs")}
    assert summaries["a"].group == summaries["b"].group == "a+b"
    assert [m.name for m in group_members(runs[1])] == ["a", "b"]


def test_a_job_that_fails_leaves_the_others_training(model_dir, tmp_path):
    a, b = two_recipes(tmp_path, model_dir, tmp_path / "runs")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"messages": []}\n')
    b.data.path = str(empty)
    runs = prepare_group(check_together([a, b]))
    assert train_group([str(r.path) for r in runs]) == 2  # the worst outcome: a data problem
    assert status(runs[0].path)["status"] == "done" and runs[0].has_result()
    st = status(runs[1].path)
    assert st["status"] == "failed" and "no usable" in st["error"] and str(empty) in st["error"]
    assert events(runs[1].path, "error")[-1]["kind"] == "data"


def test_recipes_that_cannot_share_a_base_are_refused_naming_recipe_and_key(model_dir, tmp_path):
    a, b = two_recipes(tmp_path, model_dir, tmp_path / "runs")
    check_together([a, b])  # they can

    def refused(change, *words):
        other = b.copy()
        other.source = tmp_path / "b.toml"
        change(other)
        with pytest.raises(UserError) as e:
            check_together([a, other])
        for w in ("b.toml", *words):
            assert w in str(e.value), str(e.value)
        return e.value

    refused(lambda r: setattr(r.model, "dtype", "bfloat16"), "model.dtype", "a.toml")
    refused(lambda r: setattr(r.model, "name_or_path", str(tmp_path)), "model.name_or_path")
    refused(lambda r: setattr(r.train, "gradient_checkpointing", not a.train.gradient_checkpointing),
            "train.gradient_checkpointing")
    refused(lambda r: setattr(r.method, "type", "qlora"), "method.type")
    err = refused(lambda r: setattr(r.method, "type", "prefix"), "prefix", "lora or qlora")
    assert "alone" in err.hint
    refused(lambda r: setattr(r, "name", "a"), "a.toml", "would both write")
    with pytest.raises(UserError, match="at least two"):
        check_together([a])


def test_quantization_must_agree_for_qlora(model_dir, tmp_path):
    a, b = two_recipes(tmp_path, model_dir, tmp_path / "runs")
    for r in (a, b):
        r.method.type = "qlora"
    check_together([a, b])
    b.quantization.bits = 8
    with pytest.raises(UserError, match="quantization.bits"):
        check_together([a, b])


# ---- turns: who runs when


class Job:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def run_threads(turns, jobs, body):
    threads = [threading.Thread(target=lambda j=j: (turns.begin(j), body(j), turns.leave(j))) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
        assert not t.is_alive(), "a job thread is stuck"


def test_round_robin_gives_one_step_each_in_order_and_skips_finished_jobs():
    jobs = [Job("a"), Job("b"), Job("c")]
    log, switches = [], []
    turns = Turns(jobs, switch=lambda old, new: switches.append((old, new)))
    steps = {"a": 3, "b": 1, "c": 2}

    def body(job):
        for i in range(steps[job.name]):
            log.append(f"{job.name}{i}")
            turns.pass_turn(job)

    run_threads(turns, jobs, body)
    assert log == ["a0", "b0", "c0", "a1", "c1", "a2"]
    # Every turn change says who stops and who starts, so the group can move RNG and gradients.
    assert switches[0] == (None, jobs[0]) and all(new is not None or old is not None for old, new in switches)


def test_fused_runs_every_parked_batch_at_once_and_hands_each_job_its_result():
    jobs = [Job("a"), Job("b"), Job("c")]
    fused = []

    def fuse(batch):
        fused.append([(j.name, x) for j, x in batch])
        return {j: x * 10 for j, x in batch}

    turns = Turns(jobs, fuse=fuse)
    got = {j.name: [] for j in jobs}
    counts = {"a": 2, "b": 3, "c": 1}

    def body(job):
        for i in range(counts[job.name]):
            got[job.name].append(turns.park(job, i + 1))

    run_threads(turns, jobs, body)
    assert fused == [[("a", 1), ("b", 1), ("c", 1)], [("a", 2), ("b", 2)], [("b", 3)]]
    assert got == {"a": [10, 20], "b": [10, 20, 30], "c": [10]}


def test_a_failed_fused_step_fails_every_job_in_it():
    jobs = [Job("a"), Job("b")]

    def fuse(batch):
        raise torch.OutOfMemoryError("out of memory")

    turns = Turns(jobs, fuse=fuse)
    errors = {}

    def body(job):
        try:
            turns.park(job, 1)
        except torch.OutOfMemoryError as e:
            errors[job.name] = str(e)

    run_threads(turns, jobs, body)
    assert errors == {"a": "out of memory", "b": "out of memory"}


@pytest.mark.parametrize("variant", ["dora+rslora", "qlora"])
def test_dora_and_qlora_jobs_fused_train_as_alone(variant, model_dir, tmp_path):
    """DoRA goes through peft's own per-adapter code on its rows; QLoRA shares one 4-bit base."""
    recipes = two_recipes(tmp_path, model_dir, tmp_path / "runs", max_steps=4)
    if variant == "qlora":
        for r in recipes:
            r.method.type = "qlora"
    else:
        recipes[1].lora.use_dora = recipes[1].lora.use_rslora = True
    alone = []
    for r in recipes:
        solo = r.copy()
        solo.output.runs_dir = str(tmp_path / "alone")
        run = prepare_run(solo)
        assert train_run(run.path) == 0
        alone.append(run)
    runs = prepare_group(check_together(recipes, "fused"))
    assert train_group([str(r.path) for r in runs]) == 0
    for solo, grouped in zip(alone, runs, strict=True):
        assert [x for _, x in losses(grouped)] == pytest.approx([x for _, x in losses(solo)], rel=1e-3, abs=1e-4)
        assert grouped.has_result()
