"""Chat screen — planned: states what it will show and the command that does it today.

Replace this module with the real screen (same class name, MODE = "chat"); see docs/tui.md.
"""

from __future__ import annotations

from tuitune.tui.screens.planned import PlannedScreen


class ChatScreen(PlannedScreen):
    MODE = "chat"
