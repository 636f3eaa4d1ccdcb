"""The tuitune app: seven modes on F1..F7, a command palette, the theme. Screens do the work.

Start-up stays light: this module imports Textual and the small screen registry only; each screen
module is imported when its mode is first shown, and nothing here imports torch & co.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.binding import Binding
from textual.events import DescendantFocus

from tuitune.tui.i18n import localize_bindings, t
from tuitune.tui.palette import TuituneCommands
from tuitune.tui.run_follower import RunEvents, RunFollower
from tuitune.tui.screens import MODES as ALL_MODES

if TYPE_CHECKING:
    from tuitune.core.hardware import GpuProbe
    from tuitune.core.recipe import Problem, Recipe

DEFAULT_THEME = "textual-dark"


def _mode_screen(mode):  # a factory per mode, so the screen module is imported on first use
    return lambda: mode.screen_class()()


class TuituneApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute, so subclasses elsewhere find it
    TITLE = "tuitune"
    MODES = {mode.name: _mode_screen(mode) for mode in ALL_MODES}
    COMMANDS = App.COMMANDS | {TuituneCommands}
    # Screens get -short/-tall and -narrow/-wide classes so their CSS can use the room a terminal has.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        *(Binding(m.key, f"switch_mode('{m.name}')", m.name, show=False) for m in ALL_MODES),
        # alt+digit reaches us only from terminals with the kitty keyboard protocol: xterm-style ones
        # send ESC 1, which Textual reads as the "¡" macOS types for Option+1. Everywhere: ctrl+g.
        *(Binding(f"alt+{m.digit}", f"switch_mode('{m.name}')", m.name, show=False) for m in ALL_MODES),
        Binding("ctrl+g", "go_to", "key.goto"),
        Binding("ctrl+q", "quit", "key.quit", show=True, priority=True),
        Binding("ctrl+p", "command_palette", "key.palette", show=False, priority=True),
    ]

    def __init__(
        self,
        lang: str = "en",
        runs_dir: str | Path = "runs",
        recipes_dir: str | Path = "recipes",
        run: str | None = None,
        start_mode: str | None = None,
        blink: bool = True,
        first_recipe: Path | None = None,
    ) -> None:
        super().__init__()
        self.lang = lang
        self.runs_dir = Path(runs_dir)
        self.recipes_dir = Path(recipes_dir)
        self.initial_run = run
        self.explicit_start = start_mode is not None or run is not None
        self.start_mode = start_mode or ("train" if run else ALL_MODES[0].name)
        self.blink = blink  # tests and screenshots freeze the cursor so pictures are stable
        # GPUs are read through this core GpuProbe when set (tests: one whose numbers change);
        # None: core's select_gpu_probe() (NVML, or TUITUNE_FAKE_GPU).
        self.gpu_probe: GpuProbe | None = None
        self._recipe: Recipe | None = None
        self.recipe_path: Path | None = None  # the file the current recipe was loaded from / saved to
        self.recipe_version = 0  # bumped on every change of the current recipe
        # The recipe that is current until the user opens or makes one (`tuitune` passes the bundled
        # quickstart); `recipe_is_first` says the current recipe is still that one, untouched.
        self.first_recipe = first_recipe
        self._first_copy: Recipe | None = None
        self.theme = DEFAULT_THEME
        # The run the Train screen shows, followed by an app-level thread whichever screen is up.
        self.follower = RunFollower(self)
        self.first_frame_shown = False
        self._after_first_frame: list[Any] = []
        localize_bindings(self, lang)

    # ------------------------------------------------------------------ the current recipe
    # One recipe is shared by the screens (docs/tui.md, "The current recipe"): the Recipe form edits
    # it in place, other screens read it when shown and change it through update_recipe().

    @property
    def recipe(self) -> Recipe:
        if self._recipe is None:
            from tuitune.core.recipe import load_recipe, new_recipe

            recipe, problems = load_recipe(self.first_recipe) if self.first_recipe else (None, [])
            if recipe is not None and not problems:
                self._recipe, self.recipe_path, self._first_copy = recipe, self.first_recipe, recipe.copy()
            else:
                self._recipe = new_recipe()
        return self._recipe

    @property
    def recipe_is_first(self) -> bool:
        """The current recipe is still the first one (`first_recipe`), as read from its file."""
        return self._first_copy is not None and self.recipe_path == self.first_recipe and self.recipe == self._first_copy

    def set_recipe(self, recipe: Recipe, path: Path | None) -> None:
        """Replace the current recipe (the Recipe screen's load and new)."""
        self._recipe = recipe
        self.recipe_path = path
        self.recipe_changed()

    def update_recipe(self, changes: dict[str, Any]) -> list[Problem]:
        """Set keys of the current recipe from another screen. Each value is checked against the
        schema; a bad one is left out and returned as a problem."""
        from tuitune.core.recipe import FIELDS, check_value

        problems = []
        for key, value in changes.items():
            checked, problem = check_value(FIELDS[key], value)
            if problem is not None:
                problems.append(problem)
            else:
                self.recipe.set(key, checked)
        self.recipe_changed()
        return problems

    def recipe_changed(self) -> int:
        """Note that the current recipe changed; returns the new version."""
        self.recipe_version += 1
        return self.recipe_version

    def on_mount(self) -> None:
        self.sub_title = t("app.subtitle", self.lang)
        self.switch_mode(self.start_mode)
        if self.initial_run:
            self.open_run(self.initial_run)
        else:  # after the first frame: is a run still training here? (reopening mid-run)
            self.call_after_refresh(self.run_worker, self._find_live_run, thread=True, group="find-live-run",
                                    exit_on_error=False)

    def after_first_frame(self, callback: Any) -> None:
        """Call `callback` once the app's first frame is on the terminal (at once after a refresh if it
        is already). Screens put their slow parts here so they do not hold up the first paint."""
        if self.first_frame_shown:
            self.call_after_refresh(callback)
        else:
            self._after_first_frame.append(callback)

    def on_ready(self) -> None:
        """Textual's Ready: the first frame has been painted."""
        self.first_frame_shown = True
        self._run_after_first_frame()

    def _run_after_first_frame(self, waited: int = 0) -> None:
        # Textual's Footer fills in its keys a frame after Ready: wait for them (at most 0.5 s), so
        # the first complete screen is not held up by the slow parts.
        if self._after_first_frame and waited < 50 and not self.screen.query("FooterKey"):
            self.set_timer(0.01, lambda: self._run_after_first_frame(waited + 1))
            return
        callbacks, self._after_first_frame = self._after_first_frame, []
        for callback in callbacks:
            self.call_after_refresh(callback)

    # ------------------------------------------------------------------ the followed run

    def open_run(self, name_or_path: str | Path, switch: bool = True, quiet_replay: bool = True) -> bool:
        """Follow a run (name under runs_dir, or a path) and show it on the Train screen.

        Replays its whole history, then follows it live while a trainer holds it. The shared API for
        screens that open a run (Runs); False (and the error dialog) when there is no such run."""
        from tuitune.core.errors import UserError
        from tuitune.core.runs import find_run

        try:
            run = find_run(str(name_or_path), self.runs_dir)
        except UserError as e:
            self.show_error(e)
            return False
        self.follower.attach(run, quiet_replay=quiet_replay)
        if switch:
            self.switch_mode("train")
        return True

    def _find_live_run(self) -> None:
        """Thread: the newest run in runs_dir that a trainer holds now, attached on the loop."""
        from tuitune.core.runs import list_runs

        live = [s for s in list_runs(self.runs_dir) if s.live]
        if live:
            self.call_from_thread(self._attach_live, live[0].path, live[0].name)

    def _attach_live(self, path: str, name: str) -> None:
        if self.follower.attached is not None:
            return  # the user opened or started a run meanwhile
        self.open_run(path, switch=not self.explicit_start)
        self.notify(t("train.attached", self.lang, name=name), timeout=8)

    def on_run_events(self, message: RunEvents) -> None:
        self.follower.apply(message)

    def action_go_to(self) -> None:
        """ctrl+g: a list of the modes, for terminals (or fingers) without F-keys."""
        from tuitune.tui.dialogs.go_to import GoToDialog

        def chosen(mode: str | None) -> None:
            if mode:
                self.switch_mode(mode)

        if not isinstance(self.screen, GoToDialog):
            self.push_screen(GoToDialog(self.current_mode), chosen)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if not self.blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    def show_error(self, error: BaseException | str, title: str | None = None) -> None:
        """The one place failures become a dialog (worker errors arrive here via ReportsWorkerErrors)."""
        from tuitune.tui.dialogs.error import ErrorDialog

        if isinstance(error, BaseException):
            dialog = ErrorDialog.from_exception(error, self.lang)
        else:
            dialog = ErrorDialog(title or t("dialog.error", self.lang), error)
        self.push_screen(dialog)


def quickstart_recipe(recipes_dir: Path) -> Path | None:
    """The bundled quickstart recipe: recipes/quickstart.toml here, else the one beside the package
    (a source checkout). It trains the demo model on CPU in a few minutes and visibly changes it."""
    for folder in (Path(recipes_dir), Path(__file__).resolve().parents[2] / "recipes"):
        path = folder / "quickstart.toml"
        if path.is_file():
            return path
    return None


def run_app(lang: str = "en", mouse: bool = True, run: str | None = None, runs_dir: str = "runs") -> int:
    """Entry point used by `tuitune` with no subcommand: the quickstart is the first current recipe."""
    app = TuituneApp(lang=lang, runs_dir=runs_dir, run=run, first_recipe=quickstart_recipe(Path("recipes")))
    result = app.run(mouse=mouse)
    return int(result or 0)
