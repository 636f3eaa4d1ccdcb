"""The recipe: every hyperparameter of a fine-tuning run, declared once (see schema.py)."""

from tuitune.core.recipe.schema import *  # noqa: F403
from tuitune.core.recipe.schema import _fmt  # noqa: F401
