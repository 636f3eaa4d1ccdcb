"""Pictures of every screen at 100x30 (pytest-textual-snapshot). Update with --snapshot-update after
looking at the differences report; see docs/tui.md."""

from __future__ import annotations

import pytest
from conftest import wait_for

from tuitune.tui.screens import MODES

SIZE = (100, 30)


@pytest.fixture(autouse=True)
def fake_24gb_gpu(monkeypatch):
    """Pictures must not depend on the machine: every snapshot sees one faked 24 GB GPU."""
    monkeypatch.setenv("TUITUNE_FAKE_GPU", "24GB")


@pytest.fixture(autouse=True)
def same_machine_in_every_picture(monkeypatch, tmp_path):
    """The Hardware screen shows this machine's CPU, free RAM and disk and the library versions:
    they change from run to run, so pictures (only pictures) pin them. Pilot tests see the real ones."""
    from tuitune.core import hardware as hw

    monkeypatch.setattr(hw, "cpu_info", lambda: hw.CpuInfo("AMD EPYC 7763 64-Core Processor", 16, 32))
    monkeypatch.setattr(hw, "ram_info", lambda: hw.RamInfo(128 * 2**30, 110 * 2**30))
    monkeypatch.setattr(hw, "disk_info", lambda path: hw.DiskInfo("runs", 2048 * 2**30, 1536 * 2**30))
    versions = {"torch": "2.5.1", "transformers": "4.46.3", "peft": "0.13.2", "bitsandbytes": "0.44.1",
                "accelerate": "1.1.1", "datasets": "3.1.0", "textual": "1.0.0", "flash-attn": None}
    monkeypatch.setattr(hw, "library_versions", lambda: dict(versions))
    from huggingface_hub import constants  # an empty hub cache: "in the cache" lines do not vary

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


async def settle(pilot) -> None:
    """Wait until the screen stops changing: the memory panel has answered and workers are done.
    Screens with background work say when they are done with an `is_settled` property."""
    app = pilot.app
    if app.current_mode == "recipe":
        memory, form = app.screen.query_one("#memory"), app.screen.query_one("#recipe-form")
        await wait_for(
            pilot, lambda: memory.last_requested == form.recipe and memory.is_current, what="memory"
        )
    await wait_for(pilot, lambda: getattr(app.screen, "is_settled", True), timeout=30, what="the screen")
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("mode", [m.name for m in MODES])
def test_screen_snapshot(snap_compare, make_app, mode):
    assert snap_compare(make_app(start_mode=mode), terminal_size=SIZE, run_before=settle)


def test_recipe_form_in_chinese(snap_compare, make_app):
    async def focus_rank(pilot):
        pilot.app.screen.query_one("#field-lora-r").editor.focus()
        await settle(pilot)

    assert snap_compare(make_app(lang="zh", start_mode="recipe"), terminal_size=SIZE, run_before=focus_rank)


def test_recipe_form_with_an_error_and_changes(snap_compare, make_app):
    async def edit(pilot):
        pilot.app.screen.query_one("#field-lora-r").editor.focus()
        await pilot.press("end", "ctrl+u", "0")
        await settle(pilot)

    assert snap_compare(make_app(start_mode="recipe"), terminal_size=SIZE, run_before=edit)


def test_hardware_llama_3_8b_qlora_on_a_24gb_card(snap_compare, make_app):
    async def plan(pilot):
        await settle(pilot)
        model = pilot.app.screen.query_one("#field-model-name_or_path").editor
        model.focus()
        await pilot.press("end", "ctrl+u", *"llama-3-8b")
        pilot.app.screen.query_one("#field-method-type").editor.value = "qlora"
        await pilot.pause(0.5)
        await settle(pilot)

    assert snap_compare(make_app(start_mode="hardware"), terminal_size=SIZE, run_before=plan)


def test_dataset_row_as_trained(snap_compare, make_app):
    async def open_row(pilot):
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        masked = pilot.app.screen.query_one("#masked")
        await wait_for(pilot, lambda: masked.preview is not None, timeout=30, what="the rendered row")
        await settle(pilot)

    assert snap_compare(make_app(start_mode="dataset"), terminal_size=SIZE, run_before=open_row)


async def open_data(pilot, path: str) -> None:
    """Type a dataset path into the Dataset screen (enter opens it at once)."""
    await settle(pilot)
    editor = pilot.app.screen.field("data.path").editor
    editor.focus()
    await pilot.press("end", "ctrl+u", *path, "enter")
    await pilot.pause(0.6)
    await settle(pilot)


async def pick_weather_tools(pilot) -> None:
    """A LLaMA-Factory folder: its weather_tools entry (tool calls) picked from the entries."""
    await open_data(pilot, "tests/data/llamafactory")
    pilot.app.screen.query_one("#ds-entries Select").focus()
    await pilot.press("enter", "home", "down", "down", "enter")  # the prompt, qa, weather_tools
    await pilot.pause(0.3)
    await settle(pilot)


def test_dataset_llamafactory_entry_with_tool_calls(snap_compare, make_app):
    assert snap_compare(make_app(start_mode="dataset"), terminal_size=SIZE, run_before=pick_weather_tools)


def test_dataset_tool_row_in_the_fallback_format(snap_compare, make_app):
    async def open_row(pilot):
        await pick_weather_tools(pilot)
        await pilot.press("enter")
        masked = pilot.app.screen.query_one("#masked")
        await wait_for(pilot, lambda: masked.preview is not None, timeout=30, what="the rendered row")
        await settle(pilot)
        pilot.app.screen.query_one("#row-scroll").scroll_end(animate=False)
        await pilot.pause()

    assert snap_compare(make_app(start_mode="dataset"), terminal_size=SIZE, run_before=open_row)


def test_dataset_problems_of_real_world_rows(snap_compare, make_app):
    async def problems(pilot):
        await open_data(pilot, "tests/data/mixed_problems.jsonl")
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(make_app(start_mode="dataset"), terminal_size=SIZE, run_before=problems)


def test_train_finished_run(snap_compare, make_app, tmp_path, monkeypatch, repo_root):
    """A finished run (a recorded tiny run, committed) replayed on the Train screen; --run PATH."""
    import shutil
    import time

    monkeypatch.setenv("TZ", "UTC")  # the log shows clock times
    time.tzset()
    run = tmp_path / "runs" / "finished-demo"
    shutil.copytree(repo_root / "tests" / "data" / "runs" / "finished-demo", run)
    try:
        assert snap_compare(make_app(run="finished-demo"), terminal_size=SIZE, run_before=settle)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_train_group(snap_compare, make_app, tmp_path, monkeypatch):
    """Three runs trained together (written events, made-up numbers): a line and a legend entry each."""
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from group_runs import write_group

    monkeypatch.setenv("TZ", "UTC")  # the log shows clock times
    time.tzset()
    write_group(tmp_path / "runs")
    try:
        assert snap_compare(make_app(run="qa-r8"), terminal_size=SIZE, run_before=settle)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_hardware_gpus_chosen_on_a_shared_machine(snap_compare, make_app, monkeypatch):
    """Four GPUs, GPU 1 busy with another user's process; GPUs 0 and 2 marked for the run (space)."""
    monkeypatch.setenv("TUITUNE_FAKE_GPU", "4xA100,busy=1:38GB")

    async def choose(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#machine").focus()
        await pilot.press("space", "down", "down", "space")
        await settle(pilot)

    assert snap_compare(make_app(start_mode="hardware"), terminal_size=SIZE, run_before=choose)


def test_train_run_on_two_gpus(snap_compare, make_app, tmp_path, monkeypatch):
    """A run's GPUs and their memory beside the chart (events as a trainer on two GPUs writes them)."""
    import time

    from test_gpu_choice_screens import _run_on_two_gpus

    monkeypatch.setenv("TZ", "UTC")  # the log shows clock times
    time.tzset()
    _run_on_two_gpus(tmp_path)
    try:
        assert snap_compare(make_app(run="two-gpus"), terminal_size=SIZE, run_before=settle)
    finally:
        monkeypatch.undo()
        time.tzset()
