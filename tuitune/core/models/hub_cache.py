"""A hub model before it is downloaded: which files training and chat need, how big they are, what the
hub cache already holds, whether the disk has room, and one message for each way the hub says no.

The files live in huggingface_hub's normal cache (`HF_HUB_CACHE`, by default
~/.cache/huggingface/hub: `models--ORG--NAME/blobs`, `snapshots/COMMIT`, `refs/BRANCH`), so
transformers, vLLM and `hf` find them too. The sizes come from one metadata call
(`HfApi.model_info(files_metadata=True)`); nothing here transfers a weight.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# Files needed to train or chat; other repo files (onnx, gguf, original/ checkpoints) are skipped.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.tiktoken", "*.jinja"]
PARTIAL_SUFFIX = ".incomplete"  # blobs/<etag>.incomplete: the name huggingface_hub's cache tools know
LOGIN_HINT = "log in with `hf auth login`, or set HF_TOKEN to a token from {endpoint}/settings/tokens"


def select_files(paths: Iterable[str]) -> list[str]:
    """The repository files training and chat load, config.json first and the weights last.

    Safetensors weights when there are any (else PyTorch .bin); Mistral's `consolidated*.safetensors`
    is a second copy of the weights in another layout and is skipped when `model*.safetensors` exist.
    """
    from huggingface_hub.utils import filter_repo_objects

    paths = list(paths)
    chosen = list(filter_repo_objects(paths, allow_patterns=HUB_PATTERNS))
    weights = [p for p in chosen if p.endswith(".safetensors")]
    if not weights:  # an older repository: PyTorch weights (and their index, already a .json)
        chosen += [p for p in paths if p.endswith(".bin") and "/" not in p and "training_args" not in p]
    elif any(Path(p).name.startswith("model") for p in weights):
        chosen = [p for p in chosen if not Path(p).name.startswith("consolidated")]

    def order(p: str) -> tuple[int, str]:
        if p == "config.json":
            return 0, p
        return (2 if p.endswith((".safetensors", ".bin")) else 1), p

    return sorted(chosen, key=order)


@dataclass(frozen=True)
class HubFile:
    """One file of a download plan."""

    path: str
    size: int
    etag: str  # the blob's name in the cache: the LFS sha256, else the git blob id
    cached: bool  # already in the cache (nothing to transfer)
    partial: int = 0  # bytes kept from an interrupted download (it resumes from there)


@dataclass(frozen=True)
class DownloadPlan:
    """What `tuitune pull` (and training, chat) fetch for one model at one commit."""

    repo_id: str
    revision: str
    commit: str
    files: tuple[HubFile, ...]
    cache_dir: Path
    free_bytes: int | None  # on the disk holding the cache

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def cached_bytes(self) -> int:
        return sum(f.size for f in self.files if f.cached)

    @property
    def partial_bytes(self) -> int:
        return sum(f.partial for f in self.files if not f.cached)

    @property
    def missing_bytes(self) -> int:
        """Bytes still to transfer (interrupted files count only their rest)."""
        return sum(f.size - f.partial for f in self.files if not f.cached)

    @property
    def complete(self) -> bool:
        return all(f.cached for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cache_dir"] = str(self.cache_dir)
        d.update(total_bytes=self.total_bytes, cached_bytes=self.cached_bytes, missing_bytes=self.missing_bytes)
        return d


# --------------------------------------------------------------------------- the cache on disk


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def repo_folder(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def free_disk_bytes(path: Path) -> int | None:
    """Free bytes on the disk that holds `path` (or would: the nearest folder that exists)."""
    from tuitune.core.hardware import disk_info

    return disk_info(path).free_bytes


def _commit_of(repo_id: str, revision: str) -> str | None:
    if COMMIT_RE.match(revision):
        return revision
    ref = repo_folder(repo_id) / "refs" / revision
    try:
        return ref.read_text().strip() or None
    except OSError:
        return None


def _blob_state(repo_id: str, commit: str, path: str, etag: str) -> tuple[bool, int]:
    """(cached, partial bytes) of one file."""
    folder = repo_folder(repo_id)
    if (folder / "snapshots" / commit / path).is_file() or (folder / "blobs" / etag).is_file():
        return True, 0
    try:
        return False, (folder / "blobs" / (etag + PARTIAL_SUFFIX)).stat().st_size
    except OSError:
        return False, 0


def cached_snapshot(repo_id: str, revision: str = "main") -> Path | None:
    """The snapshot folder of a model the cache holds completely, without any network call.

    Complete means: every file the hub listed when it was downloaded (huggingface_hub keeps that
    list as the snapshot's tree cache), or, for a snapshot written without one, config.json plus
    every weight file its index names. A config.json fetched alone (for the memory estimate) does
    not make a model cached.
    """
    commit = _commit_of(repo_id, revision)
    if commit is None:
        return None
    snapshot = repo_folder(repo_id) / "snapshots" / commit
    if not (snapshot / "config.json").is_file():
        return None
    listed = _cached_tree(repo_id, commit)
    if listed is not None:
        needed = select_files(listed)
        return snapshot if all((snapshot / p).is_file() for p in needed) else None
    return snapshot if _weights_present(snapshot) else None


def _cached_tree(repo_id: str, commit: str) -> dict[str, int] | None:
    from huggingface_hub import get_cached_repo_tree

    try:
        return {f.path: f.size for f in get_cached_repo_tree(repo_id, revision=commit, cache_dir=hub_cache_dir())}
    except Exception:  # noqa: BLE001 - no listing kept: fall back to the weights check
        return None


def _weights_present(folder: Path) -> bool:
    import json

    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError):
                return False
            return all((folder / s).is_file() for s in shards)
    return (folder / "model.safetensors").is_file() or (folder / "pytorch_model.bin").is_file()


# --------------------------------------------------------------------------- the hub's metadata


def plan_download(repo_id: str, revision: str | None = None) -> DownloadPlan:
    """The files a model needs, their sizes and what is cached, from one hub metadata call.

    UserError (see `hub_user_error`) when the hub cannot be asked or says no.
    """
    from huggingface_hub import HfApi

    revision = revision or "main"
    check_online(repo_id)
    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as e:  # noqa: BLE001 - every hub failure becomes one message
        raise hub_user_error(e, repo_id, revision) from None
    siblings = {s.rfilename: s for s in info.siblings or ()}
    chosen = select_files(siblings)
    if "config.json" not in chosen:
        raise UserError(
            f"{repo_id} has no config.json: it is not a transformers model tuitune can train",
            "use a repository with config.json and safetensors weights (a GGUF repo works as a .gguf file path)",
        )
    commit = str(info.sha)
    files = []
    for path in chosen:
        s = siblings[path]
        etag = s.lfs.sha256 if s.lfs is not None else str(s.blob_id or "")
        size = s.lfs.size if s.lfs is not None else int(s.size or 0)
        cached, partial = _blob_state(repo_id, commit, path, etag)
        files.append(HubFile(path, int(size), etag, cached, partial))
    cache = hub_cache_dir()
    return DownloadPlan(repo_id, revision, commit, tuple(files), cache, free_disk_bytes(cache))


def check_space(plan: DownloadPlan, force: bool = False) -> None:
    """UserError when the disk holding the cache has less free space than the download needs."""
    from tuitune.core.units import format_bytes

    need = plan.missing_bytes
    if force or plan.free_bytes is None or need <= plan.free_bytes:
        return
    raise UserError(
        f"{plan.repo_id} needs {format_bytes(need)} more in {plan.cache_dir}, "
        f"but that disk has {format_bytes(plan.free_bytes)} free",
        "free some space, point HF_HUB_CACHE (or HF_HOME) at a bigger disk, "
        f"or pass --force to `tuitune pull {plan.repo_id}` to try anyway",
    )


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_online(repo_id: str) -> None:
    if hub_offline():
        raise UserError(
            f"cannot download {repo_id}: the hub is offline (HF_HUB_OFFLINE=1)",
            "unset HF_HUB_OFFLINE on a machine with internet, or copy the model folder here and use its path",
        )


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def logged_in() -> bool:
    from huggingface_hub import get_token

    try:
        return bool(get_token())
    except Exception:  # noqa: BLE001 - a broken token file reads as not logged in
        return False


def hub_user_error(error: BaseException, repo_id: str, revision: str = "main") -> UserError:
    """One message for what the hub said: gated, private or missing, no login, bad token, no such
    revision, unreachable. Each names the model and says how to get access."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = hub_endpoint()
    login = LOGIN_HINT.format(endpoint=endpoint)
    page = f"{endpoint}/{repo_id}"
    if isinstance(error, UserError):
        return error
    if isinstance(error, GatedRepoError):
        if not logged_in():
            return UserError(f"{repo_id} is gated: the hub needs to know who you are (not logged in)",
                             f"accept its terms at {page}, then {login}")
        return UserError(f"{repo_id} is gated and your hub account has no access to it yet",
                         f"accept its terms at {page} with the account of your token (`hf auth whoami` shows it)")
    if isinstance(error, RepositoryNotFoundError):
        if not logged_in():
            return UserError(f"{repo_id} is not on the hub, or it is private and you are not logged in",
                             f"check the name at {page}; for a private model, {login}")
        return UserError(f"{repo_id} is not on the hub, or your token cannot see it",
                         f"check the name at {page}, and that your account (`hf auth whoami`) belongs to its organisation")
    if isinstance(error, RevisionNotFoundError):
        return UserError(f"{repo_id} has no revision '{revision}'",
                         "use a branch, tag or commit of the repository (main by default)")
    if isinstance(error, HfHubHTTPError) and getattr(error.response, "status_code", None) == 401:
        return UserError(f"the hub refused the token sent for {repo_id} (invalid or expired)", login)
    if isinstance(error, OfflineModeIsEnabled):
        return UserError(f"cannot download {repo_id}: the hub is offline (HF_HUB_OFFLINE=1)",
                         "unset HF_HUB_OFFLINE on a machine with internet")
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return UserError(f"cannot get {repo_id} from the hub at {endpoint}: {first}",
                     "check the connection (and HF_ENDPOINT); models already in the cache work offline")


# --------------------------------------------------------------------------- for the app's screens


@dataclass(frozen=True)
class ModelAvailability:
    """Whether a hub model is on this machine and what is left to download."""

    repo_id: str
    cached: bool
    total_bytes: int | None = None  # the files training needs (None: unknown offline)
    missing_bytes: int | None = None
    files: int | None = None
    free_bytes: int | None = None
    problem: str = ""  # why the size is unknown (offline, gated, ...)
    bundled: bool = False  # the demo model, which works offline from its bundled GGUF

    @property
    def fits_disk(self) -> bool | None:
        if self.missing_bytes is None or self.free_bytes is None:
            return None
        return self.missing_bytes <= self.free_bytes


def model_availability(name: str, fetch: bool = True) -> ModelAvailability | None:
    """For a hub id: cached or not, and the download size (one metadata call when `fetch` and
    online). None for local paths and names that are not hub ids. Never raises."""
    text = str(name).strip()
    if not HUB_ID_RE.match(text) or Path(text).expanduser().exists():
        return None
    snapshot = cached_snapshot(text)
    if snapshot is not None:
        size = sum(f.stat().st_size for f in snapshot.iterdir() if f.is_file())
        return ModelAvailability(text, True, total_bytes=size, missing_bytes=0)
    if not fetch or hub_offline():
        from tuitune.core.models import demo_gguf_path
        from tuitune.core.recipe import DEMO_MODEL

        return ModelAvailability(text, False, problem="offline", bundled=text == DEMO_MODEL and demo_gguf_path() is not None)
    try:
        plan = plan_download(text)
    except UserError as e:
        return ModelAvailability(text, False, problem=e.message)
    return ModelAvailability(text, plan.complete, plan.total_bytes, plan.missing_bytes, len(plan.files),
                             plan.free_bytes)
