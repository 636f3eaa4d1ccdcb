"""Training a hub model that is not cached: the trainer downloads it from the local hub
(tests/hub_server.py) and says so in its events (`download`, then `estimate` from config.json alone);
a stop during the download keeps what arrived and `--resume` continues it; `runs watch` prints it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine_support import FACTS, events, status, tuitune, wait_for, write_jsonl, write_recipe
from hub_server import blob_files

WEIGHTS = "model.safetensors"


def test_a_download_reported_stopped_and_resumed_by_the_trainer(hub_env, fake_hub, hub_model_dir, tmp_path):
    runs = tmp_path / "runs"
    data = write_jsonl(tmp_path / "facts.jsonl", FACTS, repeat=2)
    recipe = write_recipe(tmp_path / "dl.toml", "org/tiny", data, runs, "dl", "lora",
                          train={"max_steps": 2, "logging_steps": 1})
    run = runs / "dl"
    fake_hub.stall_after(WEIGHTS, 12_000_000)  # part of the weights arrives, then the link hangs
    started = tuitune("train", str(recipe), "--detach", env=hub_env)
    assert started.returncode == 0, started.stderr

    def part_way() -> bool:
        return any(e.get("file") == WEIGHTS and e["done"] > 11 * 2**20 for e in events(run, "download"))

    wait_for(part_way, timeout=180)
    assert status(run)["message"] == "downloading org/tiny: 6 files, 15.4 MiB to fetch"
    total = sum((hub_model_dir / p).stat().st_size for p in blob_files_names(hub_model_dir))
    first = events(run, "download")
    # Small files first, the weights last (config.json may already be cached: `tuitune train` reads it
    # for the launch plan's memory estimate before the trainer starts).
    files = [e["file"] for e in first]
    assert files[0] != WEIGHTS and set(files[files.index(WEIGHTS):]) == {WEIGHTS}, files
    assert first[0]["total"] == total and first[0]["files_total"] == 6
    done = [e["done"] for e in first]
    assert done == sorted(done) and not any(e["finished"] for e in first)
    # The memory verdict is there long before the weights: it needs config.json only.
    estimate = wait_for(lambda: events(run, "estimate"), timeout=30)[0]
    assert estimate["model"] == "org/tiny" and estimate["where"] == "cpu"
    assert estimate["verdict"] == "fits" and 0 < estimate["train_peak_bytes"] < estimate["available_bytes"]

    # The link hangs: a few seconds later the run says no bytes are coming (speed 0, no ETA).
    stalled = wait_for(lambda: [e for e in events(run, "download") if e["done"] > 11 * 2**20 and e["speed"] == 0],
                       timeout=30)
    assert stalled[0]["eta_s"] is None and not stalled[0]["finished"]

    stop = tuitune("stop", "dl", "--runs-dir", str(runs), env=hub_env)
    assert stop.returncode == 0, stop.stderr
    fake_hub.release()
    wait_for(lambda: status(run)["status"] == "stopped", timeout=60)
    assert status(run)["message"] == "stopped while downloading the model (what arrived is kept for the resume)"
    partial = list((Path(hub_env["HF_HUB_CACHE"]) / "models--org--tiny" / "blobs").glob("*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size >= 11 * 2**20
    kept = partial[0].stat().st_size

    before = len(fake_hub.requests)
    resumed = tuitune("train", "--resume", "dl", "--runs-dir", str(runs), env=hub_env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    digest = hashlib.sha256((hub_model_dir / WEIGHTS).read_bytes()).hexdigest()
    weights_gets = [r for r in fake_hub.requests[before:] if r[0] == "GET" and r[1].endswith(digest)]
    assert weights_gets[0][2] == f"bytes={kept}-"  # it asked only for the rest
    assert blob_files(Path(hub_env["HF_HUB_CACHE"]), "org/tiny")[WEIGHTS].read_bytes() == (hub_model_dir / WEIGHTS).read_bytes()
    assert status(run)["status"] == "done"
    last = events(run, "download")[-1]
    assert last["finished"] and last["done"] == last["total"] == total
    # What `tuitune train` printed while following, and what `runs watch` prints afterwards.
    for out in (resumed.stdout, tuitune("runs", "watch", "dl", "--runs-dir", str(runs), env=hub_env).stdout):
        assert "download model.safetensors" in out and "downloaded org/tiny (15 MiB)" in out
        assert "memory estimate: training needs" in out and "free on cpu: fits" in out


def blob_files_names(folder: Path) -> list[str]:
    from tuitune.core.models.hub_cache import select_files

    return select_files(p.name for p in folder.iterdir())
