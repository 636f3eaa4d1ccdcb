"""A local stand-in for the Hugging Face Hub, for tests that run the real huggingface_hub client.

It serves repositories from folders on 127.0.0.1 the way the hub's HTTP API does, as far as the
client's download path uses it:

- `GET /api/models/ORG/NAME[/revision/REV][?blobs=true]`: model info (sha, siblings with size, blob
  id and LFS sha256);
- `GET /api/models/ORG/NAME/tree/REV`: the file listing `snapshot_download` reads;
- `HEAD|GET /ORG/NAME/resolve/REV/PATH`: `X-Repo-Commit`, `ETag` (the git blob id); LFS files
  (weights) answer 302 to `/cdn/ORG/NAME/SHA256` with `X-Linked-Etag` / `X-Linked-Size`, like the hub's CDN
  redirect (on this same server); `GET` honours `Range: bytes=N-` with 206 and `Content-Range`;
- errors with the hub's `X-Error-Code` headers: GatedRepo (401 without a token, 403 with one that
  has no access), RepoNotFound (401 for private repos and unknown names), RevisionNotFound,
  EntryNotFound.

Tests make transfers fail on purpose: `drop_after(path, n)` closes the connection after n bytes of
that file's next GET (the client retries with a Range in the same process); `stall_after(path, n)`
sends n bytes and then waits until `release()` (so a test can kill the client mid-file, or take a
picture of a download in progress); `rate` limits the bytes per second of every body.

Each request is recorded in `requests` as (method, path, Range header, Authorization header).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "hf_tuitune_local_test_token"  # the token the server accepts (HF_TOKEN in tests)
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubRepo:
    repo_id: str
    folder: Path
    gated: bool = False  # a token is needed, and it must be granted access
    private: bool = False  # a token is needed
    granted: bool = True  # whether TOKEN may read a gated repo
    files: dict[str, bytes] = field(default_factory=dict)
    commit: str = ""

    def __post_init__(self) -> None:
        for p in sorted(self.folder.rglob("*")):
            if p.is_file():
                self.files[p.relative_to(self.folder).as_posix()] = p.read_bytes()
        digest = hashlib.sha1(self.repo_id.encode())
        for name, data in self.files.items():
            digest.update(name.encode() + git_blob_id(data).encode())
        self.commit = digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def entry(self, path: str) -> dict:
        data = self.files[path]
        e = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
        if self.is_lfs(path):
            e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return e


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed or cancelled on purpose
            super().handle_error(request, client_address)


class FakeHub:
    """`with FakeHub() as hub: hub.add(...)`; `hub.url` is the HF_ENDPOINT."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str, str | None, str | None]] = []
        self.rate: float | None = None  # bytes per second for bodies
        self._drops: dict[str, int] = {}
        self._stalls: dict[str, int] = {}
        self.stalled = threading.Event()  # set once a stalled transfer is waiting
        self._release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo_id: str, folder: Path, **flags: bool) -> HubRepo:
        repo = HubRepo(repo_id, Path(folder), **flags)
        self.repos[repo_id] = repo
        return repo

    def drop_after(self, path: str, n: int) -> None:
        self._drops[path] = n

    def stall_after(self, path: str, n: int) -> None:
        self._stalls[path] = n
        self.stalled.clear()
        self._release.clear()

    def release(self) -> None:
        self._stalls.clear()
        self._release.set()

    def gets(self, suffix: str) -> list[tuple[str, str, str | None, str | None]]:
        """GET requests for a file (its resolve or CDN address) whose path ends with `suffix`."""
        return [r for r in self.requests if r[0] == "GET" and r[1].endswith(suffix)]

    def env(self, home: Path) -> dict[str, str]:
        """Environment for a client process: this server, an empty hub cache under `home`, online."""
        return {"HF_ENDPOINT": self.url, "HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"),
                "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        # ------------------------------------------------------------ routing

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, head: bool) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            hub.requests.append((self.command, path, self.headers.get("Range"), self.headers.get("Authorization")))
            if path.startswith("/cdn/"):
                return self._cdn(path[len("/cdn/"):], head)
            m = re.match(r"^/api/models/([^/]+/[^/]+)(?:/(tree|revision)/([^/]+)(?:/(.*))?)?$", path)
            if m:
                repo = self._repo(m.group(1))
                if repo is None:
                    return
                if m.group(2) == "tree":
                    if not self._revision(repo, m.group(3)):
                        return
                    return self._json([repo.entry(p) for p in repo.files])
                if m.group(2) == "revision" and not self._revision(repo, m.group(3)):
                    return
                blobs = parse_qs(url.query).get("blobs", ["false"])[0].lower() == "true"
                return self._json(self._info(repo, blobs))
            m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if m:
                repo = self._repo(m.group(1))
                if repo is None or not self._revision(repo, m.group(2)):
                    return
                return self._resolve(repo, m.group(3), head)
            self._error(404, "", "Not found")

        # ------------------------------------------------------------ answers

        def _repo(self, repo_id: str) -> HubRepo | None:
            repo = hub.repos.get(repo_id)
            auth = self.headers.get("Authorization", "")
            token_ok = auth == f"Bearer {TOKEN}"
            if auth and not token_ok:
                self._error(401, "", "Invalid credentials in Authorization header")
                return None
            if repo is None or (repo.private and not token_ok):
                self._error(401, "RepoNotFound", "Repository not found")
                return None
            if repo.gated and not token_ok:
                self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                                               "to it and be authenticated to access it. Please log in.")
                return None
            if repo.gated and not repo.granted:
                self._error(403, "GatedRepo", f"Access to model {repo_id} is restricted and you are not in the "
                                               "authorized list.")
                return None
            return repo

        def _revision(self, repo: HubRepo, revision: str) -> bool:
            if unquote(revision) in ("main", repo.commit):
                return True
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return False

        def _info(self, repo: HubRepo, blobs: bool) -> dict:
            siblings = []
            for p in repo.files:
                s: dict = {"rfilename": p}
                if blobs:
                    e = repo.entry(p)
                    s.update(size=e["size"], blobId=e["oid"])
                    if "lfs" in e:
                        s["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"], "pointerSize": 134}
                siblings.append(s)
            return {"id": repo.repo_id, "modelId": repo.repo_id, "sha": repo.commit, "private": repo.private,
                    "gated": "manual" if repo.gated else False, "disabled": False, "tags": [],
                    "siblings": siblings}

        def _resolve(self, repo: HubRepo, name: str, head: bool) -> None:
            if name not in repo.files:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = repo.files[name]
            if repo.is_lfs(name):
                sha = hashlib.sha256(data).hexdigest()
                self.send_response(302)
                self.send_header("Location", f"{hub.url}/cdn/{repo.repo_id}/{sha}")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("ETag", f'"{git_blob_id(data)}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._body(data, name, head, {"X-Repo-Commit": repo.commit, "ETag": f'"{git_blob_id(data)}"'})

        def _cdn(self, where: str, head: bool) -> None:
            repo_id, _, sha = where.rpartition("/")
            repo = hub.repos.get(repo_id)
            for name, data in (repo.files.items() if repo else ()):
                if hashlib.sha256(data).hexdigest() == sha:
                    # The hub's CDN is another host (not followed by HEAD); here it is this server,
                    # which the client follows, so it answers with the commit too.
                    return self._body(data, name, head, {"ETag": f'"{sha}"', "X-Repo-Commit": repo.commit})
            self._error(404, "", "no such blob")

        def _body(self, data: bytes, name: str, head: bool, headers: dict[str, str]) -> None:
            start = 0
            rng = self.headers.get("Range")
            m = re.match(r"^bytes=(\d+)-$", rng or "")
            if m and not head:
                start = int(m.group(1))
            self.send_response(206 if start else 200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if head:
                return
            stop_at = None
            stall = False
            for path, n in list(hub._drops.items()):
                if name.endswith(path) and n > start:
                    stop_at = n
                    del hub._drops[path]
            for path, n in list(hub._stalls.items()):
                if name.endswith(path) and n > start:
                    stop_at, stall = n, True
            try:
                self._send(data[start:stop_at] if stop_at is not None else data[start:])
                if stop_at is None:
                    return
                if stall:
                    hub.stalled.set()
                    hub._release.wait(120)
                self.close_connection = True  # the rest never comes: the client sees a short body
                self.connection.shutdown(2)
            except OSError:  # the client went away (killed on purpose)
                self.close_connection = True

        def _send(self, chunk: bytes) -> None:
            if hub.rate is None:
                self.wfile.write(chunk)
                self.wfile.flush()
                return
            step = max(1, int(hub.rate / 20))
            for i in range(0, len(chunk), step):
                self.wfile.write(chunk[i:i + step])
                self.wfile.flush()
                time.sleep(0.05)

        def _json(self, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


def build_hub_model(out_dir: Path) -> Path:
    """A tiny Llama whose weights file is ~16 MB: many of the 1 MiB chunks tuitune downloads in (and
    more than huggingface_hub's own 10 MiB), so a transfer can be cut part way and resumed, and a bar
    seen moving (the tokenizer is tiny_model's)."""
    import torch
    from tiny_model import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=10240, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "README.md").write_text("# a test model\n")  # not selected for download
    return out_dir


# --------------------------------------------------------------------------- pytest fixtures
# Registered for every test by tests/conftest.py.

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def hub_model_dir(tmp_path_factory) -> Path:
    return build_hub_model(tmp_path_factory.mktemp("hub-model"))


@pytest.fixture
def fake_hub(hub_model_dir):
    """The local hub with org/tiny (open), org/gated (gated, access granted to TOKEN), org/refused
    (gated, not granted) and org/private, all serving the same tiny model."""
    with FakeHub() as hub:
        hub.add("org/tiny", hub_model_dir)
        hub.add("org/gated", hub_model_dir, gated=True)
        hub.add("org/refused", hub_model_dir, gated=True, granted=False)
        hub.add("org/private", hub_model_dir, private=True)
        yield hub


@pytest.fixture
def hub_env(fake_hub, tmp_path) -> dict[str, str]:
    """Environment for a client subprocess: online against the local hub, own empty cache, no login.
    The tests' global HF_HUB_OFFLINE=1 is lifted for that process only."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(fake_hub.env(tmp_path / "hf-home"))
    return env


def client_constants(hub: FakeHub, home: Path) -> dict[str, object]:
    """huggingface_hub's settings (read from the environment at import) for a client of `hub` with
    its own cache under `home` and no login: what `online_hub` patches in this process."""
    import os

    return {"ENDPOINT": hub.url, "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False, "HF_HUB_CACHE": str(home / "hub"),
            "HF_TOKEN_PATH": os.path.join(home, "token"), "HF_STORED_TOKENS_PATH": os.path.join(home, "stored_tokens")}


@pytest.fixture
def online_hub(fake_hub, tmp_path, monkeypatch) -> FakeHub:
    """This process's huggingface_hub talks to the local hub (read at import, so its constants are
    patched) with its own cache and no login, until the test ends."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    for key, value in fake_hub.env(home).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for name, value in client_constants(fake_hub, home).items():
        monkeypatch.setattr(constants, name, value)
    return fake_hub


def blob_files(cache: Path, repo_id: str) -> dict[str, Path]:
    """name -> file of a model's snapshot in a hub cache (following the snapshot links)."""
    snapshots = sorted((cache / ("models--" + repo_id.replace("/", "--")) / "snapshots").iterdir())
    assert len(snapshots) == 1, snapshots
    return {p.name: p.resolve() for p in snapshots[0].iterdir()}
