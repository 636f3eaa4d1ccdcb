"""The layers hold and the domain stays headless and light: checked statically and in fresh interpreters.

Statically, import-linter's contracts in pyproject.toml (core imports neither the TUI, the commands
nor Textual; the TUI and the commands do not import each other). Dynamically, every module under
tuitune.core, found by walking the package (no hand-kept list), is imported in a fresh interpreter:
none may bring in Textual, and none but the trainer's own modules may bring in torch & co.
"""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tuitune.core

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "transformers", "peft", "datasets", "bitsandbytes", "accelerate"}
UI = {"textual"}
# Modules of the trainer process that subclass or call torch/transformers at module level (the
# Trainer, its callbacks, the collator, the chunked head loss), and lm-eval's model over a loaded run (a
# subclass of lm-eval's HFLM, imported only inside tuitune.core.benchmarks' functions); everything else
# imports them inside functions.
HEAVY_BY_DESIGN = {
    "tuitune.core.engine.callbacks", "tuitune.core.engine.collate", "tuitune.core.engine.head_loss", "tuitune.core.engine.trainer",
    "tuitune.core.engine.together.trainer",
    "tuitune.core.benchmark_lm",
}
CORE_MODULES = sorted(m.name for m in pkgutil.walk_packages(tuitune.core.__path__, "tuitune.core."))
LIGHT_MODULES = [m for m in CORE_MODULES if m not in HEAVY_BY_DESIGN]


def _loaded_after(modules: list[str]) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def _culprits(modules: list[str], banned: set[str]) -> dict[str, set[str]]:
    """Which modules, each imported alone, load a banned package (only run when the joint check fails)."""
    found = {m: _loaded_after([m]) & banned for m in modules}
    return {m: bad for m, bad in found.items() if bad}


def test_every_core_module_is_discovered():
    assert len(CORE_MODULES) > 40
    assert {"tuitune.core.events", "tuitune.core.runs.directory", "tuitune.core.recipe.schema"} <= set(CORE_MODULES)
    assert HEAVY_BY_DESIGN <= set(CORE_MODULES)  # a renamed module must not silently drop out of the list


def test_no_core_module_imports_textual():
    # One interpreter for all: if their union loads no Textual, none of them does alone.
    if _loaded_after(CORE_MODULES) & UI:
        pytest.fail(f"core modules that import Textual: {_culprits(CORE_MODULES, UI)}")


def test_core_modules_import_no_torch():
    """The TUI and the CLI import core at start-up: torch & co. only inside functions."""
    if _loaded_after(LIGHT_MODULES) & (HEAVY | UI):
        pytest.fail(f"core modules that import heavy libraries at import: {_culprits(LIGHT_MODULES, HEAVY | UI)}")


@pytest.mark.parametrize("module", ["tuitune", "tuitune.cli", "tuitune.commands.hw", "tuitune.commands.estimate"])
def test_entry_points_import_no_heavy_library(module):
    assert not _loaded_after([module]) & (HEAVY | UI)


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert found, "import-linter is not installed (it is in the dev extra: pip install -e '.[dev]')"
    return found


def test_layer_contracts_hold():
    res = subprocess.run([_lint_imports(), "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 kept, 0 broken" in res.stdout


def test_layer_contracts_catch_a_tui_module_importing_a_command(tmp_path):
    """The contracts are live: the same check fails on a copy where the TUI imports the CLI."""
    shutil.copytree(REPO / "tuitune", tmp_path / "tuitune", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "tuitune" / "tui" / "widgets" / "runs_table.py", "a", encoding="utf-8") as f:
        f.write("\nfrom tuitune.commands import runs as _runs  # noqa\n")
    res = subprocess.run([_lint_imports(), "--no-cache"], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode != 0 and "the TUI does not import the CLI commands BROKEN" in res.stdout, res.stdout + res.stderr
    assert "tuitune.tui.widgets.runs_table -> tuitune.commands.runs" in res.stdout


def test_help_is_fast_and_light():
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "tuitune", "--help"], capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    assert res.returncode == 0 and "recipe" in res.stdout
    # Generous bound: the measured figure (~0.1 s) is in the README; this only catches a heavy import.
    assert elapsed < 3.0
