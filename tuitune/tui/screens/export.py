"""Export screen — planned: states what it will show and the command that does it today.

Replace this module with the real screen (same class name, MODE = "export"); see docs/tui.md.
"""

from __future__ import annotations

from tuitune.tui.screens.planned import PlannedScreen


class ExportScreen(PlannedScreen):
    MODE = "export"
