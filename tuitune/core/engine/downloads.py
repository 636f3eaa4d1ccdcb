"""A model download inside a training run, told through the run's events.

Loading a hub model that is not cached downloads it (`models.resolve_model` -> `hub_download`). While
that happens the trainer writes `download` events (file, bytes done and total, speed, ETA; at most one
a second plus one as each file ends), and as soon as config.json has arrived an `estimate` event: the
memory estimator needs only the architecture, so whether the run will fit is known long before the
weights are. A stop request ends the download at the next chunk; what arrived stays for the resume.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from tuitune.core.engine.report import Reporter
from tuitune.core.events import EstimateEvent
from tuitune.core.models.hub_download import DownloadCancelled, DownloadProgress, reporting
from tuitune.core.recipe import Recipe
from tuitune.core.units import format_bytes

EVENT_EVERY_S = 1.0
STALL_S = 5.0  # no bytes for this long: a `download` event with speed 0


class DownloadEvents:
    """The progress callback for `hub_download.reporting` inside a run.

    Progress comes per chunk on the loading thread; events are written at most every EVENT_EVERY_S.
    A chunk held back by that limit is written by a small ticker thread a moment later, so the last
    figures before a stall still reach the run's events. One lock orders all the writes.
    """

    def __init__(self, recipe: Recipe, reporter: Reporter, device: str, stopping: Callable[[], bool]) -> None:
        self.recipe = recipe
        self.reporter = reporter
        self.device = device
        self.stopping = stopping
        self.started = False
        self.estimated = False
        self._lock = threading.Lock()
        self._written: DownloadProgress | None = None
        self._written_at = 0.0
        self._pending: DownloadProgress | None = None
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, p: DownloadProgress) -> None:
        if self.stopping():
            raise DownloadCancelled(p.repo_id)
        with self._lock:
            if not self.started:
                self.started = True
                self.reporter.status("loading", f"downloading {p.repo_id}: {p.files_total} files, "
                                                f"{format_bytes(p.total - p.done)} to fetch")
                self._ticker = threading.Thread(target=self._tick, name="download-events", daemon=True)
                self._ticker.start()
            if p.finished or self._written is None or time.monotonic() - self._written_at >= EVENT_EVERY_S:
                self._write(p)
            else:
                self._pending = p
        if not self.estimated and (p.files_done >= 1 or p.finished):  # config.json comes first
            self.estimated = True
            self._estimate()

    def _write(self, p: DownloadProgress) -> None:
        self.reporter.emit(p.event())
        self._written, self._written_at, self._pending = p, time.monotonic(), None

    def _tick(self) -> None:
        while not self._closed.wait(EVENT_EVERY_S / 2):
            with self._lock:
                quiet = time.monotonic() - self._written_at
                if self._pending is not None and quiet >= EVENT_EVERY_S:
                    self._write(self._pending)
                elif self._written is not None and not self._written.finished and quiet >= STALL_S:
                    # Nothing arrived for a while (huggingface_hub waits, then retries): say so
                    # rather than leave the last speed standing.
                    self._write(replace(self._written, speed=0.0))

    def close(self) -> None:
        self._closed.set()
        if self._ticker is not None:
            self._ticker.join()

    def _estimate(self) -> None:
        try:
            event = estimate_event(self.recipe, self.device)
        except Exception as e:  # noqa: BLE001 - the estimate is a courtesy: never fail the run over it
            with self._lock:
                self.reporter.warning(f"no memory estimate before loading: {str(e).splitlines()[0][:200]}")
            return
        with self._lock:
            self.reporter.emit(event)


def estimate_event(recipe: Recipe, device: str) -> EstimateEvent:
    """The `estimate` event: the training peak the estimator expects against the memory free here
    (the GPU's free memory, or available RAM when training on the CPU) and its verdict."""
    from tuitune.core.memory import estimate
    from tuitune.core.models.loading import bf16_supported
    from tuitune.core.models.precision import cpu_bf16_native
    from tuitune.core.models.spec import model_spec

    spec = model_spec(recipe.model_path)
    if device == "cuda":
        import torch

        available, where = torch.cuda.mem_get_info()[0], f"cuda:{torch.cuda.current_device()}"
        bf16 = bf16_supported(device)
    else:
        from tuitune.core.hardware import ram_info

        available, where, bf16 = ram_info().available_bytes, "cpu", cpu_bf16_native()
    est = estimate(spec, recipe, available, device=device, bf16=bf16)
    return EstimateEvent(model=recipe.model.name_or_path, train_peak_bytes=int(est.train_peak_bytes),
                         available_bytes=available, where=where, verdict=est.verdict)


@contextmanager
def download_events(recipe: Recipe, reporter: Reporter, device: str, stopping: Callable[[], bool]) -> Iterator[None]:
    """Within this block, a model download reports as `download` / `estimate` events."""
    events = DownloadEvents(recipe, reporter, device, stopping)
    try:
        with reporting(events):
            yield
    finally:
        events.close()
