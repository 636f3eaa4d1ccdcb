"""The what-if controls of the memory planner: model, method, batch, sequence length and the other
settings that move the estimate most, and what to plan for (a GPU here, all of them, a card size).

The rows are the recipe form's own FieldRows (labels, ranges and checks from the schema). They edit
a copy of the current recipe; the screen decides when that copy goes back into the recipe.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from tuitune.core.errors import UserError
from tuitune.core.memory.targets import PlanTarget, card_target
from tuitune.core.recipe import FIELDS, Problem, Recipe
from tuitune.core.units import format_bytes
from tuitune.tui.i18n import t
from tuitune.tui.widgets.field_row import FieldRow
from tuitune.tui.widgets.recipe_rows import RecipeRows
from tuitune.tui.widgets.suggesters import ModelSuggester

# The settings that decide whether a run fits, in the order a user thinks about them.
CONTROL_KEYS = (
    "model.name_or_path",
    "method.type",
    "quantization.bits",
    "lora.r",
    "train.batch_size",
    "data.cutoff_len",
    "train.gradient_checkpointing",
    "train.optimizer",
)
CUSTOM = "custom"


def target_label(target: PlanTarget, lang: str) -> str:
    if target.kind == "gpu":
        return t("hw.target_gpu", lang, index=target.index, size=card_size(target.total_bytes), name=target.name)
    if target.kind == "all":
        return t("hw.target_all", lang, n=target.n_gpus)
    if target.kind == "chosen":
        return t("hw.target_chosen", lang, list=", ".join(map(str, target.indices)), n=target.n_gpus,
                 processes="process" if target.n_gpus == 1 else "processes")
    return t("hw.target_card", lang, size=card_size(target.available_bytes))


def card_size(nbytes: int | None) -> str:
    """24 GiB -> "24 GB", the way cards are sold."""
    return format_bytes(nbytes, 0).replace(" GiB", " GB") if nbytes else "?"


class PlanControls(RecipeRows):
    DEFAULT_CSS = """
    PlanControls {
        height: 1fr;
        & FieldRow { grid-columns: 14 1fr; padding: 0 0 0 1; }
        & FieldRow .field-error { padding-left: 0; }
        & .target-row { height: 1; padding-left: 1; }
        & .target-row Label { width: 14; color: $text-muted; }
        & .target-row:focus-within { background: $boost; }
        & .target-row:focus-within Label { color: $text-accent; text-style: bold; }
        & #target { width: 1fr; }
        & #card-size { width: 1fr; }
        & #card-error { color: $text-error; padding-left: 15; height: auto; }
    }
    """

    class Changed(Message):
        """The what-if recipe or the target changed. `target` is None while a typed size is wrong."""

        def __init__(self, recipe: Recipe, target: PlanTarget | None) -> None:
            super().__init__()
            self.recipe = recipe
            self.target = target

    def __init__(self, recipe: Recipe, lang: str, id: str | None = None) -> None:
        super().__init__(recipe, lang, id=id)
        self._targets: dict[str, PlanTarget] = {}
        self._option_keys: list[str] = []  # what the target select offers now
        self._chosen: str | None = None  # the target key chosen (the select's value once it has options)
        self._custom: PlanTarget | None = card_target("40GB")

    def compose(self) -> ComposeResult:
        for key in CONTROL_KEYS:
            yield FieldRow(FIELDS[key], self.recipe.get(key), self.lang)
        with Horizontal(classes="target-row"):
            yield Label(t("hw.plan_for", self.lang), markup=False)
            # Until the GPUs are read, one placeholder choice (a Select without a blank needs one).
            yield Select([(t("hw.probing", self.lang), "")], allow_blank=False, compact=True, id="target")
        with Horizontal(classes="target-row", id="card-size-row"):
            yield Label(t("hw.card_size", self.lang), markup=False)
            yield Input("40GB", compact=True, id="card-size", placeholder=t("hw.card_placeholder", self.lang))
        yield Static("", id="card-error", markup=False)

    def on_mount(self) -> None:
        model = self.row("model.name_or_path").editor
        assert isinstance(model, Input)
        model.suggester = ModelSuggester()
        self.query_one("#card-size-row").display = False
        self._show_applicable()

    # ------------------------------------------------------------------ public

    def row(self, key: str) -> FieldRow:
        return self.query_one("#field-" + key.replace(".", "-"), FieldRow)

    def load(self, recipe: Recipe) -> None:
        """Start over from this recipe (a copy the controls may edit)."""
        self.recipe = recipe
        self.typed_problems.clear()
        for key in CONTROL_KEYS:
            self.row(key).set_value(recipe.get(key))
        self._show_applicable()
        self._changed()

    def set_values(self, changes: dict[str, Any]) -> None:
        """Apply a method row or a suggestion: keys without a control are set in the copy all the same."""
        for key, value in changes.items():
            self.recipe.set(key, value)
            self.typed_problems.pop(key, None)
            if key in CONTROL_KEYS:
                self.row(key).set_value(value)
        self._show_applicable()
        self._changed()

    def set_targets(self, targets: list[PlanTarget], selected: str | None = None) -> None:
        """Offer these targets (GPUs here, then card sizes) and "another size"."""
        keys = [tg.key for tg in targets]
        select: Select[str] = self.query_one("#target", Select)
        self._targets = {tg.key: tg for tg in targets}
        if keys != [k for k in self._option_keys if k != CUSTOM]:
            self._option_keys = [*keys, CUSTOM]
            options = [(target_label(tg, self.lang), tg.key) for tg in targets]
            options.append((t("hw.target_custom", self.lang), CUSTOM))
            with self.prevent(Select.Changed):
                select.set_options(options)
        choice = selected or self._chosen or (keys[0] if keys else CUSTOM)
        if choice not in self._option_keys:
            choice = keys[0] if keys else CUSTOM
        if select.value != choice:
            with self.prevent(Select.Changed):
                select.value = choice
        if choice != self._chosen:
            self._target_chosen(choice)
            self._changed()

    @property
    def target(self) -> PlanTarget | None:
        value = self._chosen
        if value == CUSTOM:
            return self._custom
        return self._targets.get(value) if isinstance(value, str) else None

    def problems(self) -> list[Problem]:
        return self.unreadable()

    # ------------------------------------------------------------------ events

    @on(Select.Changed, "#target")
    def _on_target(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self._target_chosen(event.value)
            self._changed()

    @on(Input.Changed, "#card-size")
    def _on_size(self, event: Input.Changed) -> None:
        event.stop()
        error = self.query_one("#card-error", Static)
        try:
            self._custom = card_target(event.value)
            error.update("")
        except UserError as e:
            self._custom = None
            error.update(t("field.invalid", self.lang, message=f"{e.message} ({e.hint})"))
        self._changed()

    # ------------------------------------------------------------------ internals

    def _target_chosen(self, key: str) -> None:
        self._chosen = key
        custom = key == CUSTOM
        self.query_one("#card-size-row").display = custom
        self.query_one("#card-error").display = custom

    def _changed(self) -> None:
        self.post_message(self.Changed(self.recipe.copy(), self.target))

    def _show_applicable(self) -> None:
        for key in CONTROL_KEYS:
            self.row(key).display = self.recipe.applies(key)
