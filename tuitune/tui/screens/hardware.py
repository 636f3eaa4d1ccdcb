"""Hardware & Memory: what this machine has, and whether a model and settings fit it (or a card size).

Layout: the machine strip on top (GPUs refreshed live about once a second), the what-if controls on
the left, the plan on the right (verdict, a bar per memory component, the methods table, the
planner's suggestions, then the rest of `tuitune hw`). The controls start from the current recipe;
enter on a method or a suggestion changes the controls, ctrl+r writes them into the recipe.

All numbers come from core: hardware.probe / live_refresh, targets, model_spec, fit_plan.plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from tuitune.core.errors import UserError
from tuitune.core.units import format_bytes
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.widgets.hub_status import HubStatus
from tuitune.tui.widgets.machine_details import MachineDetails
from tuitune.tui.widgets.machine_panel import MachinePanel
from tuitune.tui.widgets.memory_breakdown import MemoryBreakdown
from tuitune.tui.widgets.methods_table import MethodsTable
from tuitune.tui.widgets.plan_verdict import PlanVerdict
from tuitune.tui.widgets.suggestions_list import SuggestionsList

if TYPE_CHECKING:
    from tuitune.core.memory.targets import PlanTarget
    from tuitune.core.recipe import Recipe
    from tuitune.tui.widgets.plan_controls import PlanControls

LIVE_EVERY_S = 1.0  # GPU utilization and memory
DEBOUNCE_S = 0.3  # typing "8192" starts one plan, not four
REPLAN_SHARE = 0.01  # free memory here moved by more than this: plan again


def method_label(recipe: Recipe) -> str:
    """The methods table's label for a recipe's method ("qlora-4bit")."""
    if recipe.method.type == "qlora":
        return f"qlora-{recipe.quantization.bits}bit"
    return recipe.method.type


class HardwareScreen(TuituneScreen):
    MODE = "hardware"
    BINDINGS = [
        Binding("ctrl+f", "make_it_fit", "hw.fit"),
        Binding("ctrl+r", "use_in_recipe", "hw.use"),
        Binding("ctrl+l", "pull", "hub.pull"),
    ]
    DEFAULT_CSS = """
    HardwareScreen {
        #hw-main { height: 1fr; }
        #hw-left { width: 34; border-right: solid $primary 50%; }
        &.-wide #hw-left { width: 48; }
        #pending { height: auto; color: $text-muted; padding: 0 1; margin-top: 1; }
        #pending.-changed { color: $text-warning; }
        #results { width: 1fr; padding: 0 1; }
        .hw-title { text-style: bold; color: $text-primary; margin-top: 1; }
    }
    """

    class Probed(Message):
        def __init__(self, report: Any, live: bool) -> None:
            super().__init__()
            self.report = report
            self.live = live  # a live refresh (memory, utilization) rather than the first full probe

    class Planned(Message):
        def __init__(
            self, request: int, spec: Any = None, plan: Any = None, target: Any = None, recipe: Any = None, error: str = ""
        ) -> None:
            super().__init__()
            self.request = request
            self.recipe = recipe
            self.spec = spec
            self.plan = plan
            self.target = target
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.report: Any = None  # core HardwareReport, refreshed live
        self.plan: Any = None  # the FitPlan shown
        self.planned_recipe: Recipe | None = None  # what the shown plan is for
        self._request = 0
        self._answered = -1
        self._debounce: Timer | None = None
        self._live_timer: Timer | None = None
        self._specs: dict[str, Any] = {}  # model -> ModelSpec, read once (a hub config may be fetched)
        self._seen_version = self.app.recipe_version

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        yield MachinePanel(self.lang, id="machine")
        with Horizontal(id="hw-main"):
            with Vertical(id="hw-left"):
                # PlanControls are mounted after the first frame (see on_mount).
                yield Static("", id="pending", markup=False)
            with VerticalScroll(id="results"):
                # The answer, then what to do about it, then why: at 80x24 the first screenful
                # holds the verdict and the first suggestions.
                yield PlanVerdict(self.lang, id="verdict")
                yield HubStatus(self.lang, can_pull=True, id="hub-status")
                yield Static(self.t("hw.suggestions"), classes="hw-title", markup=False)
                yield SuggestionsList(self.lang, id="suggestions")
                yield Static(self.t("hw.breakdown"), classes="hw-title", markup=False)
                yield MemoryBreakdown(self.lang, id="breakdown")
                yield Static(self.t("hw.methods"), classes="hw-title", markup=False)
                yield MethodsTable(self.lang, id="methods")
                yield Static(self.t("hw.machine"), classes="hw-title", markup=False)
                yield MachineDetails(self.lang, id="details")

    @property
    def controls(self) -> PlanControls:
        return self.query_one("#controls")  # type: ignore[return-value]

    def on_mount(self) -> None:
        # This is the screen the app opens on: its first frame (the machine strip, the panels) is
        # painted before the ~0.1 s the controls' selects take to build, and before reading package
        # metadata or importing the estimator, which would compete with the paint for the GIL.
        self.call_after_refresh(self._mount_controls)
        self._live_timer = self.set_interval(LIVE_EVERY_S, self._live_tick)

    async def _mount_controls(self) -> None:
        # Imported here too: the schema-driven rows are the heaviest part of this screen's imports.
        from tuitune.tui.widgets.plan_controls import PlanControls

        controls = PlanControls(self.app.recipe.copy(), self.lang, id="controls")
        await self.query_one("#hw-left").mount(controls, before="#pending")
        controls.row("model.name_or_path").editor.focus()
        self.query_one(HubStatus).show_for(controls.recipe.model_path)
        self._probe()

    def on_screen_suspend(self) -> None:
        if self._live_timer is not None:
            self._live_timer.pause()

    def on_screen_resume(self) -> None:
        if self._live_timer is not None:
            self._live_timer.resume()
        # The Recipe screen (or another) changed the current recipe: start from it again.
        if self.app.recipe_version != self._seen_version:
            self._seen_version = self.app.recipe_version
            self.controls.load(self.app.recipe.copy())
            self._mark_recipe_gpus()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand(self.t("hw.choose"), self.t("hw.choose_help"), self.query_one(MachinePanel).focus)
        yield PaletteCommand(self.t("hw.fit"), self.t("hw.fit_help"), self.action_make_it_fit)
        yield PaletteCommand(self.t("hw.use"), self.t("hw.use_help"), self.action_use_in_recipe)
        yield PaletteCommand(self.t("hub.pull"), self.t("hub.pull_help"), self.action_pull)

    def action_pull(self) -> None:
        """Download the model into the hub cache now (again: stop; the next pull resumes)."""
        status = self.query_one(HubStatus)
        if status.pulling:
            status.cancel_pull()
        else:
            status.pull()

    def action_make_it_fit(self) -> None:
        """To the planner's suggestions (enter on one applies it)."""
        suggestions = self.query_one(SuggestionsList)
        suggestions.focus()
        self.query_one("#results", VerticalScroll).scroll_to_widget(suggestions, top=True, animate=False)

    @property
    def plan_is_current(self) -> bool:
        """Whether the plan shown answers the latest change (tests and screenshots wait on it)."""
        return self._answered == self._request and self._debounce is None

    @property
    def is_settled(self) -> bool:
        """The machine is read and the plan answers the latest settings (tests and pictures wait)."""
        return (self.report is not None and self.plan_is_current and self._answered >= 1 and bool(self.query("#controls"))
                and self.query_one(HubStatus).is_settled)

    # ------------------------------------------------------------------ the machine (workers)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hardware-probe")
    def _probe(self) -> None:
        from tuitune.core.hardware import probe

        runs_dir = getattr(self.app, "runs_dir", "runs")
        self.post_message(self.Probed(probe(runs_dir, gpu_probe=getattr(self.app, "gpu_probe", None)), live=False))

    def _live_tick(self) -> None:
        if self.report is not None and self.report.gpus and self.is_current:
            self._live(self.report)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hardware-live")
    def _live(self, report: Any) -> None:
        from tuitune.core.hardware import live_refresh

        self.post_message(self.Probed(live_refresh(report), live=True))

    def on_hardware_screen_probed(self, event: Probed) -> None:
        report = event.report
        self.report = report
        self.query_one(MachinePanel).show(report)
        if not event.live:
            self.query_one(MachineDetails).show(report)
            self._mark_recipe_gpus()
            return
        self.controls.set_targets(self._targets())
        target, shown = self.controls.target, self.plan
        if target is not None and target.here and shown is not None and target.available_bytes:
            before = shown.available_bytes or 0
            if abs(target.available_bytes - before) > REPLAN_SHARE * target.available_bytes:
                self._request_plan(self.controls.recipe.copy(), target, delay=0)

    # ------------------------------------------------------------------ the GPUs chosen for the run

    def _targets(self) -> list[PlanTarget]:
        """The GPUs chosen (first, when some are), each GPU here, all of them, the card sizes."""
        from tuitune.core.memory.targets import chosen_target, plan_targets

        chosen = chosen_target(self.report, self.query_one(MachinePanel).chosen)
        return ([chosen] if chosen else []) + plan_targets(self.report)

    def _default_key(self) -> str:
        from tuitune.core.memory.targets import default_target

        targets = self._targets()
        return targets[0].key if targets[0].kind == "chosen" else default_target(self.report).key

    def _mark_recipe_gpus(self) -> None:
        """Show the current recipe's train.gpus as the marked GPUs, and plan for them."""
        if self.report is None or not self.query("#controls"):
            return
        gpus = self.controls.recipe.train.gpus
        here = {g.index for g in self.report.gpus}
        self.query_one(MachinePanel).choose([i for i in gpus if i in here] if isinstance(gpus, list) else [])
        self.controls.set_targets(self._targets(), self._default_key())

    def on_machine_panel_chosen(self, event: MachinePanel.Chosen) -> None:
        """GPUs marked (space): they go into the what-if recipe, and the plan is made for them."""
        self.controls.set_values({"train.gpus": list(event.indices) or "auto"})
        self.controls.set_targets(self._targets(), self._default_key())

    # ------------------------------------------------------------------ the plan

    def on_plan_controls_changed(self, event: Any) -> None:  # PlanControls.Changed
        self._show_pending(event.recipe)
        self.query_one(HubStatus).show_for(event.recipe.model_path)
        if event.target is not None:
            self._request_plan(event.recipe, event.target, DEBOUNCE_S)

    def _request_plan(self, recipe: Recipe, target: PlanTarget, delay: float) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._request += 1
        request = self._request

        def start() -> None:
            self._debounce = None
            self._plan(recipe, target, request)

        if delay:
            self._debounce = self.set_timer(delay, start)
        else:
            self._debounce = None
            self._plan(recipe, target, request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hardware-plan")
    def _plan(self, recipe: Recipe, target: PlanTarget, request: int) -> None:
        # A thread worker cannot be stopped: answers carry their request number, old ones are dropped.
        from tuitune.core.memory.fit_plan import plan

        try:
            spec = self._spec(recipe.model_path)
        except UserError as e:  # a model name half typed: said in place, not in a dialog
            self.post_message(self.Planned(request, error=e.message))
            return
        result = plan(spec, recipe, target.available_bytes, bf16=target.bf16, n_gpus=target.n_gpus)
        self.post_message(self.Planned(request, spec, result, target, recipe))

    def _spec(self, name: str) -> Any:
        if name not in self._specs:
            from tuitune.core.models.spec import model_spec

            self._specs[name] = model_spec(name)
        return self._specs[name]

    def on_hardware_screen_planned(self, event: Planned) -> None:
        if event.request != self._request:
            return
        self._answered = event.request
        verdict = self.query_one(PlanVerdict)
        if event.error:
            verdict.show_failure(event.error)
            return
        self.plan = event.plan
        self.planned_recipe = event.recipe
        verdict.show(event.spec, event.plan, event.target, self._where(event.target))
        self.query_one(MemoryBreakdown).show(event.plan.estimate)
        self.query_one(MethodsTable).show(event.plan.methods, method_label(event.recipe))
        self.query_one(SuggestionsList).show(event.plan.suggestions, event.plan.estimate.verdict)

    def _where(self, target: PlanTarget) -> str:
        if target.kind == "gpu":
            return self.t("hw.where_gpu", index=target.index)
        if target.kind == "chosen":
            return self.t("hw.where_chosen", list=", ".join(map(str, target.indices)))
        if target.kind == "all":
            return self.t("hw.where_all", n=target.n_gpus)
        return self.t("hw.where_card", size=format_bytes(target.available_bytes, 0).replace(" GiB", " GB"))

    # ------------------------------------------------------------------ choosing and applying

    def on_methods_table_chosen(self, event: MethodsTable.Chosen) -> None:
        changes: dict[str, Any] = {"method.type": event.method}
        if event.method == "qlora":
            changes["quantization.bits"] = event.bits
        self.controls.set_values(changes)

    def on_suggestions_list_chosen(self, event: SuggestionsList.Chosen) -> None:
        self.controls.set_values(event.changes)
        # The verdict at the top says whether it worked.
        self.query_one("#results", VerticalScroll).scroll_home(animate=False)

    def _changes(self, recipe: Recipe | None = None) -> dict[str, Any]:
        """What the what-if settings change in the current recipe. A catalog alias typed as the
        model goes in as its hub id: training needs a name it can download."""
        from tuitune.core.models.catalog import recipe_model_name
        from tuitune.core.recipe import diff

        recipe = (recipe or self.controls.recipe).copy()
        recipe.model.name_or_path = recipe_model_name(recipe.model.name_or_path)
        return {key: new for key, _, new in diff(self.app.recipe, recipe)}

    def _show_pending(self, recipe: Recipe | None = None) -> None:
        n = len(self._changes(recipe))
        pending = self.query_one("#pending", Static)
        pending.set_class(n > 0, "-changed")
        pending.update(self.t("hw.pending_one") if n == 1 else self.t("hw.pending", n=n) if n else self.t("hw.same"))

    def action_use_in_recipe(self) -> None:
        if self.write_into_recipe(self._changes()):
            self._show_pending()
