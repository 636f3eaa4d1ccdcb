"""Hardware & Memory and the Recipe form say whether a hub model is in the cache and how big its
download is; ctrl+l on Hardware pulls it with a progress bar. Online against the local hub
(tests/hub_server.py) with the real huggingface_hub client."""

from __future__ import annotations

import pytest
from conftest import wait_for
from hub_server import blob_files

from tuitune.core.models import hub_cache
from tuitune.tui.widgets.hub_status import HubStatus


@pytest.fixture(autouse=True)
def one_gpu(monkeypatch):
    monkeypatch.setenv("TUITUNE_FAKE_GPU", "24GB")


def line(app) -> str:
    return str(app.screen.query_one("#hub-text").render())


async def type_model(pilot, name: str) -> None:
    editor = pilot.app.screen.query_one("#field-model-name_or_path").editor
    editor.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", *name)


async def hardware_answers_for(pilot, name: str) -> HubStatus:
    """Hardware with `name` typed as the model, once the plan and the hub's answer are shown."""
    app = pilot.app
    await wait_for(pilot, lambda: app.screen.is_settled, timeout=30, what="the first plan")
    await type_model(pilot, name)
    status = app.screen.query_one(HubStatus)
    await wait_for(pilot, lambda: status.name_shown == name and app.screen.is_settled, timeout=30,
                   what="the hub's answer")
    return status


async def test_hardware_shows_the_download_size_then_pulls_with_progress(make_app, online_hub):
    online_hub.rate = 8e6  # ~2 s for the weights: the bar is seen moving
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        status = await hardware_answers_for(pilot, "org/tiny")
        text = line(app)
        assert text.startswith("not downloaded yet: 15.4 MiB to fetch (6 files),")
        assert "free on the cache disk" in text and "ctrl+l downloads it now" in text
        assert "org/tiny" in str(app.screen.query_one("#verdict").render())  # the plan used its config.json

        await pilot.press("ctrl+l")
        bar = status.query_one("ProgressBar")
        texts: list[str] = []

        def part_way() -> bool:
            if status.pulling and bar.total and 2**20 <= bar.progress < bar.total:
                texts.append(line(app))
            return bool(texts)

        await wait_for(pilot, part_way, timeout=30, what="the bar part way")
        assert texts[0].startswith("downloading model.safetensors · ") and " MiB of 15.4 MiB · " in texts[0]
        assert "/s · ETA " in texts[0]
        await wait_for(pilot, lambda: not status.pulling and line(app).startswith("✓"), timeout=60,
                       what="the download to finish")
        assert line(app) == "✓ in the hub cache (15.4 MiB)"
    assert hub_cache.cached_snapshot("org/tiny") is not None
    assert "model.safetensors" in blob_files(hub_cache.hub_cache_dir(), "org/tiny")


async def test_a_pull_stopped_with_ctrl_l_resumes_on_the_next(make_app, online_hub):
    online_hub.stall_after("model.safetensors", 11_000_000)
    app = make_app(start_mode="hardware")
    async with app.run_test(size=(100, 30)) as pilot:
        status = await hardware_answers_for(pilot, "org/tiny")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: status.query_one("ProgressBar").progress >= 10 * 2**20, timeout=30,
                       what="the first 10 MiB")  # of the 11 MB the hub sends before it stalls
        await pilot.press("ctrl+l")  # stop: the worker ends at the next chunk
        online_hub.release()
        await wait_for(pilot, lambda: not status.pulling, timeout=30, what="the pull to stop")
        weights = hub_cache.plan_download("org/tiny").files[-1]
        assert not weights.cached and weights.partial >= 10 * 2**20
        await wait_for(pilot, lambda: app.screen.is_settled, timeout=30, what="the new answer")
        assert line(app).startswith(f"not downloaded yet: {(weights.size - weights.partial) / 2**20:.1f} MiB to fetch")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: line(app).startswith("✓"), timeout=60, what="the rest")
    assert any(r[2] == f"bytes={weights.partial}-" for r in online_hub.requests)


async def test_the_recipe_form_says_a_model_is_cached(make_app, online_hub):
    from tuitune.core.models.hub_download import fetch_model

    fetch_model("org/tiny")
    app = make_app(start_mode="recipe")
    async with app.run_test(size=(100, 30)) as pilot:
        await type_model(pilot, "org/tiny")
        await wait_for(pilot, lambda: app.screen.query_one(HubStatus).name_shown == "org/tiny"
                       and app.screen.is_settled, timeout=30, what="the cache check")
        assert line(app) == "✓ in the hub cache (15.4 MiB)"
        assert not app.screen.query_one(HubStatus).has_class("-hidden")
        await type_model(pilot, str(hub_model_dir_of(online_hub)))  # a local folder: nothing to say
        await wait_for(pilot, lambda: app.screen.query_one(HubStatus).has_class("-hidden"), what="hidden")


def hub_model_dir_of(hub) -> str:
    return str(hub.repos["org/tiny"].folder)


async def test_chat_shows_the_download_of_a_model_it_loads(make_app, online_hub):
    from textual.widgets import Input

    online_hub.stall_after("model.safetensors", 12_000_000)
    app = make_app(start_mode="chat")
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.screen.listed, timeout=30, what="the runs list")
            app.screen.query_one("#chat-target", Input).value = "org/tiny"
            app.screen.action_load()
            state = app.screen.query_one("#chat-state")
            await wait_for(pilot, lambda: " MiB of 15.4 MiB · " in str(state.render()), timeout=60,
                           what="the download in the state line")
            assert str(state.render()).startswith("Downloading org/tiny: model.safetensors · ")
            online_hub.release()
            await wait_for(pilot, lambda: app.screen.session is not None, timeout=120, what="the model loaded")
            assert "org/tiny" in str(state.render())
    finally:
        online_hub.release()
