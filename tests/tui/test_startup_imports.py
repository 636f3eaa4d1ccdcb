"""The first frame must not wait for torch: the app and every screen module import light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuitune.tui.screens import MODES

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "transformers", "peft", "datasets", "bitsandbytes", "accelerate"}


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return set(out.stdout.split())


def test_importing_the_app_does_not_import_torch():
    loaded = _loaded_after("import tuitune.tui.app")
    assert "textual" in loaded  # the check itself works: the app did load
    assert not loaded & HEAVY, loaded & HEAVY


@pytest.mark.parametrize("mode", MODES, ids=[m.name for m in MODES])
def test_screen_modules_import_light(mode):
    module = mode.screen.split(":")[0]
    loaded = _loaded_after(f"import {module}")
    assert module in loaded
    assert not loaded & HEAVY, loaded & HEAVY


def test_core_modules_used_by_the_tui_never_import_textual():
    loaded = _loaded_after("import tuitune.core.recipe, tuitune.core.errors")
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


def test_opening_the_app_does_not_import_the_command_modules(monkeypatch):
    """`tuitune` alone parses its options without the twelve subcommand modules (first frame);
    a subcommand, --help or a wrong word still gets the whole parser."""
    from tuitune import cli

    seen = {}
    monkeypatch.setattr("tuitune.tui.app.run_app", lambda **kw: seen.update(kw) or 0)
    code = (
        "import sys; from tuitune import cli; import tuitune.tui.app as a; "
        "a.run_app = lambda **kw: 0; cli.main(['--lang', 'zh', '--run', 'train'])"
    )
    loaded = _loaded_after(code)
    assert "tuitune.cli" in loaded
    assert not {m for m in loaded if m.startswith("tuitune.commands.")}
    assert cli.main(["--lang", "zh", "--no-mouse"]) == 0
    assert seen == {"lang": "zh", "mouse": False, "run": None, "runs_dir": "runs"}
    loaded = _loaded_after("from tuitune import cli; cli.build_parser()")
    assert "tuitune.commands.train" in loaded  # the check itself works: the whole parser imports them
    with pytest.raises(SystemExit):
        cli.main(["nosuchcommand"])
