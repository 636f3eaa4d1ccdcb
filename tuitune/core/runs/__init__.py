"""Run folders (see directory.py)."""

from tuitune.core.runs.directory import *  # noqa: F403
