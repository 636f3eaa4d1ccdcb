"""`tuitune pull` as a user runs it: a process of its own, online against the local hub
(tests/hub_server.py), killed in the middle of a file and run again, on a disk too small for the
model, for a gated model without a login."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine_support import REPO, wait_for
from hub_server import TOKEN, blob_files

WEIGHTS = "model.safetensors"


def pull(env: dict, *args: str, fake_free_bytes: int | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from tuitune.cli import main; sys.exit(main(sys.argv[1:]))"
    if fake_free_bytes is not None:  # a small disk, faked at the free-space check and nowhere else
        code = (f"import tuitune.core.models.hub_cache as h; h.free_disk_bytes = lambda path: {fake_free_bytes}; " + code)
    return subprocess.run([sys.executable, "-c", code, "pull", *args], env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)


def cache(env: dict) -> Path:
    return Path(env["HF_HUB_CACHE"])


def test_pull_lists_the_files_then_downloads_them(hub_env, hub_model_dir):
    done = pull(hub_env, "org/tiny")
    assert done.returncode == 0, done.stderr
    out = done.stderr
    head = out[: out.index("to download:")]
    for name in ("config.json", "tokenizer.json", WEIGHTS):  # listed with sizes before anything moves
        assert name in head
    assert "org/tiny @ main" in head and "6 files, 15.4 MiB" in head and "15.3 MiB" in head
    assert "README.md" not in out
    assert f"  {WEIGHTS} done (15.4 MiB of 15.4 MiB)" in out  # a line per file when not on a terminal
    for name, file in blob_files(cache(hub_env), "org/tiny").items():
        assert file.read_bytes() == (hub_model_dir / name).read_bytes(), name

    again = pull(hub_env, "org/tiny")
    assert again.returncode == 0 and "already in the hub cache" in again.stderr
    assert again.stderr.count("cached") == 6


def test_a_killed_pull_resumes_where_it_stopped(hub_env, fake_hub, hub_model_dir):
    fake_hub.stall_after(WEIGHTS, 12_000_000)  # 12 MB arrive, then the connection hangs
    blobs = cache(hub_env) / "models--org--tiny" / "blobs"
    env = {**hub_env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "tuitune", "pull", "org/tiny"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kept = 11 * 2**20  # the whole 1 MiB chunks before the stall
        partial = wait_for(lambda: next((p for p in blobs.glob("*.incomplete") if p.stat().st_size >= kept), None),
                           timeout=60)
        assert partial.stat().st_size == kept
        proc.send_signal(signal.SIGTERM)  # what a dropped SSH session does to a foreground command
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake_hub.release()
    assert proc.returncode != 0
    assert partial.exists()

    again = pull(hub_env, "org/tiny")
    assert again.returncode == 0, again.stderr
    rest = (hub_model_dir / WEIGHTS).stat().st_size - kept
    assert "11.0 MiB kept: resumes" in again.stderr and f"to download: {rest / 2**20:.1f} MiB" in again.stderr
    digest = hashlib.sha256((hub_model_dir / WEIGHTS).read_bytes()).hexdigest()
    assert [r[2] for r in fake_hub.gets(digest)] == [None, f"bytes={kept}-"]
    assert blob_files(cache(hub_env), "org/tiny")[WEIGHTS].read_bytes() == (hub_model_dir / WEIGHTS).read_bytes()
    assert not list(blobs.glob("*.incomplete"))


def test_a_disk_too_small_is_refused_unless_forced(hub_env, fake_hub):
    refused = pull(hub_env, "org/tiny", fake_free_bytes=4 * 2**20)
    assert refused.returncode == 2
    assert "error: org/tiny needs 15.4 MiB more in " + str(cache(hub_env)) in refused.stderr
    assert "but that disk has 4.0 MiB free" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not [r for r in fake_hub.requests if "/resolve/" in r[1]]  # nothing was downloaded

    forced = pull(hub_env, "org/tiny", "--force", fake_free_bytes=4 * 2**20)
    assert forced.returncode == 0, forced.stderr
    assert WEIGHTS in blob_files(cache(hub_env), "org/tiny")


def test_gated_models_say_how_to_log_in(hub_env):
    refused = pull(hub_env, "org/gated")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert lines[0] == "error: org/gated is gated: the hub needs to know who you are (not logged in)"
    assert "hf auth login" in lines[1] and "HF_TOKEN" in lines[1] and len(lines) == 2
    private = pull(hub_env, "org/private")
    assert private.returncode == 2 and "private and you are not logged in" in private.stderr

    allowed = pull({**hub_env, "HF_TOKEN": TOKEN}, "org/gated")
    assert allowed.returncode == 0, allowed.stderr


def test_dry_run_json_is_the_plan(hub_env, hub_model_dir):
    done = pull(hub_env, "org/tiny", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["repo_id"] == "org/tiny" and plan["revision"] == "main"
    assert {f["path"]: f["size"] for f in plan["files"]}[WEIGHTS] == (hub_model_dir / WEIGHTS).stat().st_size
    assert plan["missing_bytes"] == plan["total_bytes"] > 0
    assert not (cache(hub_env) / "models--org--tiny" / "blobs").exists()
    assert os.path.basename(plan["cache_dir"]) == "hub"


def test_chat_downloads_a_model_it_does_not_have_with_progress(hub_env, hub_model_dir):
    env = {**hub_env, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "tuitune", "chat", "org/tiny", "--prompt", "hello",
                           "--temperature", "0", "--max-new-tokens", "3"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"  {WEIGHTS} done (15.4 MiB of 15.4 MiB)" in done.stderr  # the download, as pull shows it
    assert done.stderr.index(WEIGHTS) < done.stderr.index("loaded ")
    assert blob_files(cache(hub_env), "org/tiny")[WEIGHTS].read_bytes() == (hub_model_dir / WEIGHTS).read_bytes()
