"""The Train screen while the run's model downloads: a progress bar in bytes with file, speed and ETA,
and the memory estimate before the weights are in. A picture of a live run written here (this test
holds the run's lock as its trainer), and the same screen following a real trainer that downloads
from the local hub (tests/hub_server.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_support import FACTS, write_jsonl, write_recipe  # noqa: E402

from tuitune.core.events import DownloadEvent, EstimateEvent, StatusEvent  # noqa: E402
from tuitune.core.runs import EventWriter, RunDirectory  # noqa: E402

T0 = 1795439331.0  # fixed event times (the log shows clock times)
TOTAL = 16_115_656


def write_download_run(runs: Path) -> tuple[RunDirectory, object]:
    """A run whose trainer (this process) is 11 MiB into a 15.4 MiB download; returns (run, lock)."""
    run = RunDirectory(runs / "downloading")
    run.create()
    (run.path / "recipe.toml").write_text('name = "downloading"\n[model]\nname_or_path = "org/tiny"\n', encoding="utf-8")
    lock = run.acquire_lock()
    with EventWriter(run.events_path) as w:
        for event in [
            StatusEvent(status="starting", message="checking the recipe"),
            StatusEvent(status="loading", message="loading org/tiny"),
            StatusEvent(status="loading", message="downloading org/tiny: 6 files, 15.4 MiB to fetch"),
            DownloadEvent(model="org/tiny", file="config.json", file_done=0, file_total=719, done=0, total=TOTAL,
                          speed=0.0, eta_s=None, files_done=0, files_total=6, finished=False),
            EstimateEvent(model="org/tiny", train_peak_bytes=70_254_592, available_bytes=19_864_223_744,
                          where="cpu", verdict="fits"),
            DownloadEvent(model="org/tiny", file="model.safetensors", file_done=11 * 2**20, file_total=16_092_584,
                          done=11 * 2**20 + 23_072, total=TOTAL, speed=2_097_152.0, eta_s=2.2, files_done=5,
                          files_total=6, finished=False),
        ]:
            w.emit(event)
    # The events' clock times are the writer's; pin them for the picture.
    lines = run.events_path.read_text().splitlines()
    import json

    fixed = [json.dumps({**json.loads(line), "time": T0 + i}) for i, line in enumerate(lines)]
    run.events_path.write_text("\n".join(fixed) + "\n")
    return run, lock


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_train_screen_while_the_model_downloads(snap_compare, make_app, tmp_path, utc):
    async def settle(pilot) -> None:  # the run stays live: its tailing worker never completes
        await wait_for(pilot, lambda: pilot.app.screen.is_settled, timeout=30, what="the screen")
        await pilot.pause()

    run, lock = write_download_run(tmp_path / "runs")
    try:
        assert snap_compare(make_app(run="downloading"), terminal_size=(100, 30), run_before=settle)
    finally:
        lock.release()


async def test_the_screen_follows_a_real_download_then_training(make_app, tmp_path, hub_env, fake_hub, monkeypatch):
    """`t` on the Train screen starts a trainer that downloads org/tiny; the screen shows the bytes
    arriving (the hub holds the weights part way), the estimate, then the steps once it is in."""
    from tuitune.core.recipe import load_recipe

    for key in ("HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET"):
        monkeypatch.setenv(key, hub_env[key])  # for the trainer this app starts (not for this process's client)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    path = write_recipe(tmp_path / "dl.toml", "org/tiny", data, tmp_path / "runs", "dl", "lora",
                        train={"max_steps": 3, "logging_steps": 1})
    fake_hub.stall_after("model.safetensors", 12_000_000)
    app = make_app(start_mode="train")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            recipe, problems = load_recipe(path)
            assert not problems
            app.set_recipe(recipe, path)
            await pilot.press("t")
            bar = app.screen.query_one("#progress")
            await wait_for(pilot, lambda: bar.total == TOTAL and bar.progress >= 11 * 2**20, timeout=180,
                           what="the download part way")
            text = str(app.screen.query_one("#progress-text").render())
            assert text.startswith("model.safetensors · 11.0 MiB of 15.4 MiB · ")
            assert "downloading org/tiny: 6 files, 15.4 MiB to fetch" in str(app.screen.query_one("#head").render())
            await wait_for(pilot, lambda: "memory estimate: training needs" in
                           str(app.screen.query_one("#stats").render()), timeout=30, what="the estimate")
            assert str(app.screen.query_one("#stats").render()).endswith("free on cpu: fits")
            fake_hub.release()
            await wait_for(pilot, lambda: app.follower.attached.history.step >= 1, timeout=180, what="a step")
            # the bar switches from bytes to steps at the screen's next redraw (at most 4 a second)
            await wait_for(pilot, lambda: bar.total == 3, timeout=10, what="the bar counting steps")
            await wait_for(pilot, lambda: not app.follower.attached.live, timeout=120, what="the end")
            assert app.follower.attached.history.status == "done"
    finally:
        fake_hub.release()
