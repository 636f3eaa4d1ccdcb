"""Recipe screen: edit a recipe in a form generated from the schema, load it from and save it to TOML.

Layout: a status line (file, changes, problems), the form with a side column (memory verdict,
problems, changes from the file), and the focused field's guidance under the form.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from tuitune.core.recipe import FIELDS, RUN_NAME_RE, Problem, Recipe, load_recipe, new_recipe, save_recipe
from tuitune.tui.dialogs.confirm import ConfirmDialog
from tuitune.tui.dialogs.open_recipe import OpenRecipeDialog
from tuitune.tui.dialogs.prompt import PromptDialog
from tuitune.tui.i18n import allowed_text
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.widgets.guidance import GuidancePanel
from tuitune.tui.widgets.hub_status import HubStatus
from tuitune.tui.widgets.memory_verdict import MemoryVerdict
from tuitune.tui.widgets.problems_list import ProblemsList
from tuitune.tui.widgets.recipe_diff import RecipeDiff
from tuitune.tui.widgets.recipe_form import RecipeForm


class RecipeScreen(TuituneScreen):
    MODE = "recipe"
    BINDINGS = [
        Binding("ctrl+o", "load", "recipe.load"),
        Binding("ctrl+s", "save", "recipe.save"),
        Binding("ctrl+n", "new", "recipe.new"),
    ]
    DEFAULT_CSS = """
    RecipeScreen {
        #recipe-status { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
        #recipe-main { height: 1fr; }
        #recipe-form { width: 1fr; }
        #recipe-side { width: 32%; min-width: 24; max-width: 80; border-left: solid $primary 50%; padding: 0 1; }
        /* A fixed height: a panel that grew with each field's text would move the form under the cursor. */
        #guidance { height: 7; }
        &.-tall #guidance { height: 10; }
        .side-title { text-style: bold; color: $text-primary; margin-top: 1; }
        .side-title.-first { margin-top: 0; }
    }
    """

    def __init__(self) -> None:
        super().__init__()
        # The form edits the app's current recipe in place (shared with the other screens).
        recipe = self.app.recipe
        path = self.app.recipe_path
        baseline = load_recipe(path)[0] if path is not None else new_recipe()
        self.loaded: Recipe = baseline  # what the diff compares against: the file, or the defaults
        self.loaded_path: Path | None = path
        self.problems: list[Problem] = []
        self._first = recipe
        self._seen_version = self.app.recipe_version

    @property
    def recipes_dir(self) -> Path:
        return Path(getattr(self.app, "recipes_dir", "recipes"))

    @property
    def is_settled(self) -> bool:
        """The hub cache line answers the recipe's model (tests and pictures wait; the memory panel
        has its own `is_current`)."""
        return self.query_one(HubStatus).is_settled

    @property
    def form(self) -> RecipeForm:
        return self.query_one(RecipeForm)

    @property
    def recipe(self) -> Recipe:
        return self.form.recipe

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        yield Static("", id="recipe-status", markup=False)
        with Horizontal(id="recipe-main"):
            yield RecipeForm(self._first, self.lang, id="recipe-form")
            with VerticalScroll(id="recipe-side"):
                yield Static(self.t("panel.memory"), classes="side-title -first")
                yield MemoryVerdict(self.lang, str(getattr(self.app, "runs_dir", "runs")), id="memory")
                yield HubStatus(self.lang, title=self.t("hub.title"), id="hub-status")
                yield Static(self.t("panel.problems"), classes="side-title")
                yield ProblemsList(self.lang, id="problems")
                yield Static(self.t("panel.diff_new"), classes="side-title", id="diff-title")
                yield RecipeDiff(self.lang, id="diff")
        yield GuidancePanel(self.lang, id="guidance")

    def on_mount(self) -> None:
        self._refresh(self.form.problems())

    def on_screen_resume(self) -> None:
        # Another screen may have changed the current recipe (Hardware's or Dataset's "use in recipe").
        if self.app.recipe_version != self._seen_version:
            self._seen_version = self.app.recipe_version
            self.form.load(self.app.recipe)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand(self.t("recipe.load"), self.t("recipe.load_help"), self.action_load)
        yield PaletteCommand(self.t("recipe.save"), self.t("recipe.save_help"), self.action_save)
        yield PaletteCommand(self.t("recipe.new"), self.t("recipe.new_help"), self.action_new)
        # Every field that applies, so "rank" or "lora.r" in the palette jumps straight to it.
        for spec in FIELDS.values():
            if self.recipe.applies(spec.key):
                yield PaletteCommand(
                    self.t("recipe.field_cmd", label=spec.title(self.lang), key=spec.key),
                    allowed_text(spec, self.lang),
                    partial(self.form.focus_field, spec.key),
                )

    # ------------------------------------------------------------------ keeping the panels current

    def on_recipe_form_changed(self, event: RecipeForm.Changed) -> None:
        self._seen_version = self.app.recipe_changed()
        self._refresh(event.problems)

    def on_recipe_form_field_focused(self, event: RecipeForm.FieldFocused) -> None:
        self.query_one(GuidancePanel).show_field(event.spec)

    def on_problems_list_jump_to(self, event: ProblemsList.JumpTo) -> None:
        self.form.focus_field(event.key)

    def _set_baseline(self, recipe: Recipe, path: Path | None) -> None:
        self.loaded, self.loaded_path = recipe, path
        self.query_one("#diff-title", Static).update(self.t("panel.diff" if path else "panel.diff_new"))

    def _refresh(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.query_one(ProblemsList).show_problems(problems)
        diff = self.query_one(RecipeDiff)
        diff.compare(self.loaded, self.recipe)
        self.query_one(MemoryVerdict).request(self.recipe)
        self.query_one(HubStatus).show_for(self.recipe.model_path)
        where = str(self.loaded_path) if self.loaded_path else self.t("recipe.unsaved")
        changed = len(diff.changed_keys)
        parts = [
            self.t("mode.recipe.title") + ": " + where,
            self.t("recipe.changes", n=changed) if changed else self.t("recipe.no_changes"),
            self._problem_count(len(problems)),
        ]
        status = self.query_one("#recipe-status", Static)
        if str(status.render()) != "  ·  ".join(parts):
            status.update("  ·  ".join(parts))

    def _problem_count(self, n: int) -> str:
        if n == 0:
            return self.t("recipe.no_problems")
        return self.t("recipe.problem_one") if n == 1 else self.t("recipe.problems", n=n)

    # ------------------------------------------------------------------ load / new

    def show_recipe(self, recipe: Recipe, path: Path | None) -> None:
        """Put a recipe in the form; the diff now compares against it."""
        self._set_baseline(recipe.copy(), path)
        self.app.set_recipe(recipe.copy(), path)
        self._seen_version = self.app.recipe_version
        self.form.load(self.app.recipe)

    def load_file(self, path: Path) -> list[Problem]:
        """Read a recipe file into the form. Bad values keep their defaults and are reported."""
        recipe, problems = load_recipe(path)
        if any(p.key in ("file", "toml") for p in problems):
            self.app.show_error("\n".join(p.format(str(path)) for p in problems))
            return problems
        self.show_recipe(recipe, path)
        if problems:
            listing = "\n".join(p.format() for p in problems[:6])
            self.notify(
                self.t("recipe.load_problems", path=path, n=len(problems)) + "\n" + listing,
                severity="warning",
            )
        else:
            self.notify(self.t("recipe.loaded", path=path))
        return problems

    @work(exclusive=True, exit_on_error=False, group="recipe-dialog")
    async def action_load(self) -> None:
        if not await self._may_discard():
            return
        path = await self.app.push_screen_wait(OpenRecipeDialog(self.recipes_dir))
        if path is not None:
            self.load_file(path)

    @work(exclusive=True, exit_on_error=False, group="recipe-dialog")
    async def action_new(self) -> None:
        if await self._may_discard():
            self.show_recipe(new_recipe(), None)

    async def _may_discard(self) -> bool:
        changed = len(self.query_one(RecipeDiff).changed_keys)
        if not changed:
            return True
        return await self.app.push_screen_wait(
            ConfirmDialog(self.t("recipe.discard_title"), self.t("recipe.discard", n=changed))
        )

    # ------------------------------------------------------------------ save

    def target_path(self, text: str) -> Path:
        """A bare file name goes under recipes/; anything with a folder is taken as given."""
        path = Path(text).expanduser()
        return self.recipes_dir / path if path.parent == Path(".") else path

    def _check_name(self, text: str) -> str | None:
        return None if text.endswith(".toml") and Path(text).stem else self.t("recipe.bad_name")

    def _suggested_name(self) -> str:
        if self.loaded_path is not None:
            in_recipes = self.loaded_path.parent.resolve() == self.recipes_dir.resolve()
            return self.loaded_path.name if in_recipes else str(self.loaded_path)
        return f"{self.recipe.name}.toml"

    @work(exclusive=True, exit_on_error=False, group="recipe-dialog")
    async def action_save(self) -> None:
        prompt = PromptDialog(
            self.t("recipe.save_title"),
            self.t("recipe.save_prompt", dir=self.recipes_dir),
            self._suggested_name(),
            check=self._check_name,
        )
        suggested = self._suggested_name()
        text = await self.app.push_screen_wait(prompt)
        if not text:
            return
        path = self.target_path(text)
        # The run name followed the file name (quickstart.toml -> runs/quickstart): keep it that way,
        # so training the copy does not write over the original's run.
        new_name = path.stem
        if (
            self.recipe.name == Path(suggested).stem
            and new_name != self.recipe.name
            and RUN_NAME_RE.match(new_name)
        ):
            self.form.set_field("name", new_name)
            self.notify(self.t("recipe.renamed", name=new_name))
        problems = self.form.problems()
        if problems:
            listing = "\n".join("• " + p.format() for p in problems[:8])
            ok = await self.app.push_screen_wait(
                ConfirmDialog(
                    self.t("recipe.save_bad_title"), self.t("recipe.save_bad", n=len(problems), list=listing)
                )
            )
            if not ok:
                return
        if path.exists():
            ok = await self.app.push_screen_wait(
                ConfirmDialog(self.t("recipe.overwrite_title"), self.t("recipe.overwrite", path=path))
            )
            if not ok:
                return
        try:
            save_recipe(self.recipe, path)
        except OSError as e:
            self.app.show_error(f"{path}: cannot write: {e.strerror or e}")
            return
        saved = self.recipe.copy()
        saved.source = path
        self.recipe.source = path  # relative data paths are now looked up next to the new file
        self._set_baseline(saved, path)
        self.app.recipe_path = path
        self._refresh(self.form.problems())
        self.notify(self.t("recipe.saved", path=path))
