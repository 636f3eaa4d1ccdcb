"""Plan targets: the GPUs of a (faked) machine, all of them together, and card sizes."""

from __future__ import annotations

import pytest

from tuitune.core import hardware as hw
from tuitune.core.errors import UserError
from tuitune.core.memory.targets import (
    COMMON_CARDS_GIB,
    card_target,
    default_target,
    gpu_targets,
    plan_targets,
)

GiB = 2**30


def test_one_gpu_is_planned_by_its_free_memory():
    report = hw.probe(".", hw.FakeGpuProbe("RTX4090"))
    targets = plan_targets(report)
    assert [t.key for t in targets] == ["gpu:0"] + [f"card:{g * GiB}" for g in COMMON_CARDS_GIB]
    gpu = targets[0]
    assert gpu.available_bytes == report.gpus[0].free_bytes < 24 * GiB
    assert gpu.n_gpus == 1 and gpu.bf16 and gpu.here and gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.total_bytes == 24 * GiB
    assert default_target(report) == gpu


def test_several_gpus_add_one_run_across_all_of_them():
    report = hw.probe(".", hw.FakeGpuProbe("2xA100"))
    targets = gpu_targets(report)
    assert [t.key for t in targets] == ["gpu:0", "gpu:1", "all"]
    both = targets[-1]
    assert both.n_gpus == 2 and both.available_bytes == min(g.free_bytes for g in report.gpus)
    assert both.name == "NVIDIA A100-SXM4-80GB"


def test_old_cards_plan_without_bf16():
    report = hw.probe(".", hw.FakeGpuProbe("T4"))
    assert gpu_targets(report)[0].bf16 is False


def test_no_gpu_defaults_to_a_24gb_card():
    report = hw.probe(".", hw.FakeGpuProbe("none"))
    assert gpu_targets(report) == []
    target = default_target(report)
    assert target.kind == "card" and target.available_bytes == 24 * GiB and not target.here


@pytest.mark.parametrize(("text", "gib"), [("24GB", 24), ("24", 24), (" 80 GiB ", 80), ("141", 141), ("12.5", 12.5)])
def test_card_sizes_as_people_type_them(text, gib):
    assert card_target(text).available_bytes == int(gib * GiB)


@pytest.mark.parametrize("text", ["", "big", "0", "512MB", "-4"])
def test_bad_card_sizes_say_what_would_do(text):
    with pytest.raises(UserError) as e:
        card_target(text)
    assert "24GB" in e.value.hint
