"""The domain stays headless and the CLI stays light: checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEADLESS = [
    "tuitune.core.recipe",
    "tuitune.core.models",
    "tuitune.core.models.loading",
    "tuitune.core.errors",
    "tuitune.core.data",
    "tuitune.core.tuned",
    "tuitune.core.chat",
    "tuitune.core.evaluate",
    "tuitune.core.export",
    "tuitune.core.progress",
    "tuitune.core.units",
    "tuitune.core.models.catalog",
    "tuitune.core.models.spec",
    "tuitune.core.hardware",
    "tuitune.core.memory",
    "tuitune.core.memory.fit_plan",
    "tuitune.core.memory.probe",
    "tuitune.core.memory.reference",
]
# Imported by the TUI's Hardware & Memory screen at start-up: no torch either.
NO_TORCH = [
    "tuitune.core.models.catalog",
    "tuitune.core.models.spec",
    "tuitune.core.hardware",
    "tuitune.core.memory",
    "tuitune.core.memory.fit_plan",
    "tuitune.commands.hw",
    "tuitune.commands.estimate",
]


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", HEADLESS)
def test_core_module_never_imports_textual(module):
    assert not {m for m in _modules_after_import(module) if m == "textual" or m.startswith("textual.")}


@pytest.mark.parametrize("module", NO_TORCH)
def test_planner_modules_import_no_torch(module):
    loaded = _modules_after_import(module)
    assert not loaded & {"torch", "transformers", "peft", "bitsandbytes", "textual"}


@pytest.mark.parametrize("module", ["tuitune", "tuitune.cli"])
def test_entry_points_import_no_heavy_library(module):
    loaded = _modules_after_import(module)
    assert not loaded & {"torch", "transformers", "peft", "datasets", "textual"}


def test_help_is_fast_and_light():
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "tuitune", "--help"], capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    assert res.returncode == 0 and "recipe" in res.stdout
    # Generous bound: the measured figure (~0.1 s) is in the README; this only catches a heavy import.
    assert elapsed < 3.0
