"""The recipe: every hyperparameter of a fine-tuning run, declared once, and what is done with it.

- schema.py          `Recipe`, its common sections, `FIELDS` (key -> FieldSpec), section labels
- fields.py          `fld` (how a field is declared) and `FieldSpec` (what is known about it)
- methods.py         the methods and their groups (PEFT, virtual-token, LoRA), sections per method
- method_sections.py [lora], [quantization], [freeze], [prompt];  train_section.py: [train]
- checks.py          `check_value`, `parse_text`, `validate`, the cross-field rules -> `Problem`s
- toml_io.py         `load_recipe`, `from_dict`, `to_dict`, `to_toml`, `save_recipe`
- defaults.py        `new_recipe` (per-method defaults), `derive_defaults` (alpha = 2 x rank)
- changes.py         `apply_overrides` (`--set key=value`), `diff`

The names below are the recipe's public API; import them from `tuitune.core.recipe`.
Standard library only at import (tomli-w is imported when writing).
"""

from tuitune.core.recipe.changes import apply_overrides, diff
from tuitune.core.recipe.checks import Problem, check_value, parse_text, validate
from tuitune.core.recipe.defaults import derive_defaults, new_recipe
from tuitune.core.recipe.fields import FieldSpec, _fmt, fld
from tuitune.core.recipe.methods import (
    LORA_METHODS,
    METHODS,
    OPTIONAL_SECTIONS,
    PEFT_METHODS,
    PROMPT_METHODS,
    SECTIONS_FOR_METHOD,
    trains_base_weights,
)
from tuitune.core.recipe.schema import (
    CHAT_TEMPLATES,
    DATA_FORMATS,
    DEMO_MODEL,
    FIELDS,
    RUN_NAME_RE,
    SECTION_TYPES,
    Recipe,
    fields,
    section_labels,
)
from tuitune.core.recipe.toml_io import from_dict, load_recipe, save_recipe, to_dict, to_toml
from tuitune.core.recipe.train_section import OPTIMIZERS, SCHEDULERS

__all__ = [
    "CHAT_TEMPLATES", "DATA_FORMATS", "DEMO_MODEL", "FIELDS", "LORA_METHODS", "METHODS", "OPTIMIZERS",
    "OPTIONAL_SECTIONS", "PEFT_METHODS", "PROMPT_METHODS", "RUN_NAME_RE", "SCHEDULERS", "SECTIONS_FOR_METHOD",
    "SECTION_TYPES", "FieldSpec", "Problem", "Recipe", "_fmt", "apply_overrides", "check_value", "derive_defaults",
    "diff", "fields", "fld", "from_dict", "load_recipe", "new_recipe", "parse_text", "save_recipe", "section_labels",
    "to_dict", "to_toml", "trains_base_weights", "validate",
]
