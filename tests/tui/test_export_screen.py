"""Export against a real tuned run (the tiny model trained by `tuitune train`): the feasibility check
up front, saving the adapter, merging into a model that loads with plain transformers, and asking
before replacing a folder."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import wait_for
from trained_runs import copy_runs, pin_for_pictures, trained_runs

from tuitune.tui.dialogs.confirm import ConfirmDialog

SIZE = (100, 30)


@pytest.fixture
def runs_dir(tiny_model_dir, tmp_path_factory, tmp_path):
    return copy_runs(trained_runs(tiny_model_dir, tmp_path_factory), tmp_path / "runs")


async def choose(pilot, run: str, kind: str, out=None):
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.listed, what="the runs")
    screen.query_one("#export-run").value = run
    screen.query_one("#export-kind").value = kind
    await pilot.pause()
    if out is not None:
        screen.query_one("#export-out").value = str(out)
        await pilot.pause()
    await wait_for(pilot, lambda: screen.is_settled, timeout=30, what="the check")
    return screen


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_save_the_adapter(make_app, runs_dir, tmp_path):
    out = tmp_path / "out" / "alpha-adapter"
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "alpha", "adapter", out)
        assert text_of(screen, "#export-check").startswith("✓ alpha (lora)")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.result is not None or screen.query_one("#export-result").has_class("-error"),
                       timeout=120, what="the export")
        assert screen.result is not None, text_of(screen, "#export-result")
        assert str(out) in text_of(screen, "#export-result")
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tuitune.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "tuitune.json").read_text())["run"] == "alpha"
    assert (out / "adapter_model.safetensors").read_bytes() == (runs_dir / "alpha" / "adapter" / "adapter_model.safetensors").read_bytes()


async def test_merge_writes_a_model_plain_transformers_loads(make_app, runs_dir, tmp_path):
    out = tmp_path / "merged"
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "beta", "merge", out)
        assert "can be merged into tiny-pretrained" in text_of(screen, "#export-check")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.exporting, timeout=180, what="the merge")
        assert screen.result is not None and screen.result.kind == "merged", text_of(screen, "#export-result")
        assert "Wrote merged to" in text_of(screen, "#export-result")
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())


async def test_an_unfinished_run_is_refused_up_front(make_app, runs_dir):
    shutil.rmtree(runs_dir / "alpha" / "adapter")  # as a run still training looks: no result yet
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "alpha", "merge")
        check = screen.query_one("#export-check")
        assert check.has_class("-error") and "has no adapter/ yet" in text_of(screen, "#export-check")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert not screen.exporting and screen.result is None
        screen.query_one("#export-run").value = "nope"
        await pilot.pause()
        await wait_for(pilot, lambda: screen.is_settled, what="the check")
        assert "'nope' is not a run" in text_of(screen, "#export-check")


async def test_a_full_folder_is_replaced_only_when_confirmed(make_app, runs_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "alpha", "adapter", out)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmDialog), what="the answer")
        assert (out / "keep.txt").read_text() == "mine" and not screen.exporting
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.result is not None, timeout=120, what="the export")
    assert not (out / "keep.txt").exists() and (out / "adapter_config.json").is_file()


def test_snapshot_export_merge_checked(snap_compare, make_app, runs_dir, monkeypatch):
    pin_for_pictures(runs_dir)
    monkeypatch.chdir(runs_dir.parent)

    async def check(pilot):
        await choose(pilot, "alpha", "merge")
        await pilot.pause(0.2)

    assert snap_compare(make_app(start_mode="export", runs_dir="runs"), terminal_size=SIZE, run_before=check)


async def test_gguf_export_ends_with_the_parity_result_and_commands(make_app, runs_dir, tmp_path):
    out = tmp_path / "gguf"
    app = make_app(start_mode="export", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await choose(pilot, "alpha", "gguf", out)
        screen.query_one("#export-quant").value = "f16"
        await pilot.pause()
        await wait_for(pilot, lambda: screen.is_settled, timeout=30, what="the check")
        assert "convert to GGUF f16" in text_of(screen, "#export-check")
        assert "Here: f32 f16 bf16 q8_0" in text_of(screen, "#export-quants")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.exporting, timeout=300, what="the GGUF export")
        result = text_of(screen, "#export-result")
        assert screen.result is not None and screen.result.passed, result
        assert "transformers: 100% of the first 16 tokens identical" in result and "pass" in result
        assert "ollama create alpha -f" in result and "llama-cli -m" in result
        assert "merge ✓" in text_of(screen, "#export-stages") and "parity ✓" in text_of(screen, "#export-stages")
    assert (out / "alpha-f16.gguf").is_file() and (out / "Modelfile").is_file()


def fixed_gguf_result(folder):
    """A GGUF result with set figures (training numbers differ per CPU: pictures must not show them)."""
    from tuitune.core.gguf_export import GgufExportResult
    from tuitune.core.parity import EngineParity, ParityResult, PromptParity

    prompts = [PromptParity(f"question {i}", None, None, 1.0) for i in range(4)]
    engines = [EngineParity("transformers", 1.0, 4, 4, 0, True, True, True, [], prompts),
               EngineParity("llama.cpp", 0.94, 4, 4, 0, True, True, True, [], prompts)]
    parity = ParityResult("q8_0", 0.85, engines, "held-out rows: eval split of facts.jsonl")
    path = folder / "alpha-q8_0.gguf"
    result = GgufExportResult(path, "q8_0", 152_480, "alpha", folder / "Modelfile", f"ollama create alpha -f {folder}/Modelfile", parity)
    result.commands = [f"llama-cli -m {path} -cnv", f"llama-server -m {path} --jinja", result.ollama_command, "ollama run alpha"]
    return result


def test_snapshot_export_gguf_result(snap_compare, make_app, runs_dir, monkeypatch):
    from pathlib import Path

    from tuitune.core import gguf_convert

    pin_for_pictures(runs_dir)
    monkeypatch.chdir(runs_dir.parent)
    # What this machine can write differs (llama-cpp-python is optional): the picture shows it absent.
    monkeypatch.setattr(gguf_convert, "llama_cpp_installed", lambda: False)

    async def show(pilot):
        screen = await choose(pilot, "alpha", "gguf")
        screen.show_gguf_result(fixed_gguf_result(Path("exports/alpha-gguf")))
        await pilot.pause(0.2)

    assert snap_compare(make_app(start_mode="export", runs_dir="runs"), terminal_size=SIZE, run_before=show)
