"""How long work reports failure: one handler, shared by every screen and widget that starts workers.

Workers are started with `@work(thread=True, exclusive=True, exit_on_error=False, group=...)`, so a
failure does not end the app; instead the worker's node receives `Worker.StateChanged` with state
ERROR. Textual delivers that message only to the node that started the worker (it does not bubble),
hence a mixin rather than a handler on the app.
"""

from __future__ import annotations

from textual.worker import Worker, WorkerState


class ReportsWorkerErrors:
    """Mix into a Screen or Widget that runs workers: a failed worker opens the error dialog."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.app.show_error(event.worker.error)  # type: ignore[attr-defined]
