"""Pick the recipes to train together: the .toml files in recipes/, checked as they are picked.

Answers the chosen paths (at least two that can share a base model), or None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, SelectionList, Static

from tuitune.tui.dialogs.base import Dialog


def group_check(paths: list[Path]) -> tuple[Any, str]:
    """(core's GroupPlan, "") when the recipes at `paths` can train together, else (None, core's reason)."""
    from tuitune.core.engine.together.plan import check_together
    from tuitune.core.errors import UserError
    from tuitune.core.recipe import load_recipe

    recipes = []
    for path in paths:
        recipe, problems = load_recipe(path)
        if problems:
            return None, f"{path.name}: " + "; ".join(p.format() for p in problems[:2])
        recipes.append(recipe)
    try:
        return check_together(recipes, distinct_runs=False), ""  # the app renames a run whose folder is taken
    except UserError as e:
        return None, e.message + (f" ({e.hint})" if e.hint else "")


class PickRecipesDialog(Dialog[list[Path] | None]):
    DEFAULT_CSS = """
    PickRecipesDialog SelectionList { height: auto; max-height: 12; margin: 1 0; }
    PickRecipesDialog #verdict { height: auto; }
    PickRecipesDialog #verdict.-bad { color: $text-error; }
    PickRecipesDialog #verdict.-good { color: $text-success; }
    PickRecipesDialog #together-hint { color: $text-muted; height: auto; }
    """
    BINDINGS = [*Dialog.BINDINGS, Binding("ctrl+s", "start", "together.start")]

    def __init__(self, recipes_dir: Path) -> None:
        super().__init__()
        self.recipes_dir = recipes_dir
        self.ready = False

    def compose(self) -> ComposeResult:
        files = sorted(self.recipes_dir.glob("*.toml")) if self.recipes_dir.is_dir() else []
        with Vertical(id="box"):
            yield Static(self.t("together.title"), classes="dialog-title", markup=False)
            yield Static(self.t("together.hint"), id="together-hint", markup=False)
            if files:
                yield SelectionList[str](*[(f.name, str(f)) for f in files], id="recipes")
            else:
                yield Static(self.t("together.none", dir=self.recipes_dir), markup=False)
            yield Static(self.t("together.pick_two"), id="verdict", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.t("together.cancel"), id="cancel", compact=True)
                yield Button(self.t("together.start"), id="start", compact=True, variant="primary", disabled=True)

    @property
    def chosen(self) -> list[Path]:
        found = self.query(SelectionList)
        return [Path(p) for p in found.first().selected] if found else []

    @on(SelectionList.SelectedChanged)
    def _changed(self) -> None:
        paths = self.chosen
        verdict = self.query_one("#verdict", Static)
        if len(paths) < 2:
            self.ready, text = False, self.t("together.pick_two")
        else:
            plan, text = group_check(paths)
            self.ready = plan is not None
            if plan is not None:
                text = self.t("together.ready", n=len(plan.recipes), model=plan.recipes[0].model.name_or_path,
                              schedule=self.t(f"group.schedule.{plan.schedule}"))
        verdict.set_class(self.ready, "-good")
        verdict.set_class(not self.ready and len(paths) >= 2, "-bad")
        verdict.update(Text(text))
        self.query_one("#start", Button).disabled = not self.ready

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.ready:
            self.dismiss(self.chosen)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
