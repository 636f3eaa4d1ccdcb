"""Train: start the current recipe in a detached trainer, watch it live, stop it, resume it.

The run itself is followed by the app (`app.follower`, an app-level thread tailing events.jsonl), so
this screen only draws: a timer looks a few times a second whether the follower's version moved and
redraws then, which also caps chart redraws however fast the trainer writes.
"""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, ProgressBar, Static
from textual.worker import Worker, WorkerState

from tuitune.core.events import StepEvent, format_duration, format_size
from tuitune.core.units import format_bytes
from tuitune.tui.run_follower import Attached
from tuitune.tui.screens.base import TuituneScreen
from tuitune.tui.widgets.group_view import GroupView
from tuitune.tui.widgets.hub_status import download_line
from tuitune.tui.widgets.loss_chart import LossChart
from tuitune.tui.widgets.run_devices import RunDevices
from tuitune.tui.widgets.run_gauges import RunGauges
from tuitune.tui.widgets.sample_answers import SampleAnswers

REDRAW_S = 0.25  # at most four redraws a second
CHART_S = 0.5  # and two of the chart
RESUMABLE = ("stopped", "crashed", "interrupted", "failed")
STATUS_STYLE = {"done": "green", "failed": "red", "crashed": "red", "interrupted": "yellow",
                "stopped": "yellow", "stopping": "yellow", "training": "cyan", "evaluating": "cyan"}


def _num(x: Any, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) and x == x else "-"


class TrainScreen(TuituneScreen):
    MODE = "train"
    BINDINGS = [
        Binding("t", "start", "train.start"),
        Binding("s", "stop", "train.stop"),
        Binding("r", "resume", "train.resume"),
        Binding("l", "toggle_log", "train.log_title"),
        Binding("g", "start_together", "train.together"),
        Binding("n", "next_in_group", "train.next_in_group"),
    ]
    DEFAULT_CSS = """
    TrainScreen {
        #train-body { padding: 0 1; }
        #head { height: 1; text-style: bold; }
        #progress-row { height: 1; }
        #progress-row ProgressBar { width: auto; margin-right: 1; }
        #progress-row Bar { width: 24; }
        #progress-text { width: 1fr; }
        #stats { height: 1; color: $text-muted; }
        #main { height: 1fr; }
        #side { width: 30; padding-left: 1; }
        #log { height: 6; color: $text; border-top: solid $panel; text-wrap: nowrap; text-overflow: ellipsis; }
        #problem { height: auto; max-height: 4; color: $text-error; }
        #problem.-ok { color: $text-success; }
        #empty { height: auto; padding: 1 0; }
        #actions { height: 1; dock: bottom; }
        #actions Button { margin-right: 1; }
        &.-empty #run-view { display: none; }
        &.-running #empty { display: none; }
        &.-narrow #side { width: 24; }
        &.-tall #log { height: 10; }
        #group { display: none; }
        &.-group #group { display: block; }
        &.-group #chart, &.-group #side, &.-group #samples { display: none; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._drawn = -1  # follower version last drawn
        self._drawn_run: Any = None
        self._starting: str | None = None  # a run name while `tuitune train` is being launched
        self._problem_shown: str | None = None
        self._chart_drawn = -1  # follower version the chart shows
        self._chart_at = 0.0

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        with Vertical(id="train-body"):
            yield Static("", id="head")
            with Vertical(id="empty"):
                yield Static(self.t("train.no_run"), markup=False)
                yield Static("", id="recipe-line", markup=False)
                yield Static("", id="how", markup=False)
            with Vertical(id="run-view"):
                with Horizontal(id="progress-row"):
                    yield ProgressBar(total=None, show_eta=False, id="progress")
                    yield Static("", id="progress-text", markup=False)
                yield Static("", id="stats", markup=False)
                with Horizontal(id="main"):
                    yield LossChart(self.lang, id="chart")
                    with Vertical(id="side"):
                        yield RunGauges(self.lang)
                        yield RunDevices(self.lang)
                    yield GroupView(self.lang, id="group")
                yield SampleAnswers(self.lang, id="samples")
                yield Static("", id="problem")
                yield Static("", id="log")
            with Horizontal(id="actions"):
                yield Button(self.t("train.start") + " (t)", id="start", compact=True, variant="primary")
                yield Button(self.t("train.stop") + " (s)", id="stop", compact=True, variant="warning")
                yield Button(self.t("train.resume") + " (r)", id="resume", compact=True)

    def on_mount(self) -> None:
        self.add_class("-empty")
        self.set_interval(REDRAW_S, self._redraw_if_changed)
        self._redraw_if_changed()

    def on_screen_resume(self) -> None:
        self._drawn = self._chart_drawn = -1  # the recipe or the run may have changed while another screen was shown
        self._redraw_if_changed()

    @property
    def attached(self) -> Attached | None:
        return self.app.follower.attached  # type: ignore[attr-defined]

    @property
    def is_settled(self) -> bool:
        """The run's history (if any) is replayed and drawn; for snapshots and screenshots."""
        attached = self.attached
        return self._starting is None and self.query_one(GroupView).is_settled and (
            attached is None
            or (attached.replayed and self._drawn == self._chart_drawn == self.app.follower.version)
        )

    # ------------------------------------------------------------------ drawing

    def _redraw_if_changed(self) -> None:
        version = self.app.follower.version  # type: ignore[attr-defined]
        if not self.query("#actions"):  # (resumed before it was composed)
            return
        if version == self._drawn:
            self._draw_chart_if_due()
            return
        self._drawn = version
        attached = self.attached
        self.set_class(attached is None, "-empty")
        self.set_class(attached is not None, "-running")
        self._draw_head(attached)
        self._enable_buttons(attached)
        self.query_one(GroupView).follow(attached.run if attached is not None else None)
        if attached is None:
            self._draw_recipe()
            return
        history = attached.history
        self._draw_chart_if_due()
        self.query_one(RunGauges).show(history)
        self.query_one(RunDevices).show(history)
        self.query_one(SampleAnswers).show(history.samples)
        self._draw_progress(attached)
        self._draw_problem(attached)
        self._draw_log(attached)

    def _draw_chart_if_due(self) -> None:
        """The chart is the costly part of a redraw (plotext: ~10-30 ms): at most every CHART_S while
        the run is live, at once otherwise."""
        attached, version = self.attached, self.app.follower.version  # type: ignore[attr-defined]
        if attached is None or version == self._chart_drawn:
            return
        now = time.monotonic()
        if attached.live and attached.replayed and now - self._chart_at < CHART_S and self._chart_drawn >= 0:
            return
        self._chart_drawn, self._chart_at = version, now
        self.query_one(LossChart).show(attached.history)

    def _status(self, attached: Attached | None) -> str:
        if attached is None:
            return "none"
        if attached.summary is not None and not attached.live:
            return attached.summary.status  # crashed / interrupted are only known from the summary
        return attached.history.status or ("starting" if attached.live else "prepared")

    def _draw_head(self, attached: Attached | None) -> None:
        head = Text()
        if self._starting:
            head.append(self.t("train.starting", name=self._starting), style="bold cyan")
        elif attached is not None:
            status = self._status(attached)
            head.append(self.t("train.run", name=attached.run.name) + "  ")
            label = self.t(f"train.status.{status}") if f"train.status.{status}" in _STATUS_KEYS else status
            head.append(f" {label} ", style=f"bold reverse {STATUS_STYLE.get(status, 'white')}")
            message = attached.history.message
            if message and message != attached.history.status and attached.live:
                head.append("  " + message, style="not bold")
        else:
            head.append(self.t("mode.train.title"))
        self.query_one("#head", Static).update(head, layout=False)  # fixed height: no relayout

    def _enable_buttons(self, attached: Attached | None) -> None:
        live = attached is not None and attached.live
        self.query_one("#start", Button).disabled = live or bool(self._starting)
        self.query_one("#stop", Button).disabled = not live
        self.query_one("#resume", Button).disabled = live or attached is None or self._status(attached) not in RESUMABLE

    def _draw_recipe(self) -> None:
        recipe = self.app.recipe  # type: ignore[attr-defined]
        self.query_one("#recipe-line", Static).update(self.t(
            "train.recipe_line", name=recipe.name, method=recipe.method.type, model=recipe.model.name_or_path,
            data=recipe.data.path or "-"))
        how = self.t("train.how")
        if getattr(self.app, "recipe_is_first", False):
            how = self.t("train.first_recipe", path=self.app.recipe_path) + "\n" + how  # type: ignore[attr-defined]
        self.query_one("#how", Static).update(how)

    def _draw_progress(self, attached: Attached) -> None:
        history = attached.history
        if history.downloading and attached.live:
            self._draw_download(history)
            return
        step, max_steps = history.step, history.max_steps
        if attached.summary is not None:  # a run stops (and checkpoints) between two logged steps
            step = max(step, attached.summary.step)
            max_steps = max_steps or attached.summary.max_steps
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max_steps or None, progress=step)
        last = history.last_step or StepEvent()
        eta = last.eta_s if attached.live else 0
        self.query_one("#progress-text", Static).update(self.t(
            "train.progress", step=step, max=max_steps or "?", epoch=_num(last.epoch, ".2f"),
            elapsed=format_duration(last.elapsed_s), eta=format_duration(eta)), layout=False)
        parts = [self.t("train.loss_now", loss=_num(last.loss, ".4f"))]
        if history.eval_loss:
            parts.append(self.t("train.eval_now", loss=_num(history.eval_loss.values[-1], ".4f"),
                                best=_num(history.best_eval_loss, ".4f")))
        if last.tokens_per_s is not None:
            parts.append(self.t("train.speed", rate=_num(last.tokens_per_s, ",.0f")))
        memory = last.memory
        if isinstance(memory, dict):
            if memory.get("device") == "cuda":
                parts.append(self.t("train.memory_gpu", allocated=format_size(memory.get("allocated")),
                                    peak=format_size(memory.get("peak"))))
            else:
                parts.append(self.t("train.memory_ram", rss=format_size(memory.get("rss"))))
        if not history.last_step and attached.live:
            parts = [self._estimate_text(history) or self.t("train.waiting")]
        self.query_one("#stats", Static).update("  ·  ".join(parts), layout=False)

    def _draw_download(self, history: Any) -> None:
        """The "loading" phase of a model not yet cached: bytes, speed and ETA of its download, and the
        memory estimate as soon as its config.json is in."""
        d = history.download
        self.query_one("#progress", ProgressBar).update(total=d.total or None, progress=d.done or 0)
        self.query_one("#progress-text", Static).update(download_line(self.lang, d), layout=False)
        self.query_one("#stats", Static).update(self._estimate_text(history) or self.t("train.estimate_waiting"),
                                                layout=False)

    def _estimate_text(self, history: Any) -> str:
        e = history.estimate
        if not e:
            return ""
        verdict = str(e.verdict)
        return self.t("train.estimate", need=format_bytes(e.train_peak_bytes),
                      free=format_bytes(e.available_bytes),
                      where=e.where or "-",
                      verdict=self.t(f"verdict.{verdict}") if verdict in ("fits", "tight", "does not fit") else verdict)

    def _draw_problem(self, attached: Attached) -> None:
        history, box = attached.history, self.query_one("#problem", Static)
        text = Text()
        box.remove_class("-ok")
        if history.error is not None:
            e = history.error
            text.append(self.t("train.error", kind=e.kind or "?", message=e.message or ""))
            if e.hint:
                text.append("\n" + self.t("train.hint", hint=e.hint), style="dim")
        elif self._status(attached) in ("crashed", "interrupted"):
            text.append(self.t("train.crashed_text", log=str(attached.run.log_path)))
        elif history.done is not None:
            box.add_class("-ok")
            text.append(self.t("train.result", path=str(history.done.output or attached.run.result_path())))
        if text.plain != self._problem_shown:  # height auto: relayout only when it changes
            self._problem_shown = text.plain
            box.update(text)
            box.display = bool(text.plain)

    def _draw_log(self, attached: Attached) -> None:
        box = self.query_one("#log", Static)
        rows = max(1, box.content_size.height or 5)
        lines: list[Text] = []
        for event in reversed(attached.history.recent):
            try:
                markup = event.markup()
            except (TypeError, ValueError):  # a field of the wrong type: show the event raw
                markup = escape(str(event.to_dict()))
            if markup is None:
                continue
            line = Text.from_markup(markup)
            line.no_wrap, line.overflow = True, "ellipsis"
            lines.append(line)
            if len(lines) >= rows:
                break
        text = Text("\n").join(reversed(lines))
        text.no_wrap, text.overflow = True, "ellipsis"
        box.update(text, layout=False)

    def on_resize(self) -> None:
        self._drawn = -1  # the log shows as many lines as fit

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#stop")
    def _stop_pressed(self) -> None:
        self.action_stop()

    @on(Button.Pressed, "#resume")
    def _resume_pressed(self) -> None:
        self.action_resume()

    def _busy(self) -> bool:
        """A run is starting, or the followed run still trains (said in a notification): nothing new starts."""
        attached = self.attached
        if self._starting:
            return True
        if attached is not None and attached.live:
            self.notify(self.t("train.busy", name=attached.run.name), severity="warning")
            return True
        return False

    def action_start(self) -> None:
        """Train the current recipe (with any unsaved edits) in a new run."""
        if self._busy():
            return
        from tuitune.tui.train_start import check_recipe

        problem = check_recipe(self.app.recipe)  # type: ignore[attr-defined]
        if problem is not None:  # before copying: Recipe.copy() quietly resets out-of-range values
            self.app.show_error(problem)  # type: ignore[attr-defined]
            return
        recipe = self.app.recipe.copy()  # type: ignore[attr-defined]
        self._starting = recipe.name
        self._drawn = -1
        self._launch(recipe)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-start")
    def _launch(self, recipe) -> None:
        from tuitune.tui.train_start import start_run

        run = start_run(recipe, self.app.runs_dir)  # type: ignore[attr-defined]
        self.app.call_from_thread(self._started, str(run.path), False)

    def _started(self, path: str, quiet_replay: bool) -> None:
        self._starting = None
        self._drawn = -1
        self.app.open_run(path, switch=False, quiet_replay=quiet_replay)  # type: ignore[attr-defined]

    def action_toggle_log(self) -> None:
        """l: hide the log tail to give the chart its rows (at 80x24), or show it again."""
        log = self.query_one("#log")
        log.display = not log.display  # on the widget: a class on the screen would restyle every widget
        if log.display and self.attached is not None:
            self.call_after_refresh(self._draw_log, self.attached)  # once it has its size again

    def action_resume(self) -> None:
        attached = self.attached
        if attached is None or self._starting:
            return
        status = self._status(attached)
        if attached.live:
            self.notify(self.t("train.busy", name=attached.run.name), severity="warning")
        elif status not in RESUMABLE:
            self.notify(self.t("train.not_resumable", name=attached.run.name,
                               status=self.t(f"train.status.{status}") if f"train.status.{status}" in _STATUS_KEYS
                               else status), severity="warning")
        else:
            self._starting = attached.run.name
            self._drawn = -1
            self._resume_if_allowed(attached.run)

    @work(exclusive=True, exit_on_error=False, group="train-dialog")
    async def _resume_if_allowed(self, run) -> None:
        """A recipe that would run the model's own code asks first (tui.remote_code)."""
        from tuitune.tui.remote_code import ask_remote_code, refusal

        refused = refusal(run.path)
        if refused is not None and not await ask_remote_code(self.app, refused):
            self._starting = None
            self._drawn = -1
            self.notify(self.t("remote.declined", run=run.name), severity="warning")
            return
        self._resume(run)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-start")
    def _resume(self, run) -> None:
        from tuitune.tui.train_start import resume_run

        resume_run(run)
        self.app.call_from_thread(self._started, str(run.path), True)

    def action_stop(self) -> None:
        attached = self.attached
        if attached is None or not attached.live:
            self.notify(self.t("train.not_live", name=attached.run.name if attached else "-"), severity="warning")
            return
        self._confirm_stop(attached)

    @work(exclusive=True, exit_on_error=False, group="train-dialog")
    async def _confirm_stop(self, attached: Attached) -> None:
        from tuitune.tui.dialogs.confirm import ConfirmDialog

        name = attached.run.name
        ok = await self.app.push_screen_wait(ConfirmDialog(self.t("train.stop_title", name=name),
                                                           self.t("train.stop_message")))
        if not ok:
            return
        if attached.run.request_stop():  # the stop file and SIGTERM: a few file operations
            self.notify(self.t("train.stopping", name=name))
        else:
            self.notify(self.t("train.not_live", name=name), severity="warning")

    # ---- training together (several recipes, one base model: core engine.together)

    def on_group_view_shown(self, message: GroupView.Shown) -> None:
        self.set_class(message.active, "-group")
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_in_group":
            return bool(self.query_one(GroupView).members)  # False: not in the footer, no action, when alone
        return True

    def action_next_in_group(self) -> None:
        """n: follow the next run of the group on this screen."""
        view, attached = self.query_one(GroupView), self.attached
        if attached is None or not view.members:
            self.notify(self.t("train.not_in_group", name=attached.run.name if attached else "-"), severity="warning")
            return
        paths = [m.run.path.resolve() for m in view.members]
        here = attached.run.path.resolve()
        nxt = paths[(paths.index(here) + 1) % len(paths)] if here in paths else paths[0]
        self.app.open_run(str(nxt), switch=False)  # type: ignore[attr-defined]

    @work(exclusive=True, exit_on_error=False, group="train-dialog")
    async def action_start_together(self) -> None:
        """g: pick recipes from recipes/ and train them together in one process on one base model."""
        from tuitune.tui.dialogs.pick_recipes import PickRecipesDialog

        if self._busy():
            return
        paths = await self.app.push_screen_wait(PickRecipesDialog(self.app.recipes_dir))  # type: ignore[attr-defined]
        if not paths:
            return
        self._starting = "+".join(p.stem for p in paths)  # "Starting run a+b…": the group's default name
        self._drawn = -1
        self._launch_group(paths)

    @work(thread=True, exclusive=True, exit_on_error=False, group="train-start")
    def _launch_group(self, paths) -> None:
        from tuitune.tui.train_start import start_group_run

        runs = start_group_run(paths, self.app.runs_dir)  # type: ignore[attr-defined]
        self.app.call_from_thread(self._started, str(runs[0].path), False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "train-start" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._starting = None
            self._drawn = -1
        super().on_worker_state_changed(event)

    def palette_commands(self):
        from tuitune.tui.screens.base import PaletteCommand

        return [
            PaletteCommand(self.t("train.start"), self.t("train.start_help"), self.action_start),
            PaletteCommand(self.t("train.stop"), self.t("train.stop_help"), self.action_stop),
            PaletteCommand(self.t("train.resume"), self.t("train.resume_help"), self.action_resume),
            PaletteCommand(self.t("train.together"), self.t("train.together_help"), self.action_start_together),
        ]


def _status_keys() -> frozenset[str]:
    from tuitune.tui.i18n import STRINGS

    return frozenset(k for k in STRINGS if k.startswith("train.status."))


_STATUS_KEYS = _status_keys()
