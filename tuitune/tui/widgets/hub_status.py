"""For a hub model: is it in the hub cache, and if not how much is left to download; `pull()` downloads
it now with a progress bar (the Hardware screen's ctrl+l). Local folders and catalog-only names show
nothing. Everything comes from core (`hub_cache.model_availability`, `hub_download.fetch_model`) in
thread workers: the cache check is a few file reads, the size one metadata call to the hub."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import ProgressBar, Static

from tuitune.core.events import DownloadEvent, format_duration
from tuitune.core.units import format_bytes
from tuitune.tui.i18n import t

DEBOUNCE_S = 0.4  # a name being typed is looked up once it rests
PROGRESS_EVERY_S = 0.25  # progress repaints a second: at most four
STALL_S = 5.0  # no bytes for this long: the speed shows 0


def download_line(lang: str, d: DownloadEvent) -> str:
    """One line for a download's progress (a `download` event):
    'model.safetensors · 11.0 MiB of 15.4 MiB · 2.0 MiB/s · ETA 0:02'."""
    return t("hub.progress", lang, file=d.file or "-", done=format_bytes(d.done),
             total=format_bytes(d.total), speed=format_bytes(d.speed), eta=format_duration(d.eta_s))


class HubStatus(Vertical):
    DEFAULT_CSS = """
    HubStatus { height: auto; }
    HubStatus > #hub-text { height: auto; color: $text-muted; }
    HubStatus.-cached > #hub-text { color: $text-success; }
    HubStatus.-warning > #hub-text { color: $text-warning; }
    HubStatus ProgressBar { height: 1; display: none; }
    HubStatus.-pulling ProgressBar { display: block; }
    HubStatus.-hidden { display: none; }
    """

    class Looked(Message):
        def __init__(self, request: int, name: str, availability: Any) -> None:
            super().__init__()
            self.request, self.name, self.availability = request, name, availability

    class Pulled(Message):
        """The end of a pull: its folder (`path`), its failure (`error`) or `cancelled`."""

        def __init__(self, path: str = "", error: str = "", cancelled: bool = False) -> None:
            super().__init__()
            self.path, self.error, self.cancelled = path, error, cancelled

    def __init__(self, lang: str, can_pull: bool = False, title: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.lang = lang
        self.title = title  # a heading above the line (the Recipe screen's side column)
        self.can_pull = can_pull
        self.name_shown = ""  # the model the text is about
        self.availability: Any = None  # core ModelAvailability, None for local and catalog names
        self._known: dict[str, Any] = {}  # name -> availability, asked once per name
        self._request = self._answered = 0
        self._timer: Timer | None = None
        self._cancel: threading.Event | None = None  # set while a pull runs
        self._latest: Any = None  # the newest DownloadProgress, left here by the worker thread
        self._shown_progress: Any = None
        self._ticker: Timer | None = None
        self._shown_at = 0.0
        self._stall_shown = False

    def compose(self) -> ComposeResult:
        if self.title:
            yield Static(self.title, classes="side-title", markup=False)
        yield Static("", id="hub-text", markup=False)
        yield ProgressBar(total=None, show_eta=False)

    @property
    def is_settled(self) -> bool:
        return self._answered == self._request and self._timer is None

    @property
    def pulling(self) -> bool:
        return self._cancel is not None

    # ------------------------------------------------------------------ looking

    def show_for(self, name: str) -> None:
        """Say what the cache holds for this model, soon (typing debounced)."""
        from tuitune.core.models.catalog import recipe_model_name

        name = recipe_model_name(str(name).strip())  # a catalog alias trains as its hub id
        if name == self.name_shown and self.is_settled or self.pulling:
            return
        if self._timer is not None:
            self._timer.stop()
        self._request += 1
        request = self._request
        if name in self._known:
            self._timer = None
            self._answered = request
            self._show(name, self._known[name])
            return

        def start() -> None:
            self._timer = None
            self._look(name, request)

        self._timer = self.set_timer(DEBOUNCE_S, start)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-status")
    def _look(self, name: str, request: int) -> None:
        from tuitune.core.models.hub_cache import model_availability

        self.post_message(self.Looked(request, name, model_availability(name)))

    def on_hub_status_looked(self, event: Looked) -> None:
        event.stop()
        self._known[event.name] = event.availability
        if event.request == self._request:
            self._answered = event.request
            self._show(event.name, event.availability)

    def _show(self, name: str, a: Any) -> None:
        self.name_shown, self.availability = name, a
        self.set_class(a is None, "-hidden")
        self.set_class(a is not None and a.cached, "-cached")
        warn = a is not None and not a.cached and (a.fits_disk is False or (a.problem not in ("", "offline")))
        self.set_class(warn, "-warning")
        if a is None:
            return
        lang = self.lang
        if a.cached:
            text = t("hub.cached", lang, size=format_bytes(a.total_bytes))
        elif a.bundled:
            text = t("hub.bundled", lang)
        elif a.problem == "offline":
            text = t("hub.offline", lang)
        elif a.problem:
            text = t("hub.problem", lang, problem=a.problem)
        elif a.fits_disk is False:
            text = t("hub.no_room", lang, size=format_bytes(a.missing_bytes), free=format_bytes(a.free_bytes))
        else:
            text = t("hub.missing", lang, size=format_bytes(a.missing_bytes), files=a.files,
                     free=format_bytes(a.free_bytes))
        if self.can_pull and not a.cached and not a.problem:
            text += "\n" + t("hub.pull_hint", lang)
        self.query_one("#hub-text", Static).update(text)

    # ------------------------------------------------------------------ pulling

    def pull(self) -> bool:
        """Download the model shown now; False (and a notification) when there is nothing to download."""
        a = self.availability
        if self.pulling:
            return True
        if a is None or a.cached or a.problem:
            self.app.notify(t("hub.nothing_to_pull", self.lang, model=self.name_shown or "-"), severity="warning")
            return False
        self._cancel = threading.Event()
        self.add_class("-pulling")
        self.query_one(ProgressBar).update(total=a.missing_bytes or None, progress=0)
        self._latest = self._shown_progress = None
        # The worker only leaves its newest progress here; the screen looks a few times a second, so a
        # fast download cannot flood the message queue and a stalled one still shows its last chunk.
        self._ticker = self.set_interval(PROGRESS_EVERY_S, self._show_progress)
        self._pull(self.name_shown, self._cancel)
        return True

    def cancel_pull(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-pull")
    def _pull(self, name: str, cancel: threading.Event) -> None:
        from tuitune.core.errors import UserError
        from tuitune.core.models.hub_download import DownloadCancelled, fetch_model

        def progress(p: Any) -> None:
            self._latest = p

        try:
            path = fetch_model(name, progress=progress, cancel=cancel)
        except DownloadCancelled:
            self.post_message(self.Pulled(cancelled=True))
        except UserError as e:
            self.post_message(self.Pulled(error=e.message))
        else:
            self.post_message(self.Pulled(path=str(path)))

    def _show_progress(self) -> None:
        p, now = self._latest, time.monotonic()
        if p is None:
            return
        if p is not self._shown_progress:
            self._shown_progress, self._shown_at, self._stall_shown = p, now, False
        elif self._stall_shown or now - self._shown_at < STALL_S:
            return
        else:  # nothing new for a while (huggingface_hub waits, then retries): no speed to show
            self._stall_shown = True
            p = replace(p, speed=0.0)
        self.query_one(ProgressBar).update(total=p.total or None, progress=p.done)
        self.query_one("#hub-text", Static).update(
            t("hub.downloading", self.lang, progress=download_line(self.lang, p.event())))

    def on_hub_status_pulled(self, event: Pulled) -> None:
        event.stop()
        lang, name = self.lang, self.name_shown
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._cancel = None
        self.remove_class("-pulling")
        self._known.pop(name, None)
        if event.error:
            self.app.notify(t("hub.pull_failed", lang, model=name, error=event.error), severity="error")
        elif event.cancelled:
            self.app.notify(t("hub.cancelled", lang, model=name), severity="warning")
        else:
            self.app.notify(t("hub.pulled", lang, model=name))
        self.name_shown = ""
        self.show_for(name)
