"""Memory planning (see estimator.py)."""

from tuitune.core.memory.estimator import *  # noqa: F403
from tuitune.core.memory.estimator import _optimizer_temporaries  # noqa: F401
