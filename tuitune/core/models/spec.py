"""A model's architecture without its weights: what the memory estimator needs.

`model_spec(name_or_path)` reads, in order: a local folder's `config.json` (or the file itself), a
`.gguf` header (metadata only, through the `gguf` package), the built-in catalog, and a hub id's
`config.json` (only that file is fetched, and cached). Offline, a hub id falls back to the catalog.

Parameter counts are computed from the architecture: grouped-query attention (fewer key/value
heads), tied input/output embeddings, biases (Qwen's q/k/v bias, ChatGLM's fused qkv bias),
mixture-of-experts (every expert's MLP plus the router), ChatGLM's fused layout, Gemma-2's four
norms per layer and wide heads, Phi-3's fused qkv and gate/up projections. The linear layers of
one decoder layer are listed by their module names, so adapters can be sized per target module.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.models import catalog

HOW_TO_NAME_A_MODEL = (
    "give a local folder with config.json, a .gguf file, a hub id (org/name, fetched when online), "
    "or a catalog name such as llama-3-8b, qwen2.5-7b, mistral-7b (`tuitune estimate --list-models` lists them)"
)


@dataclass(frozen=True)
class LinearModule:
    """One linear layer inside a decoder layer (per layer; `count` > 1 for MoE experts)."""

    name: str  # module name as peft targets it: q_proj, query_key_value, gate_up_proj, w1, ...
    in_features: int
    out_features: int
    bias: bool = False
    count: int = 1
    part: str = "attn"  # attn | mlp | router

    @property
    def params(self) -> int:
        return self.count * (self.in_features * self.out_features + (self.out_features if self.bias else 0))


@dataclass(frozen=True)
class ModelSpec:
    """Architecture facts read from a config (no weights)."""

    name: str
    source: str  # config | hub | gguf | catalog
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tie_embeddings: bool
    linears: tuple[LinearModule, ...]
    norms_per_layer: int = 2
    norm_params_per_norm: int = 0  # weight (+ bias for LayerNorm) elements; 0 = hidden_size
    num_experts: int = 0
    experts_per_token: int = 0
    max_position_embeddings: int = 0
    dtype: str = ""  # torch_dtype from the config, informative
    note: str = ""
    file_params: int | None = field(default=None, compare=False)  # exact count when the file lists tensors

    # ---- sizes

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    @property
    def norm_params(self) -> int:
        """Norm elements in one decoder layer."""
        return self.norms_per_layer * (self.norm_params_per_norm or self.hidden_size)

    @property
    def linear_params_per_layer(self) -> int:
        return sum(m.params for m in self.linears)

    @property
    def params_per_layer(self) -> int:
        return self.linear_params_per_layer + self.norm_params

    @property
    def total_params(self) -> int:
        """Every parameter, counted once (tied embeddings once), final norm included."""
        final_norm = self.norm_params_per_norm or self.hidden_size
        return self.embedding_params + self.lm_head_params + self.num_layers * self.params_per_layer + final_norm

    def linear_names(self) -> list[str]:
        return [m.name for m in self.linears if m.part != "router"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["linears"] = [asdict(m) for m in self.linears]
        d["total_params"] = self.total_params
        return d


# --------------------------------------------------------------------------- from a config dict


def spec_from_config(cfg: dict[str, Any], name: str, source: str) -> ModelSpec:
    """Build a spec from a transformers-style config dict. UserError if it is not a decoder LM we know."""
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers keep the LM in text_config
        inner = dict(cfg["text_config"])
        inner.setdefault("model_type", cfg.get("model_type", ""))
        cfg = inner
    model_type = str(cfg.get("model_type", "")).lower()
    if model_type == "chatglm":
        return _chatglm(cfg, name, source)
    try:
        hidden = int(cfg["hidden_size"])
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        vocab = int(cfg["vocab_size"])
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(
            f"{name}: config has no {e} (not a decoder language model this estimator knows)",
            "use a Llama/Mistral/Qwen/Gemma/Phi-style model, or a catalog name",
        ) from e
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    inter = int(cfg.get("intermediate_size") or 4 * hidden)
    experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 0)
    per_tok = int(cfg.get("num_experts_per_tok") or (2 if experts else 0))
    if experts and cfg.get("moe_intermediate_size"):
        inter = int(cfg["moe_intermediate_size"])
    tied = bool(cfg.get("tie_word_embeddings", model_type in ("gemma", "gemma2", "gemma3_text")))
    attn_bias = bool(cfg.get("attention_bias", False))
    qkv_bias = attn_bias or model_type in ("qwen2", "qwen2_moe")
    o_bias = attn_bias
    mlp_bias = bool(cfg.get("mlp_bias", False))
    q_dim, kv_dim = heads * head_dim, kv * head_dim

    linears: list[LinearModule]
    if model_type == "phi3":
        linears = [
            LinearModule("qkv_proj", hidden, q_dim + 2 * kv_dim, qkv_bias),
            LinearModule("o_proj", q_dim, hidden, o_bias),
            LinearModule("gate_up_proj", hidden, 2 * inter, mlp_bias, part="mlp"),
            LinearModule("down_proj", inter, hidden, mlp_bias, part="mlp"),
        ]
    else:
        linears = [
            LinearModule("q_proj", hidden, q_dim, qkv_bias),
            LinearModule("k_proj", hidden, kv_dim, qkv_bias),
            LinearModule("v_proj", hidden, kv_dim, qkv_bias),
            LinearModule("o_proj", q_dim, hidden, o_bias),
        ]
        if experts:
            linears += [
                LinearModule("gate", hidden, experts, False, part="router"),
                LinearModule("w1", hidden, inter, False, experts, part="mlp"),
                LinearModule("w3", hidden, inter, False, experts, part="mlp"),
                LinearModule("w2", inter, hidden, False, experts, part="mlp"),
            ]
        else:
            linears += [
                LinearModule("gate_proj", hidden, inter, mlp_bias, part="mlp"),
                LinearModule("up_proj", hidden, inter, mlp_bias, part="mlp"),
                LinearModule("down_proj", inter, hidden, mlp_bias, part="mlp"),
            ]
    norms = 4 if model_type in ("gemma2", "gemma3_text") else 2
    return ModelSpec(
        name=name,
        source=source,
        model_type=model_type or "llama",
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        tie_embeddings=tied,
        linears=tuple(linears),
        norms_per_layer=norms,
        num_experts=experts,
        experts_per_token=per_tok,
        max_position_embeddings=int(cfg.get("max_position_embeddings") or 0),
        dtype=str(cfg.get("torch_dtype") or cfg.get("dtype") or ""),
    )


def _chatglm(cfg: dict[str, Any], name: str, source: str) -> ModelSpec:
    """ChatGLM2/3: fused query_key_value (with bias), multi-query groups, fused SwiGLU dense_h_to_4h."""
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    head_dim = int(cfg.get("kv_channels") or hidden // heads)
    kv = int(cfg.get("multi_query_group_num") or heads) if cfg.get("multi_query_attention", True) else heads
    inter = int(cfg["ffn_hidden_size"])
    qkv_bias = bool(cfg.get("add_qkv_bias", True))
    lin_bias = bool(cfg.get("add_bias_linear", False))
    q_dim, kv_dim = heads * head_dim, kv * head_dim
    linears = (
        LinearModule("query_key_value", hidden, q_dim + 2 * kv_dim, qkv_bias),
        LinearModule("dense", q_dim, hidden, lin_bias),
        LinearModule("dense_h_to_4h", hidden, 2 * inter, lin_bias, part="mlp"),
        LinearModule("dense_4h_to_h", inter, hidden, lin_bias, part="mlp"),
    )
    return ModelSpec(
        name=name,
        source=source,
        model_type="chatglm",
        vocab_size=int(cfg.get("padded_vocab_size") or cfg.get("vocab_size")),
        hidden_size=hidden,
        intermediate_size=inter,
        num_layers=int(cfg["num_layers"]),
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        tie_embeddings=False,
        linears=linears,
        max_position_embeddings=int(cfg.get("seq_length") or 0),
        dtype=str(cfg.get("torch_dtype") or ""),
    )


# --------------------------------------------------------------------------- sources


def spec_from_config_file(path: Path, name: str | None = None) -> ModelSpec:
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read config: {e}", "a config.json saved by transformers") from e
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: config is not a JSON object", "a config.json saved by transformers")
    return spec_from_config(cfg, name or str(path.parent if path.name == "config.json" else path), "config")


# GGUF metadata keys (llama.cpp's naming) -> config keys; "{a}" is general.architecture.
_GGUF_KEYS = {
    "hidden_size": "{a}.embedding_length",
    "intermediate_size": "{a}.feed_forward_length",
    "num_hidden_layers": "{a}.block_count",
    "num_attention_heads": "{a}.attention.head_count",
    "num_key_value_heads": "{a}.attention.head_count_kv",
    "max_position_embeddings": "{a}.context_length",
    "vocab_size": "{a}.vocab_size",
    "num_local_experts": "{a}.expert_count",
    "num_experts_per_tok": "{a}.expert_used_count",
    "head_dim": "{a}.attention.key_length",
}


def spec_from_gguf(path: Path) -> ModelSpec:
    """Read a GGUF header: metadata and tensor names/shapes only (the tensors stay on disk)."""
    cached = _cache_get(path)
    if cached is not None:
        return spec_from_config(cached["config"], str(path), "gguf")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure is one message
        raise UserError(f"{path}: cannot read the GGUF header: {e}", "a .gguf file written by llama.cpp") from e

    def value(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        try:
            return f.contents()
        except Exception:  # noqa: BLE001
            return None

    arch = value("general.architecture") or "llama"
    cfg: dict[str, Any] = {"model_type": {"qwen2": "qwen2", "phi3": "phi3", "gemma2": "gemma2"}.get(arch, "llama")}
    for key, template in _GGUF_KEYS.items():
        v = value(template.format(a=arch))
        if v is not None:
            cfg[key] = int(v)
    if "vocab_size" not in cfg:
        tokens = reader.fields.get("tokenizer.ggml.tokens")
        if tokens is not None:
            cfg["vocab_size"] = len(tokens.data)
    names = {t.name for t in reader.tensors}
    cfg["tie_word_embeddings"] = "output.weight" not in names
    cfg["attention_bias"] = "blk.0.attn_q.bias" in names and "blk.0.attn_output.bias" in names
    if arch == "qwen2":
        cfg.pop("attention_bias")
    file_params = int(sum(int(t.n_elements) for t in reader.tensors))
    _cache_put(path, {"config": cfg, "file_params": file_params})
    spec = spec_from_config(cfg, str(path), "gguf")
    return _with_file_params(spec, file_params)


def _with_file_params(spec: ModelSpec, n: int | None) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, file_params=n)


def _cache_dir() -> Path:
    from tuitune.core.models import cache_root

    return cache_root() / "specs"


def _cache_name(path: Path) -> str:
    import hashlib

    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:16] + ".json"


def _cache_get(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((_cache_dir() / _cache_name(path)).read_text())
    except (OSError, ValueError):
        return None


def _cache_put(path: Path, data: dict[str, Any]) -> None:
    try:
        d = _cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / (_cache_name(path) + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(d / _cache_name(path))
    except OSError:
        pass  # a cache that cannot be written only costs time


def _hub_config(repo_id: str, *, fetch: bool) -> Path | None:
    """config.json of a hub repo: from the hub cache, else (fetch=True) only that file is
    downloaded when online. None when neither works."""
    from huggingface_hub import hf_hub_download

    from tuitune.core.models import hub_offline

    try:
        return Path(hf_hub_download(repo_id, "config.json", local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached
        pass
    if not fetch or hub_offline():
        return None
    try:
        return Path(hf_hub_download(repo_id, "config.json"))
    except Exception:  # noqa: BLE001 - offline, private, missing: the caller explains
        return None


def model_spec(name_or_path: str) -> ModelSpec:
    """The architecture of a model named by path, hub id or catalog name. UserError if unknown."""
    from tuitune.core.models import HUB_ID_RE

    text = str(name_or_path).strip()
    if not text:
        raise UserError("no model given", HOW_TO_NAME_A_MODEL)
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir():
            if (path / "config.json").is_file():
                return spec_from_config_file(path / "config.json", text)
            ggufs = sorted(path.glob("*.gguf"))
            if ggufs:
                return spec_from_gguf(ggufs[0])
            raise UserError(f"model folder {path} has no config.json or .gguf file", HOW_TO_NAME_A_MODEL)
        if path.suffix == ".gguf":
            return spec_from_gguf(path)
        if path.suffix == ".json":
            return spec_from_config_file(path, text)
        raise UserError(f"{path} is not a model folder, config.json or .gguf file", HOW_TO_NAME_A_MODEL)
    key = catalog.catalog_key(text)
    if HUB_ID_RE.match(text):
        # The repo's own config wins when it is in the hub cache. It is fetched only for models the
        # catalog does not know: the catalog answers at once, even with a slow or absent network.
        cfg_path = _hub_config(text, fetch=key is None)
        if cfg_path is not None:
            return _renamed(spec_from_config_file(cfg_path, text), "hub")
    if key is not None:
        spec = spec_from_config(catalog.CATALOG[key], key, "catalog")
        return spec
    # The demo model works offline from its bundled GGUF.
    from tuitune.core.models import hub_offline
    from tuitune.core.recipe import DEMO_MODEL

    if text == DEMO_MODEL:
        from tuitune.core.models import demo_gguf_path

        gguf = demo_gguf_path()
        if gguf is not None:
            return _renamed(spec_from_gguf(gguf), "gguf", text)
    where = "the hub is offline (HF_HUB_OFFLINE=1) and it" if hub_offline() else "it could not be fetched and"
    if HUB_ID_RE.match(text):
        raise UserError(f"model '{text}' is unknown: {where} is not in the built-in catalog", HOW_TO_NAME_A_MODEL)
    raise UserError(f"model '{text}' is unknown: no such file, not a hub id, not in the catalog", HOW_TO_NAME_A_MODEL)


def _renamed(spec: ModelSpec, source: str, name: str | None = None) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, source=source, name=name or spec.name)
