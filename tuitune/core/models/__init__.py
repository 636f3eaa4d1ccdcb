"""Models: where they come from, what their architecture is, and how they are loaded for training.

- resolution.py  `resolve_model(name) -> ModelSource` (local folder, hub cache or download, .gguf, demo),
                 `load_tokenizer`
- hub_cache.py   a hub model before it is downloaded: the files needed, their sizes, what the cache
                 holds, the disk's free space, one message per hub failure (`plan_download`,
                 `cached_snapshot`, `model_availability`)
- hub_download.py `fetch_model`: resumable download into the hub cache, progress (`reporting`)
- spec.py        `model_spec(name) -> ModelSpec`: the architecture without the weights (config, gguf, catalog)
- catalog.py     built-in architectures of popular models (works offline), `recipe_model_name`
- precision.py   the one precision policy: weight / compute dtypes and autocast per device
- loading.py     `load_base_model(recipe)`: device, dtype, quantization, attention, as training needs it

Standard library only at import; torch and transformers inside functions. The resolution names are
re-exported here (`from tuitune.core.models import resolve_model`).
"""

from tuitune.core.models.resolution import (
    DEMO_WHEEL,
    HUB_ID_RE,
    HUB_PATTERNS,
    ModelSource,
    cache_root,
    demo_gguf_path,
    gguf_to_safetensors,
    hub_offline,
    load_tokenizer,
    resolve_model,
)

__all__ = [
    "DEMO_WHEEL", "HUB_ID_RE", "HUB_PATTERNS", "ModelSource", "cache_root", "demo_gguf_path", "gguf_to_safetensors",
    "hub_offline", "load_tokenizer", "resolve_model",
]
