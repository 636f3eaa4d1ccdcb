"""Pick a recipe: the .toml files in recipes/ as a list, or any path typed below it."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tuitune.tui.dialogs.base import Dialog


class OpenRecipeDialog(Dialog[Path | None]):
    DEFAULT_CSS = """
    OpenRecipeDialog OptionList { height: auto; max-height: 12; margin-bottom: 1; }
    OpenRecipeDialog #error { color: $text-error; height: auto; }
    """

    def __init__(self, recipes_dir: Path) -> None:
        super().__init__()
        self.recipes_dir = recipes_dir

    def compose(self) -> ComposeResult:
        files = sorted(self.recipes_dir.glob("*.toml")) if self.recipes_dir.is_dir() else []
        with Vertical(id="box"):
            yield Static(self.t("recipe.open_title"), classes="dialog-title", markup=False)
            if files:
                yield OptionList(*[Option(str(f), id=str(f)) for f in files], id="files")
            else:
                yield Static(self.t("recipe.open_none", dir=self.recipes_dir), markup=False)
            yield Static(self.t("recipe.open_path"), markup=False)
            yield Input(placeholder="path/to/recipe.toml", id="path")
            yield Static("", id="error", markup=False)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(str(event.option.id)))

    @on(Input.Submitted)
    def _typed(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if not path.is_file():
            self.query_one("#error", Static).update(self.t("recipe.not_found", path=path) if event.value.strip() else "")
            return
        self.dismiss(path)
