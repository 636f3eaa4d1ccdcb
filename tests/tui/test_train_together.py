"""Training together in the app: the Train screen shows a group (a line and a legend entry per run, each
run's progress, the shared memory), n follows the next run, Runs lists the group, and g picks
recipes from recipes/, refuses the ones that cannot share a base and trains the others together."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from conftest import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_support import FACTS, write_jsonl, write_recipe  # noqa: E402
from group_runs import MEMBERS, write_group  # noqa: E402

from tuitune.core.runs import RunDirectory  # noqa: E402


def _text(widget) -> str:
    """What the widget shows on screen, line by line."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height))


async def test_the_train_screen_shows_every_run_of_the_group(make_app, tmp_path):
    write_group(tmp_path / "runs")
    app = make_app(run="qa-r16")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.is_settled and app.screen.has_class("-group")
                       and app.screen.query_one("#group-chart").size.width, 30, "the group laid out")
        screen = app.screen
        assert not screen.query_one("#chart").display or not screen.query_one("#chart").region.width
        view = screen.query_one("#group")
        chart = view.query_one("#group-chart")
        assert list(chart.series) == [n for n, *_ in MEMBERS if n != "qa-r16"] + ["qa-r16"]  # the followed on top
        # Each run's whole curve (shrunk to the chart's width: min and max per column).
        assert {n: (xs[0], xs[-1]) for n, (xs, _) in chart.series.items()} == {n: (1, s) for n, _, s, _ in MEMBERS}
        assert all(len(xs) <= 2 * chart.size.width for xs, _ in chart.series.values())
        legend = _text(view.query_one("#group-legend"))
        assert "group qa-r8+qa-r16+chat-r8" in legend and "fused batches" in legend
        for name, _, steps, _ in MEMBERS:
            assert name in legend and f"✓ {steps}/{steps}" in legend
        assert "shared RAM 2.1 GiB" in _text(view.query_one("#group-memory"))
        # Distinct colours, one per run, in the chart and the legend alike.
        assert len({m.colour for m in view.members}) == len(MEMBERS)

        await pilot.press("n")
        await wait_for(pilot, lambda: app.follower.attached.run.name == "chat-r8", 10, "the next run")
        await wait_for(pilot, lambda: app.screen.is_settled, 30, "the replay")
        assert "Run chat-r8" in _text(screen.query_one("#head"))
        assert [m.run.name for m in view.members if m.followed] == ["chat-r8"]

        app.switch_mode("runs")
        await wait_for(pilot, lambda: app.screen.is_settled and app.screen.table.row_count == 3, 30, "the runs")
        table = app.screen.table
        groups = {table.get_row_at(i)[0]: table.get_row_at(i)[-1] for i in range(table.row_count)}
        assert groups == {n: "qa-r8+qa-r16+chat-r8" for n, *_ in MEMBERS}


async def test_a_run_trained_alone_shows_no_group(make_app, tmp_path, repo_root):
    import shutil

    shutil.copytree(repo_root / "tests" / "data" / "runs" / "finished-demo", tmp_path / "runs" / "finished-demo")
    app = make_app(run="finished-demo")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.is_settled, 30, "the replay")
        assert not app.screen.has_class("-group") and app.screen.query_one("#chart").region.width
        assert "n" not in app.active_bindings  # no "Next run" in the footer
        await pilot.press("n")
        await pilot.pause()
        assert app.follower.attached.run.name == "finished-demo"


async def test_g_refuses_recipes_that_cannot_share_a_base_then_trains_two_together(
    make_app, tmp_path, tiny_model_dir
):
    recipes = tmp_path / "my-recipes"
    recipes.mkdir()
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    train = {"max_steps": 4, "logging_steps": 1, "save_steps": 0}
    write_recipe(recipes / "a.toml", tiny_model_dir, data, tmp_path / "runs", "a", "lora", lora={"r": 4}, train=train)
    write_recipe(recipes / "b.toml", tiny_model_dir, data, tmp_path / "runs", "b", "lora", lora={"r": 8}, train=train)
    write_recipe(recipes / "c.toml", tiny_model_dir, data, tmp_path / "runs", "c", "prompt", train=train)
    app = make_app(start_mode="train", recipes_dir=recipes)
    pids: list[int] = []
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("g")
            await wait_for(pilot, lambda: app.screen.query("#recipes"), 10, "the dialog")
            dialog = app.screen
            start = dialog.query_one("#start")
            await pilot.press("space", "down", "down", "space")  # a and c
            verdict = _text(dialog.query_one("#verdict"))
            assert start.disabled and "c.toml" in verdict and "prompt" in verdict and "lora or qlora" in verdict
            await pilot.press("space", "up", "space")  # c off, b on: a and b
            assert not start.disabled and "2 recipes can train together" in _text(dialog.query_one("#verdict"))
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: app.follower.attached is not None, 120, "the group to start")
            runs = [RunDirectory(tmp_path / "runs" / n) for n in "ab"]
            pids.append(json.loads(runs[0].status_path.read_text())["pid"])
            await wait_for(pilot, lambda: app.screen.has_class("-group"), 60, "the group view")
            await wait_for(pilot, lambda: all(r.has_result() for r in runs) and not app.follower.attached.live,
                           240, "both runs to finish")
            await wait_for(pilot, lambda: app.screen.is_settled, 30, "the last redraw")
            legend = _text(app.screen.query_one("#group-legend"))
            assert "group a+b" in legend and "✓ 4/4" in legend
            assert [json.loads(r.status_path.read_text())["status"] for r in runs] == ["done", "done"]
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(pid, signal.SIGKILL)
