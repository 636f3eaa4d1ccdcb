"""Download a hub model into the hub cache with progress, resuming an interrupted transfer.

`fetch_model(repo_id)` is what `tuitune pull`, training and chat call (through
`models.resolve_model`): plan (hub metadata), check the disk, transfer the files one at a time
(config.json first, so the memory estimate can answer before the weights arrive), then let
huggingface_hub's `snapshot_download` write the snapshot links, the ref and its file listing.

Why the transfer is not plain `snapshot_download`: huggingface_hub writes each file to a temporary
name unique to the process and deletes it when the process ends early, so a download cut by a lost
SSH session restarts from zero. Here each file goes to `blobs/<etag>.incomplete` (named after its
content, under huggingface_hub's own lock for that blob) and the next attempt asks for the rest with
an HTTP Range through huggingface_hub's `http_get`, which also retries a dropped connection in place.
A resumed LFS file is checked against its sha256 before it enters the cache.

Progress goes to a callback given here or set for a block with `reporting(callback)` (the trainer
and the chat screen use that: their download happens deep inside model loading).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.events import DownloadEvent
from tuitune.core.models.hub_cache import (
    PARTIAL_SUFFIX,
    DownloadPlan,
    HubFile,
    check_space,
    hub_user_error,
    plan_download,
    repo_folder,
)

SPEED_WINDOW_S = 10.0  # speed is measured over the last few seconds, so a stall shows quickly
# huggingface_hub reads and writes 10 MiB at a time: on a slow link the bar would stand still for
# seconds, a stop would wait as long and an interruption would lose up to 10 MiB. 1 MiB keeps all
# three small at no measurable cost (its `http_get` reads the module constant on each call).
CHUNK_BYTES = 2**20


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands. Bytes count every selected file (cached ones as done)."""

    repo_id: str
    file: str  # the file being transferred ("" before the first and after the last)
    file_done: int
    file_total: int
    done: int
    total: int
    speed: float  # bytes per second over the last seconds (0 until measured)
    files_done: int
    files_total: int
    finished: bool = False

    @property
    def eta_s(self) -> float | None:
        if self.finished:
            return 0.0
        return (self.total - self.done) / self.speed if self.speed > 0 else None

    def event(self) -> DownloadEvent:
        """The `download` event for events.jsonl."""
        eta = self.eta_s
        return DownloadEvent(model=self.repo_id, file=self.file, file_done=self.file_done,
                             file_total=self.file_total, done=self.done, total=self.total,
                             speed=round(self.speed, 1), eta_s=None if eta is None else round(eta, 1),
                             files_done=self.files_done, files_total=self.files_total, finished=self.finished)


ProgressCallback = Callable[[DownloadProgress], None]


class DownloadCancelled(Exception):
    """The cancel event was set; what arrived is kept and the next attempt resumes from it."""


_reporter: ContextVar[ProgressCallback | None] = ContextVar("tuitune_download_progress", default=None)
_cancel: ContextVar[threading.Event | None] = ContextVar("tuitune_download_cancel", default=None)


@contextlib.contextmanager
def reporting(callback: ProgressCallback | None, cancel: threading.Event | None = None) -> Iterator[None]:
    """Send the progress of any download started in this block (this thread) to `callback`; a set
    `cancel` stops it between chunks with DownloadCancelled."""
    token, cancel_token = _reporter.set(callback), _cancel.set(cancel)
    try:
        yield
    finally:
        _reporter.reset(token)
        _cancel.reset(cancel_token)


class _Meter:
    """Counts bytes for one plan and turns them into DownloadProgress for the callback."""

    def __init__(self, plan: DownloadPlan, callback: ProgressCallback | None, cancel: threading.Event | None) -> None:
        self.plan = plan
        self.callback = callback
        self.cancel = cancel
        self.done = sum(f.size if f.cached else 0 for f in plan.files)
        self.files_done = sum(1 for f in plan.files if f.cached)
        self.file, self.file_done, self.file_total = "", 0, 0
        self._samples: deque[tuple[float, int]] = deque()  # (time, bytes transferred by this process)
        self._moved = 0

    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def _sample(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self._moved))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()

    def start_file(self, f: HubFile, already: int) -> None:
        self.file, self.file_done, self.file_total = f.path, already, f.size
        self.done += already
        self._sample()
        self.emit()

    def add(self, n: int) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise DownloadCancelled(self.plan.repo_id)
        self.file_done += n
        self.done += n
        self._moved += n
        self._sample()
        self.emit()

    def end_file(self) -> None:
        self.done += self.file_total - self.file_done  # a file another process finished meanwhile
        self.file_done = self.file_total
        self.files_done += 1
        self.emit()

    def emit(self, finished: bool = False) -> None:
        if self.callback is None:
            return
        self.callback(DownloadProgress(
            self.plan.repo_id, "" if finished else self.file, self.file_done, self.file_total,
            self.done, self.plan.total_bytes, self.speed(), self.files_done, len(self.plan.files), finished))

    def bar_class(self) -> type:
        """A tqdm stand-in for huggingface_hub's `http_get` (it calls update(n) per chunk)."""
        meter = self

        class _Bar:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                pass

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: Any) -> None:
                pass

            def update(self, n: float | None = 1) -> None:
                meter.add(int(n or 0))

            def update_transfer(self, n: float | None = 1) -> None:
                pass

            def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
                pass

            def close(self) -> None:
                pass

        return _Bar


def fetch_model(
    repo_id: str,
    revision: str | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Plan, check the disk, download: the snapshot folder of the complete model in the hub cache."""
    plan = plan_download(repo_id, revision)
    if not plan.complete:
        check_space(plan, force=force)
    return download(plan, progress=progress, cancel=cancel)


def download(plan: DownloadPlan, progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> Path:
    """Transfer what the plan lacks; returns the snapshot folder. DownloadCancelled when `cancel` is
    set (partial files stay for the next attempt); UserError for what the hub refuses."""
    meter = _Meter(plan, progress or _reporter.get(), cancel or _cancel.get())
    try:
        for f in plan.files:
            if f.cached:
                continue
            _fetch_file(plan, f, meter)
            meter.end_file()
        snapshot = _link_snapshot(plan)
    except (DownloadCancelled, UserError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - the hub's and the network's errors become one message
        raise hub_user_error(e, plan.repo_id, plan.revision) from None
    meter.emit(finished=True)
    return snapshot


def _fetch_file(plan: DownloadPlan, f: HubFile, meter: _Meter) -> None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    url = hf_hub_url(plan.repo_id, f.path, revision=plan.commit)
    meta = get_hf_file_metadata(url)  # HEAD: the blob's etag, size and (for LFS files) its CDN address
    etag = meta.etag or f.etag
    size = meta.size if meta.size is not None else f.size
    folder = repo_folder(plan.repo_id)
    blob = folder / "blobs" / etag
    partial = blob.with_name(etag + PARTIAL_SUFFIX)
    lock = folder.parent / ".locks" / folder.name / f"{etag}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):  # the lock huggingface_hub takes for this blob: one writer per file
        if blob.is_file():
            meter.start_file(f, 0)
            return
        already = partial.stat().st_size if partial.is_file() else 0
        if already > size:  # not this content after all
            partial.unlink()
            already = 0
        meter.start_file(f, already)
        headers = build_hf_headers()
        location = meta.location or url
        if _host(location) != _host(url):
            headers.pop("authorization", None)  # a signed CDN address must not get the hub token
        from huggingface_hub import constants

        constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, CHUNK_BYTES)
        with open(partial, "ab") as out:
            http_get(location, out, resume_size=already, headers=headers, expected_size=size,
                     displayed_filename=f.path, tqdm_class=meter.bar_class())
        if already and len(etag) == 64:
            _check_sha256(partial, etag, plan.repo_id, f.path)
        os.replace(partial, blob)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def _check_sha256(path: Path, expected: str, repo_id: str, name: str) -> None:
    """A file joined from two transfers must hash like the hub says before it enters the cache."""
    from huggingface_hub.utils.sha import sha_fileobj

    with open(path, "rb") as fh:
        actual = sha_fileobj(fh).hex()
    if actual != expected:
        path.unlink(missing_ok=True)
        raise UserError(f"{repo_id}: {name} does not match the hub's checksum after resuming; the partial file was deleted",
                        "run the download again: it starts this file from the beginning")


def _link_snapshot(plan: DownloadPlan) -> Path:
    """huggingface_hub's own bookkeeping for the files now in blobs/: snapshot links, refs/<revision>
    and the tree listing (which later tells an offline `cached_snapshot` the model is complete)."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    class Silent(tqdm):  # nothing is transferred in this pass: no bar
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": True})

    path = snapshot_download(plan.repo_id, revision=plan.revision, allow_patterns=[f.path for f in plan.files],
                             tqdm_class=Silent)
    return Path(path)
