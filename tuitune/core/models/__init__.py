"""Models (see resolution.py)."""

from tuitune.core.models.resolution import *  # noqa: F403
