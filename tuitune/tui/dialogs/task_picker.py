"""Pick benchmark tasks: the popular lm-eval tasks with what each measures (space ticks one, enter
takes the ticked ones). Names typed before that are not in the list are kept. Answers the names, or
None on escape."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from tuitune.core.benchmarks import KNOWN_TASKS
from tuitune.tui.dialogs.base import Dialog


class TaskPickerDialog(Dialog[list[str] | None]):
    DEFAULT_CSS = """
    TaskPickerDialog SelectionList { height: auto; max-height: 12; border: none; padding: 0; }
    TaskPickerDialog .dialog-help { color: $text-muted; height: auto; }
    """
    # Enter would toggle the option under the cursor (SelectionList's own key, like space): the
    # dialog takes it first, so space ticks and enter answers.
    BINDINGS = [Binding("enter", "take", "bench.take", show=False, priority=True)]

    def __init__(self, typed: list[str]) -> None:
        super().__init__()
        self.typed = typed

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.t("bench.pick_title"), classes="dialog-title", markup=False)
            yield SelectionList[str](
                *[Selection(f"{k.name:<15} {k.text(self.lang)}", k.name, k.name in self.typed) for k in KNOWN_TASKS],
                id="tasks",
            )
            yield Static(self.t("bench.pick_help"), classes="dialog-help", markup=False)

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_take(self) -> None:
        ticked = set(self.query_one(SelectionList).selected)
        known = [k.name for k in KNOWN_TASKS]
        # Known tasks in the list's order, then the ones typed by hand that the list does not have.
        self.dismiss([n for n in known if n in ticked] + [n for n in self.typed if n not in known])
