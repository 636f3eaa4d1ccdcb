"""A model's tokenizer without its weights, for previews and stats.

`models.resolve_model` may download a whole hub repository or dequantize the demo GGUF (loading
its weights) to produce a folder; a preview needs neither. This looks for the tokenizer where it
already is (a local folder, the hub cache, the dequantized demo cache, inside a .gguf file) and
otherwise fetches only the tokenizer files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

TOKENIZER_FILES = ["tokenizer*", "special_tokens_map.json", "chat_template.*", "*.model", "*.tiktoken", "vocab*", "merges.txt"]


def load_tokenizer_only(name_or_path: str, trust_remote_code: bool = False) -> Any:
    from tuitune.core.models import HUB_ID_RE, cache_root, demo_gguf_path, hub_offline
    from tuitune.core.recipe import DEMO_MODEL

    p = Path(name_or_path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return _from(str(p.parent), trust_remote_code, gguf_file=p.name)
    if p.is_dir() and any(p.glob("tokenizer*")):
        return _from(str(p), trust_remote_code)
    if p.is_dir() or not HUB_ID_RE.match(name_or_path):
        from tuitune.core.models import resolve_model

        return _from(str(resolve_model(name_or_path).path), trust_remote_code)  # local: no weights loaded
    cached = _hub_cache(name_or_path, local_only=True)
    if cached:
        return _from(cached, trust_remote_code)
    if name_or_path == DEMO_MODEL:
        gguf = demo_gguf_path()
        if gguf is not None:
            done = sorted((cache_root() / "models").glob(f"{gguf.stem}-*/tokenizer_config.json"))
            if done:
                return _from(str(done[0].parent), trust_remote_code)
            return _from(str(gguf.parent), trust_remote_code, gguf_file=gguf.name)
    if hub_offline():
        raise UserError(
            f"tokenizer of '{name_or_path}' not found: not in the hub cache and the hub is offline (HF_HUB_OFFLINE=1)",
            "download the model once with internet, or point --model at a local folder",
        )
    fetched = _hub_cache(name_or_path, local_only=False)
    if not fetched:
        raise UserError(f"tokenizer of '{name_or_path}' could not be downloaded", "check the model name and your connection")
    return _from(fetched, trust_remote_code)


def _hub_cache(repo_id: str, local_only: bool) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(repo_id, allow_patterns=TOKENIZER_FILES, local_files_only=local_only)
    except Exception:  # noqa: BLE001 - not cached / not reachable: the caller decides what to say
        return None
    return path if any(Path(path).glob("tokenizer*")) else None


def _from(path: str, trust_remote_code: bool, **kw: Any) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **kw)
    except Exception as e:  # noqa: BLE001 - a broken or missing tokenizer is one line for the user
        raise UserError(f"cannot load a tokenizer from {path}: {str(e).splitlines()[0][:200]}", "check the model folder") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
