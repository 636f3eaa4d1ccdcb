"""Defaults that depend on the method or on other fields, applied in one place."""

from __future__ import annotations

from collections.abc import Callable, Collection

from tuitune.core.recipe.methods import PROMPT_METHODS, trains_base_weights
from tuitune.core.recipe.schema import Recipe

# Fields whose default follows another field: (key, the field it follows, the rule).
DERIVED_DEFAULTS: tuple[tuple[str, str, Callable[[Recipe], object]], ...] = (
    ("lora.alpha", "lora.r", lambda recipe: 2 * recipe.lora.r),  # alpha = 2 x rank
)


def derive_defaults(recipe: Recipe, given: Collection[str], changed: Collection[str] | None = None) -> None:
    """Set each derived field from the field it follows, unless the user gave it (`given`).

    `changed`: only fields that follow one of these keys are derived again (for `--set`, where the
    rest of the recipe was already settled); None derives them all (a recipe just read).
    """
    for key, source, rule in DERIVED_DEFAULTS:
        if key in given or (changed is not None and source not in changed):
            continue
        recipe.set(key, rule(recipe))


def new_recipe(method: str = "lora", model: str | None = None) -> Recipe:
    """A complete recipe with defaults for a method; fields tuned for the method where it matters."""
    recipe = Recipe()
    recipe.method.type = method
    if model:
        recipe.model.name_or_path = model
    if trains_base_weights(method):
        recipe.train.learning_rate = 2e-5
    elif method in PROMPT_METHODS or method == "ia3":
        recipe.train.learning_rate = 3e-3
    return recipe
