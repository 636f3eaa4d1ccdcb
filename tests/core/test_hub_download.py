"""Downloads from the hub with the real huggingface_hub client against a local hub (tests/hub_server.py):
the plan from the hub's metadata, resume after a dropped connection and after a cancelled attempt, the
checksum of a resumed file, the disk check, and one message per way the hub refuses."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from hub_server import TOKEN, blob_files

from tuitune.core.errors import UserError
from tuitune.core.models import hub_cache
from tuitune.core.models.hub_cache import (
    cached_snapshot,
    check_space,
    model_availability,
    plan_download,
    select_files,
)
from tuitune.core.models.hub_download import DownloadCancelled, download, fetch_model, reporting

WEIGHTS = "model.safetensors"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache() -> Path:
    return hub_cache.hub_cache_dir()


def test_select_files_takes_what_training_loads():
    repo = ["config.json", "README.md", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json", "consolidated.safetensors", "tokenizer.json", "tokenizer.model",
            "original/consolidated.00.pth", "onnx/model.onnx", "pytorch_model.bin", "generation_config.json"]
    chosen = select_files(repo)
    assert chosen[0] == "config.json"
    assert chosen[-2:] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert "consolidated.safetensors" not in chosen  # a second copy of the weights
    assert not {"README.md", "pytorch_model.bin", "original/consolidated.00.pth", "onnx/model.onnx"} & set(chosen)
    # An older repository with PyTorch weights only gets them.
    assert select_files(["config.json", "pytorch_model.bin", "training_args.bin"]) == ["config.json", "pytorch_model.bin"]


def test_plan_lists_the_files_and_sizes_from_the_hub(online_hub, hub_model_dir):
    plan = plan_download("org/tiny")
    names = [f.path for f in plan.files]
    assert names[0] == "config.json" and names[-1] == WEIGHTS
    assert "README.md" not in names  # served by the hub, not needed to train
    for f in plan.files:
        assert f.size == (hub_model_dir / f.path).stat().st_size
        assert not f.cached and f.partial == 0
    assert plan.total_bytes == plan.missing_bytes == sum((hub_model_dir / n).stat().st_size for n in names)
    assert plan.commit == online_hub.repos["org/tiny"].commit
    assert plan.free_bytes and plan.free_bytes > 0
    # Only metadata was asked for: no file was transferred.
    assert not [r for r in online_hub.requests if "/resolve/" in r[1] or r[1].startswith("/cdn/")]


def test_a_dropped_connection_resumes_with_a_range_request(online_hub, hub_model_dir):
    online_hub.drop_after(WEIGHTS, 12_000_000)  # the connection closes 12 MB into the weights
    seen = []
    path = fetch_model("org/tiny", progress=seen.append)
    ranges = [r[2] for r in online_hub.gets(hashlib.sha256((hub_model_dir / WEIGHTS).read_bytes()).hexdigest())]
    assert ranges == [None, f"bytes={11 * 2**20}-"]  # only the rest: the 1 MiB chunks that arrived whole are kept
    for name, file in blob_files(cache(), "org/tiny").items():
        assert file.read_bytes() == (hub_model_dir / name).read_bytes(), name
    assert cached_snapshot("org/tiny") == path
    # Progress: per file, never backwards, and a last report with everything done.
    done = [p.done for p in seen]
    assert done == sorted(done)
    assert seen[-1].finished and seen[-1].done == seen[-1].total == plan_download("org/tiny").total_bytes
    assert {p.file for p in seen if p.file} == {f.path for f in plan_download("org/tiny").files}
    assert any(p.file == WEIGHTS and 0 < p.file_done < p.file_total for p in seen)
    assert plan_download("org/tiny").complete


def test_a_cancelled_download_keeps_its_bytes_and_the_next_attempt_resumes(online_hub, hub_model_dir):
    cancel = threading.Event()

    def stop_in_the_weights(p):
        if p.file == WEIGHTS and p.file_done >= 10 * 2**20:
            cancel.set()

    with pytest.raises(DownloadCancelled), reporting(stop_in_the_weights, cancel):
        fetch_model("org/tiny")
    plan = plan_download("org/tiny")
    weights = plan.files[-1]
    assert weights.path == WEIGHTS and weights.partial == 10 * 2**20 and not weights.cached
    assert plan.missing_bytes == weights.size - weights.partial  # the small files are cached
    assert cached_snapshot("org/tiny") is None  # not complete: training would download the rest
    download(plan)
    digest = sha(hub_model_dir / WEIGHTS)
    assert [r[2] for r in online_hub.gets(digest)][-1] == f"bytes={10 * 2**20}-"
    assert sha(blob_files(cache(), "org/tiny")[WEIGHTS]) == digest


def test_a_resumed_file_that_does_not_match_its_checksum_is_refused(online_hub, hub_model_dir):
    plan = plan_download("org/tiny")
    weights = plan.files[-1]
    blobs = hub_cache.repo_folder("org/tiny") / "blobs"
    blobs.mkdir(parents=True)
    (blobs / (weights.etag + ".incomplete")).write_bytes(b"\0" * 1000)  # not the file's first bytes
    with pytest.raises(UserError, match="does not match the hub's checksum"):
        download(plan_download("org/tiny"))
    assert not (blobs / (weights.etag + ".incomplete")).exists()
    assert not (blobs / weights.etag).exists()
    download(plan_download("org/tiny"))  # starts that file over
    assert sha(blob_files(cache(), "org/tiny")[WEIGHTS]) == sha(hub_model_dir / WEIGHTS)


def test_too_small_a_disk_is_refused_before_anything_moves(online_hub, monkeypatch):
    monkeypatch.setattr(hub_cache, "free_disk_bytes", lambda path: 5 * 2**20)  # the free-space check only
    plan = plan_download("org/tiny")
    with pytest.raises(UserError) as e:
        check_space(plan)
    assert "needs 15.4 MiB more" in e.value.message and "5.0 MiB free" in e.value.message
    assert str(cache()) in e.value.message and "--force" in e.value.hint
    with pytest.raises(UserError, match="needs 15.4 MiB more"):
        fetch_model("org/tiny")
    assert not [r for r in online_hub.requests if "/resolve/" in r[1]]
    fetch_model("org/tiny", force=True)  # --force: try anyway
    assert cached_snapshot("org/tiny") is not None


def test_each_refusal_says_how_to_get_access(online_hub, monkeypatch):
    with pytest.raises(UserError) as e:
        plan_download("org/gated")
    assert e.value.message == "org/gated is gated: the hub needs to know who you are (not logged in)"
    assert "hf auth login" in e.value.hint and "HF_TOKEN" in e.value.hint and f"{online_hub.url}/org/gated" in e.value.hint
    with pytest.raises(UserError, match="not on the hub, or it is private and you are not logged in") as e:
        plan_download("org/private")
    assert "hf auth login" in e.value.hint
    with pytest.raises(UserError, match="has no revision 'v9'"):
        plan_download("org/tiny", "v9")

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(UserError, match="refused the token"):
        plan_download("org/tiny")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(UserError, match="gated and your hub account has no access") as e:
        plan_download("org/refused")
    assert f"{online_hub.url}/org/refused" in e.value.hint
    # With a token that has access, gated and private models download like any other.
    before = len(online_hub.requests)
    assert cached_snapshot("org/gated") is None
    assert (fetch_model("org/gated") / "config.json").is_file()
    assert (fetch_model("org/private") / WEIGHTS).is_file()
    assert all(r[3] == f"Bearer {TOKEN}" for r in online_hub.requests[before:] if "org/gated" in r[1])


def test_training_and_chat_resolve_through_the_same_download(online_hub, hub_model_dir, monkeypatch):
    from tuitune.core.models import resolve_model

    seen = []
    with reporting(seen.append):
        source = resolve_model("org/tiny")
    assert source.kind == "hub" and source.note == "downloaded from the hub"
    assert (source.path / WEIGHTS).resolve().read_bytes() == (hub_model_dir / WEIGHTS).read_bytes()
    assert seen[-1].finished
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = resolve_model("org/tiny")
    assert again.path == source.path and again.note == "from the hub cache"


def test_a_config_fetched_alone_is_not_a_cached_model(online_hub):
    from tuitune.core.models.spec import model_spec

    spec = model_spec("org/tiny")  # reads config.json only (the memory estimate)
    assert spec.source == "hub" and spec.intermediate_size == 10240
    assert cached_snapshot("org/tiny") is None
    available = model_availability("org/tiny")
    assert not available.cached and available.missing_bytes == plan_download("org/tiny").missing_bytes
    assert available.files == 6 and available.fits_disk
    fetch_model("org/tiny")
    available = model_availability("org/tiny", fetch=False)
    assert available.cached and available.missing_bytes == 0
    assert available.total_bytes == plan_download("org/tiny").total_bytes
    assert model_availability("org/gated").problem.startswith("org/gated is gated")
    assert model_availability("llama-3-8b") is None  # not a hub id (a catalog name)
