"""Chat & Eval: talk to a tuned run (or any model) with replies streamed as they are generated, answer
one prompt with the base and the tuned model side by side on the same seed, and evaluate the run in
the background.

The model is loaded and answers in thread workers (torch works outside the GIL, so the event loop
stays free); torch is imported there, never at import time. Side by side uses core's ChatSession:
a PEFT run's base answer is the same loaded model with its adapter switched off, not a second load.
Evaluation is `tuitune eval RUN --json` in a child process of its own, so it can run while you chat;
benchmarks (`tuitune eval RUN --tasks ... --json`, lm-eval) run in another, at the same time if asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Static, TabbedContent, TabPane

from tuitune.core.errors import UserError
from tuitune.core.runs import RemoteCodeRefused
from tuitune.tui.child_process import child_env
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.widgets.benchmark_panel import BenchmarkPanel
from tuitune.tui.widgets.chat_log import ChatLog, Reply
from tuitune.tui.widgets.eval_panel import EvalPanel
from tuitune.tui.widgets.generation_settings import GenerationSettingsBar

EVAL_MAX_SAMPLES = 50  # examples scored by the panel's evaluation (the CLI's default is 100)


def generation_threads() -> int:
    """Threads for torch on CPU: all cores but one, which stays with the event loop."""
    return max(1, (os.cpu_count() or 2) - 1)


def eval_command(run: str, runs_dir: str, max_samples: int = EVAL_MAX_SAMPLES) -> list[str]:
    from tuitune.tui.remote_code import remote_code_args

    return [sys.executable, "-m", "tuitune", "eval", run, "--json", "--runs-dir", runs_dir, "--max-samples", str(max_samples),
            *remote_code_args(run)]


def benchmark_command(run: str, runs_dir: str, tasks: list[str], limit: int | None) -> list[str]:
    command = [sys.executable, "-m", "tuitune", "eval", run, "--json", "--runs-dir", runs_dir, "--tasks", ",".join(tasks)]
    return command + (["--limit", str(limit)] if limit else [])


class ChatScreen(TuituneScreen):
    MODE = "chat"

    BINDINGS = [
        Binding("ctrl+l", "load", "chat.load", show=False),  # enter in the run field does the same
        Binding("ctrl+t", "compare", "chat.compare"),
        Binding("ctrl+s", "stop", "chat.stop"),
        Binding("ctrl+n", "new_chat", "chat.new"),
        Binding("ctrl+r", "evaluate", "chat.evaluate"),
        Binding("ctrl+b", "benchmarks", "bench.run", show=False),  # named in the panel: the footer is full at 80
        Binding("ctrl+y", "switch_pane", "chat.switch", show=False),  # the footer has no room at 80 columns
    ]

    DEFAULT_CSS = """
    ChatScreen {
        #chat-top { height: 1; }
        #chat-top Label { padding: 0 1; color: $text-muted; }
        #chat-target { width: 1fr; height: 1; border: none; padding: 0 1; background: $boost; }
        #chat-target:focus { background: $primary 40%; }
        #chat-state { height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
        #chat-state.-error { color: $text-error; }
        #chat-state.-ready { color: $text-success; }
        #chat-tabs { height: 1fr; }
        #chat-tabs TabPane { padding: 0; }
        #chat-mode { height: auto; max-height: 2; padding: 0 1; color: $text-muted; background: $boost; }
        #chat-prompt-row { height: 1; margin: 1 0 0 0; }
        #chat-prompt-row Label { padding: 0 1; color: $text-accent; text-style: bold; }
        #chat-prompt { width: 1fr; height: 1; border: none; padding: 0 1; background: $boost; }
        #chat-prompt:focus { background: $primary 40%; }
    }
    """

    # ------------------------------------------------------------------ messages from workers

    class Loaded(Message):
        def __init__(self, request: int, target: str, session: Any = None, error: BaseException | None = None) -> None:
            super().__init__()
            self.request, self.target, self.session, self.error = request, target, session, error

    class Streamed(Message, bubble=False):  # many of these: the screen handles them, the app need not
        """Text so far of one reply (merged: at most one message per stream_interval_s)."""

        def __init__(self, reply: Reply, text: str, finished: bool = False, stopped: bool = False) -> None:
            super().__init__()
            self.reply, self.text, self.finished, self.stopped = reply, text, finished, stopped

    class Generated(Message):
        def __init__(self, text: str | None, error: BaseException | None = None) -> None:
            super().__init__()
            self.text, self.error = text, error

    class EvalProgress(Message):
        def __init__(self, kind: str, request: int, stage: str) -> None:
            super().__init__()
            self.kind, self.request, self.stage = kind, request, stage  # kind: answers | benchmarks

    class Evaluated(Message):
        def __init__(self, kind: str, request: int, report: dict[str, Any] | None, error: str = "") -> None:
            super().__init__()
            self.kind, self.request, self.report, self.error = kind, request, report, error

    stream_interval_s = 0.05  # replies repaint at most 20 times a second

    def __init__(self) -> None:
        super().__init__()
        self.session: Any = None  # core ChatSession once loaded
        self.loading = False
        self.generating = False
        self.listed = False
        self.compare_mode = False
        # A tuned run opens side by side with its base ("did it work?"); once ctrl+t is pressed the
        # user's choice holds for later loads.
        self._compare_chosen = False
        self.messages: list[dict[str, str]] = []  # the conversation with the tuned model
        self._load_request = 0
        self._cancel = threading.Event()
        self._load_cancel = threading.Event()  # stops a model download when another load is asked for
        self._download: tuple[int, str, Any] | None = None  # (load request, target, DownloadProgress) from the loader
        self._download_shown: Any = None
        # One evaluation child per kind ("answers": ctrl+r, "benchmarks": ctrl+b); both may run at once.
        self._eval_requests: dict[str, int] = {}
        self._eval_procs: dict[str, subprocess.Popen | None] = {}
        self._eval_starting: set[str] = set()
        self._bench_label = ""

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="chat-top"):
            yield Label(self.t("chat.target"))
            yield Input(placeholder=self.t("chat.target_placeholder"), id="chat-target", compact=True)
        yield Static(self.t("chat.not_loaded"), id="chat-state", markup=False)
        yield GenerationSettingsBar(self.lang, id="chat-settings")
        with TabbedContent(id="chat-tabs"):
            with TabPane(self.t("chat.tab_chat"), id="chat-pane"):
                yield ChatLog(self.lang, id="chat-log")
                yield Static(self.t("chat.compare_off"), id="chat-mode", markup=False)
                with Horizontal(id="chat-prompt-row"):
                    yield Label("›")
                    yield Input(placeholder=self.t("chat.prompt_placeholder"), id="chat-prompt", compact=True)
            with TabPane(self.t("chat.tab_eval"), id="eval-pane"):
                yield EvalPanel(self.lang, id="eval-panel")
                yield BenchmarkPanel(self.lang, id="bench-panel")

    def on_mount(self) -> None:
        self.find_runs()
        self.set_interval(0.25, self._show_download)

    def on_unmount(self) -> None:
        self._cancel.set()
        self._load_cancel.set()
        self._end_eval()

    @property
    def is_settled(self) -> bool:
        return self.listed and not (self.loading or self.generating or self.evaluating)

    def _state(self, text: str, kind: str = "") -> None:
        state = self.query_one("#chat-state", Static)
        state.set_class(kind == "error", "-error")
        state.set_class(kind == "ready", "-ready")
        state.update(text)

    # ------------------------------------------------------------------ choosing and loading

    def on_tuitune_screen_runs_found(self, message: TuituneScreen.RunsFound) -> None:
        self.listed = True
        self.offer_runs(self.query_one("#chat-target", Input), message)
        if self.session is None and not self.loading:
            self._state(self.t("chat.not_loaded") if message.default else self.t("chat.no_runs", folder=self.app.runs_dir.name))
        (self.query_one("#chat-target") if self.session is None else self.query_one("#chat-prompt")).focus()

    @on(Input.Submitted, "#chat-target")
    def _target_submitted(self) -> None:
        self.action_load()

    def action_load(self) -> None:
        target = self.query_one("#chat-target", Input).value.strip()
        if not target:
            self._state(self.t("chat.not_loaded"), "error")
            return
        self._load_request += 1
        self.loading = True
        self.session = None  # the old model goes when the new one is asked for: one in memory at a time
        self._state(self.t("chat.loading", target=target))
        self._load_cancel.set()
        self._load_cancel = threading.Event()
        self._load(self._load_request, target, self._load_cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-load")
    def _load(self, request: int, target: str, cancel: threading.Event) -> None:
        import torch

        from tuitune.core.chat import ChatSession
        from tuitune.core.models.hub_download import DownloadCancelled, reporting
        from tuitune.core.tuned import quiet_libraries

        torch.set_num_threads(min(torch.get_num_threads(), generation_threads()))
        quiet_libraries()

        def downloading(progress: Any) -> None:  # a hub model not cached yet: shown by _show_download
            self._download = (request, target, progress)

        try:
            with reporting(downloading, cancel):
                session = ChatSession.open(target, self.app.runs_dir)
        except DownloadCancelled:
            return  # another load was asked for; what arrived is kept
        except UserError as e:
            self.post_message(self.Loaded(request, target, error=e))
            return
        self.post_message(self.Loaded(request, target, session))

    def _show_download(self) -> None:
        from tuitune.tui.widgets.hub_status import download_line

        latest = self._download
        if not self.loading or latest is None or latest[0] != self._load_request or latest is self._download_shown:
            return
        self._download_shown = latest
        _, target, progress = latest
        self._state(self.t("chat.downloading", target=target, progress=download_line(self.lang, progress.event())))

    def on_chat_screen_loaded(self, message: Loaded) -> None:
        if message.request != self._load_request:
            return  # an older load answered after a newer one was asked for
        self.loading = False
        if message.error is not None:
            e = message.error
            if isinstance(e, RemoteCodeRefused):
                self._ask_then_load(e)  # the run would run its model's own code: ask, then load again
            text = self.t("chat.load_failed", target=message.target, error=getattr(e, "message", str(e)))
            hint = getattr(e, "hint", "")
            self._state(text + (f"\n{hint}" if hint else ""), "error")
            return
        self.session = message.session
        self.messages = []
        self.query_one(ChatLog).clear()
        self._state(self.t("chat.loaded", label=self.session.label), "ready")
        if not self._compare_chosen:
            self.compare_mode = self.session.can_compare
        elif self.compare_mode and not self.session.can_compare:
            self.compare_mode = False
        self._show_mode()
        self.query_one("#chat-prompt", Input).focus()

    @work(exclusive=True, exit_on_error=False, group="chat-dialog")
    async def _ask_then_load(self, refused: RemoteCodeRefused) -> None:
        from tuitune.tui.remote_code import ask_remote_code

        if await ask_remote_code(self.app, refused):
            self.action_load()
        else:
            self._state(self.t("remote.declined", run=Path(refused.run_path).name), "error")

    # ------------------------------------------------------------------ chatting

    def _show_mode(self) -> None:
        # core's compare_note in the interface language, by how the base answer is obtained
        note = self.t(f"chat.note_{self.session.loaded.kind}") if self.session is not None else ""
        text = self.t("chat.compare_on", note=note) if self.compare_mode else self.t("chat.compare_off")
        self.query_one("#chat-mode", Static).update(text)

    def action_compare(self) -> None:
        if self.session is not None and not self.session.can_compare and not self.compare_mode:
            self.notify(self.t("chat.cannot_compare", note=self.t(f"chat.note_{self.session.loaded.kind}")), severity="warning")
            return
        self.compare_mode = not self.compare_mode
        self._compare_chosen = True
        self._show_mode()

    def action_new_chat(self) -> None:
        if self.generating:
            self.notify(self.t("chat.busy"), severity="warning")
            return
        self.messages = []
        self.query_one(ChatLog).clear()
        self.query_one(TabbedContent).active = "chat-pane"
        self.query_one("#chat-prompt", Input).focus()

    def action_stop(self) -> None:
        self._cancel.set()

    @on(Input.Submitted, "#chat-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.session is None:
            self.notify(self.t("chat.load_first"), severity="warning")
            return
        if self.generating:
            self.notify(self.t("chat.busy"), severity="warning")
            return
        try:
            settings = self.query_one(GenerationSettingsBar).settings()
        except UserError as e:
            self.notify(e.message, severity="error")
            return
        event.input.value = ""
        log = self.query_one(ChatLog)
        log.add_user(text)
        self._cancel = threading.Event()
        self.generating = True
        if self.compare_mode:
            # One prompt on its own, so both models answer exactly the same input.
            base, tuned = log.add_pair()
            self._generate([{"role": "user", "content": text}], settings, [(base, False), (tuned, True)], remember=False)
        else:
            self.messages.append({"role": "user", "content": text})
            reply = log.add_reply(self.session.label if len(self.session.label) < 60 else self.t("chat.model"))
            self._generate(list(self.messages), settings, [(reply, True)], remember=True)

    @work(thread=True, exit_on_error=False, group="chat-generate")
    def _generate(self, messages: list[dict[str, str]], settings: Any, replies: list[tuple[Reply, bool]], remember: bool) -> None:
        from tuitune.core.chat import same_seed

        session, cancel = self.session, self._cancel
        if len(replies) > 1:
            settings = same_seed(settings)  # base and tuned sample alike
        text = ""
        try:
            for reply, use_adapter in replies:
                if cancel.is_set():  # stopped before this reply began (the tuned side of a pair)
                    self.post_message(self.Streamed(reply, "", finished=True, stopped=True))
                    continue
                text, last = "", 0.0
                for piece in session.stream(messages, settings, cancel, use_adapter=use_adapter):
                    text += piece
                    now = time.monotonic()
                    if now - last >= self.stream_interval_s:
                        last = now
                        self.post_message(self.Streamed(reply, text))
                self.post_message(self.Streamed(reply, text, finished=True, stopped=cancel.is_set()))
        except UserError as e:
            self.post_message(self.Generated(None, e))
            return
        self.post_message(self.Generated(text if remember else None))

    def on_chat_screen_streamed(self, message: Streamed) -> None:
        suffix = self.t("chat.stopped") if message.stopped else ""
        message.reply.show(message.text, message.finished, suffix)
        self.query_one(ChatLog).scroll_end(animate=False)

    def on_chat_screen_generated(self, message: Generated) -> None:
        self.generating = False
        if message.error is not None:
            e = message.error
            self.notify(getattr(e, "message", str(e)), severity="error")
            if self.messages and self.messages[-1]["role"] == "user":
                self.messages.pop()
            return
        if message.text is not None:
            self.messages.append({"role": "assistant", "content": message.text})
        else:  # a side-by-side pair (nothing to remember): show both answers from their start
            log = self.query_one(ChatLog)
            log.call_after_refresh(log.show_last_pair_from_its_start)

    # ------------------------------------------------------------------ evaluation

    def action_switch_pane(self) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = "eval-pane" if tabs.active == "chat-pane" else "chat-pane"

    def _run_to_evaluate(self, say: Any) -> Any:
        """The run (a RunDirectory) named in the top field, or None after saying so with `say`."""
        from tuitune.core.runs import locate_run

        self.query_one(TabbedContent).active = "eval-pane"
        target = self.query_one("#chat-target", Input).value.strip()
        run = locate_run(target, self.app.runs_dir)
        if run is None:
            say(self.t("eval.need_run"), error=True)
        return run

    def action_evaluate(self) -> None:
        panel = self.query_one(EvalPanel)
        run = self._run_to_evaluate(panel.say)
        if run is not None:
            panel.say(self.t("eval.running", run=run.name, stage=""))
            self._start_eval("answers", eval_command(str(run.path), str(self.app.runs_dir)))

    def action_benchmarks(self) -> None:
        self.query_one(BenchmarkPanel).ask()  # answers with a Requested message, or says what is wrong

    @on(BenchmarkPanel.Requested)
    def _benchmarks_requested(self, message: BenchmarkPanel.Requested) -> None:
        panel = self.query_one(BenchmarkPanel)
        run = self._run_to_evaluate(panel.say)
        if run is not None:
            self._bench_label = ", ".join(message.tasks)
            panel.say(self.t("bench.running", run=run.name, tasks=self._bench_label, stage=""))
            command = benchmark_command(str(run.path), str(self.app.runs_dir), message.tasks, message.limit)
            self._start_eval("benchmarks", command)

    @property
    def evaluating(self) -> bool:
        return any(proc is not None for proc in self._eval_procs.values()) or bool(self._eval_starting)

    def _start_eval(self, kind: str, command: list[str]) -> None:
        self._end_eval(kind)
        self._eval_requests[kind] = self._eval_requests.get(kind, 0) + 1
        self._eval_starting.add(kind)
        self._evaluate(kind, self._eval_requests[kind], command)

    @work(thread=True, exit_on_error=False, group="chat-eval")
    def _evaluate(self, kind: str, request: int, command: list[str]) -> None:
        """`tuitune eval RUN --json ...` in its own process: progress lines on stderr, the report on stdout."""
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                command,
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,  # a file: a long report cannot fill a pipe while we read stderr
                stderr=subprocess.PIPE,
                text=True,
            )
            self._eval_procs[kind] = proc
            self._eval_starting.discard(kind)
            lines: list[str] = []
            assert proc.stderr is not None
            for line in proc.stderr:
                line = line.strip()
                if line:
                    lines.append(line)
                    self.post_message(self.EvalProgress(kind, request, line))
            code = proc.wait()
            out.seek(0)
            text = out.read().decode(errors="replace")
        if code != 0:
            self.post_message(self.Evaluated(kind, request, None, lines[-1] if lines else f"exit code {code}"))
            return
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            self.post_message(self.Evaluated(kind, request, None, (lines[-1] if lines else "") + " (no JSON report)"))
            return
        self.post_message(self.Evaluated(kind, request, report))

    def on_chat_screen_eval_progress(self, message: EvalProgress) -> None:
        if message.request != self._eval_requests.get(message.kind):
            return
        target = self.query_one("#chat-target", Input).value.strip()
        if message.kind == "answers":
            self.query_one(EvalPanel).say(self.t("eval.running", run=target, stage=message.stage))
        else:
            text = self.t("bench.running", run=target, tasks=self._bench_label, stage=message.stage)
            self.query_one(BenchmarkPanel).say(text)

    def on_chat_screen_evaluated(self, message: Evaluated) -> None:
        if message.request != self._eval_requests.get(message.kind):
            return
        self._eval_procs[message.kind] = None
        panel: Any = self.query_one(EvalPanel) if message.kind == "answers" else self.query_one(BenchmarkPanel)
        if message.report is None:
            failed = "eval.failed" if message.kind == "answers" else "bench.failed"
            panel.say(self.t(failed, error=message.error), error=True)
        else:
            panel.show_report(message.report)

    def _end_eval(self, kind: str | None = None) -> None:
        """Stop evaluation children still running (one kind restarted, or all when the screen goes)."""
        for k in [kind] if kind else list(self._eval_procs):
            proc, self._eval_procs[k] = self._eval_procs.get(k), None
            if proc is not None and proc.poll() is None:
                proc.terminate()

    def palette_commands(self):
        for action, key in (("load", "chat.load"), ("compare", "chat.compare"), ("stop", "chat.stop"),
                            ("new_chat", "chat.new"), ("evaluate", "chat.evaluate"), ("benchmarks", "bench.run")):
            yield PaletteCommand(self.t(key), self.t(key + "_help"), getattr(self, f"action_{action}"))
