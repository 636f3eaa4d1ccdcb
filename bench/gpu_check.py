"""One CUDA GPU, one go: every training method of the engine on real architectures, measured.

    PYTHONPATH=. python bench/gpu_check.py --out DIR      # on one CUDA GPU: ~6-8 minutes, no downloads
    PYTHONPATH=. python bench/gpu_check.py --dry-run      # CPU: the plan checked, a rehearsal of every step

Models are the catalog's architectures (Qwen2.5-0.5B, Llama-3.2-1B, Llama-3-8B) with random weights
(built on the GPU from the catalog's config and saved once, so loading, quantization and training
take the same memory and time as with the real weights). For each model, method (full, freeze,
LoRA, DoRA, QLoRA 4-bit and 8-bit, prefix, prompt, (IA)3), with and without gradient checkpointing (LoRA and
QLoRA 4-bit also with the checkpoints offloaded to host memory, train.offload_activations)
and at a few batch x sequence shapes, the engine's own code trains STEPS optimizer steps:
engine.build.build_model (base, quantization, adapters), engine.collate.batching, engine.arguments
and TuituneTrainer (its loss, its optimizer). Each row records torch.cuda.max_memory_allocated and
max_memory_reserved against the estimator's allocated peak and total (core.memory.estimate at the
same shape), tokens/s (steps 2..N), and any failure with its message. A plain transformers Trainer
(+ PEFT LoRA / QLoRA) on the same architecture and shape is timed in the same process for tokens/s.
Writes DIR/gpu_check.json and DIR/gpu_check.md. Cases left when --budget-s runs out are "skipped".

--dry-run needs no GPU and downloads nothing: it builds every planned model on the meta device
(parameter counts against core.models.spec), applies each method's adapters there (trainable
parameters against the estimator's), checks every recipe the way `tuitune train` would, checks that
every planned step fits the GPU and the time budget by the estimator, and rehearses the whole
measuring code on the CPU with tiny models of the same architectures (every method, both
checkpointing settings, the baselines), so the GPU run meets no code it has not run before.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded, ever
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tuitune.core.recipe import Recipe, new_recipe, validate  # noqa: E402

STEPS = 4
GiB = 2**30
# (label, catalog hub id, shapes (batch, sequence), methods). The 8B model runs the methods people
# train it with on one GPU; the small ones run every method.
ALL = ("full", "freeze", "lora", "dora", "qlora-4bit", "qlora-8bit", "prefix", "prompt", "ia3")
MODELS: tuple[tuple[str, str, tuple[tuple[int, int], ...], tuple[str, ...]], ...] = (
    ("0.5B", "Qwen/Qwen2.5-0.5B", ((4, 512), (1, 2048)), ALL),
    ("8B", "meta-llama/Meta-Llama-3-8B", ((1, 1024),), ("full", "lora", "qlora-4bit", "qlora-8bit")),
    ("1B", "meta-llama/Llama-3.2-1B", ((2, 1024),), ALL),
)
METHODS: dict[str, dict[str, Any]] = {
    "full": {"method.type": "full"},
    "freeze": {"method.type": "freeze"},
    "lora": {"method.type": "lora"},
    "dora": {"method.type": "lora", "lora.use_dora": True},
    "qlora-4bit": {"method.type": "qlora", "quantization.bits": 4},
    "qlora-8bit": {"method.type": "qlora", "quantization.bits": 8},
    "prefix": {"method.type": "prefix"},
    "prompt": {"method.type": "prompt"},
    "ia3": {"method.type": "ia3"},
}
BASELINES = ("full", "lora", "qlora-4bit")
OFFLOAD_METHODS = ("lora", "qlora-4bit")  # also measured with train.offload_activations  # timed against a plain Trainer (+ PEFT) at the first shape
# A tiny model of the same architecture for the CPU rehearsal (same model type, tying, GQA).
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512, "max_position_embeddings": 4096}


@dataclass(frozen=True)
class Case:
    size: str  # "0.5B"
    model: str  # catalog hub id
    method: str  # a METHODS key
    checkpointing: bool
    batch: int
    seq: int
    baseline: bool = False  # also time the plain Trainer baseline at this shape
    offload: bool = False  # train.offload_activations (with checkpointing)

    @property
    def name(self) -> str:
        ckpt = ("ckpt+offload" if self.offload else "ckpt") if self.checkpointing else "no-ckpt"
        return f"{self.size} {self.method} {ckpt} {self.batch}x{self.seq}"


@dataclass
class Row:
    case: dict[str, Any]
    status: str = "ok"  # ok | failed | skipped
    error: str = ""
    allocated_bytes: int | None = None  # torch.cuda.max_memory_allocated over the steps
    reserved_bytes: int | None = None  # torch.cuda.max_memory_reserved
    estimate_allocated_bytes: int | None = None  # the estimator's allocated peak at this shape
    estimate_total_bytes: int | None = None  # its total (context and allocator margin included)
    tokens_per_s: float | None = None
    baseline_tokens_per_s: float | None = None
    baseline_error: str = ""
    seconds: float = 0.0
    trainable_params: int | None = None

    @property
    def allocated_error(self) -> float | None:
        if self.allocated_bytes and self.estimate_allocated_bytes:
            return self.estimate_allocated_bytes / self.allocated_bytes - 1
        return None


def plan_cases(models: tuple = MODELS) -> list[Case]:
    """Every case, grouped by model and method (one load each); without checkpointing first."""
    out: list[Case] = []
    for size, model, shapes, methods in models:
        for method in methods:
            # Prefix tuning feeds its prefixes as a KV cache: no gradient checkpointing (the engine refuses it).
            for ckpt in (False,) if method == "prefix" else (False, True):
                for i, (batch, seq) in enumerate(shapes):
                    first = i == 0 and not ckpt
                    out.append(Case(size, model, method, ckpt, batch, seq, baseline=first and method in BASELINES))
            if method in OFFLOAD_METHODS:  # the checkpoints in pinned host memory, at the first shape
                out.append(Case(size, model, method, True, *shapes[0], offload=True))
    return out


def recipe_for(case: Case, folder: str | Path) -> Recipe:
    """The recipe `tuitune train` would run for this case (validated by the dry-run)."""
    changes = METHODS[case.method]
    recipe = new_recipe(changes["method.type"], str(folder))
    for key, value in changes.items():
        recipe.set(key, value)
    recipe.name = "gpu-check"
    recipe.lora.target_modules = "all-linear"
    recipe.train.batch_size = case.batch
    recipe.data.cutoff_len = case.seq
    recipe.data.packing = True  # rows of exactly `seq` tokens; virtual-token methods train unpacked
    recipe.data.val_size = 0.0
    recipe.train.gradient_checkpointing = case.checkpointing
    recipe.train.offload_activations = case.offload
    recipe.train.max_steps = STEPS
    recipe.train.save_steps = 0
    recipe.train.logging_steps = 1
    recipe.train.warmup_ratio = 0.0
    return recipe


def catalog_config(model: str, tiny: bool = False) -> Any:
    """A transformers config from the catalog's entry (the model's own config.json, as published)."""
    from transformers import AutoConfig

    from tuitune.core.models.catalog import CATALOG

    values = dict(CATALOG[model])
    model_type = values.pop("model_type")
    values.pop("torch_dtype", None)
    if tiny:
        values.update(TINY)
    values.update({"pad_token_id": 0, "eos_token_id": 2, "bos_token_id": None})
    return AutoConfig.for_model(model_type, **values)


def tokenizer_for(folder: Path) -> Any:
    """A small byte-level BPE tokenizer made here (ids below every model's vocabulary): no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["tuitune checks every method on a GPU"] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.save_pretrained(folder)
    return fast


def write_random_model(model: str, folder: Path, device: str, tiny: bool = False) -> Path:
    """The architecture with random weights, initialized on `device` (fast on a GPU) and saved."""
    import torch
    from transformers import AutoModelForCausalLM

    if (folder / "config.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with torch.device(device):
        net = AutoModelForCausalLM.from_config(catalog_config(model, tiny), dtype=torch.bfloat16)
    net.save_pretrained(folder, safe_serialization=True)
    tokenizer_for(folder)
    del net
    _free(device)
    return folder


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def random_rows(vocab: int, n: int, seq: int, packed: bool, seed: int = 0) -> list[dict[str, list[int]]]:
    """n rows of `seq` random token ids, every token trained (one example per packed row)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (n, seq), generator=g).tolist()
    rows = [{"input_ids": r, "labels": list(r)} for r in ids]
    if packed:
        for r in rows:
            r["position_ids"] = list(range(seq))
    return rows


class Clock:
    """A TrainerCallback noting when each optimizer step ended (after the GPU finished it)."""

    def __new__(cls, device: str) -> Any:
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def __init__(self) -> None:
                self.ends: list[float] = []

            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if device == "cuda":
                    import torch

                    torch.cuda.synchronize()
                self.ends.append(time.perf_counter())

        return _Clock()


def tokens_per_s(ends: list[float], tokens_per_step: int) -> float | None:
    """Steps 2..N (the first one warms up kernels and the allocator)."""
    if len(ends) < 2 or ends[-1] <= ends[0]:
        return None
    return tokens_per_step * (len(ends) - 1) / (ends[-1] - ends[0])


def _peaks(device: str) -> tuple[int | None, int | None]:
    if device != "cuda":
        return None, None
    import torch

    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())


def _reset(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def engine_steps(built: Any, recipe: Recipe, case: Case, device: str) -> tuple[float | None, int | None, int | None]:
    """STEPS optimizer steps of the engine's own Trainer: (tokens/s, allocated peak, reserved peak)."""
    from transformers import PrinterCallback

    from tuitune.core.engine.arguments import training_arguments
    from tuitune.core.engine.build import uses_packing
    from tuitune.core.engine.collate import batching
    from tuitune.core.engine.trainer import StepCounters, TuituneTrainer
    from tuitune.core.runs import RunDirectory

    vocab = built.model.get_input_embeddings().weight.shape[0]
    rows = random_rows(vocab, case.batch * STEPS, case.seq, uses_packing(recipe))
    collator, packed, _ = batching(recipe, built.model, built.tokenizer.pad_token_id, rows, [], device)
    clock = Clock(device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        args = training_arguments(recipe, RunDirectory(tmp), device, has_eval=False, packed=packed)
        args.logging_strategy = "no"
        args.logging_first_step = False
        trainer = TuituneTrainer(model=built.model, args=args, train_dataset=rows, data_collator=collator,
                                 processing_class=built.tokenizer, callbacks=[clock], counters=StepCounters(),
                                 offload_activations=recipe.train.offload_activations)
        trainer.remove_callback(PrinterCallback)
        _reset(device)
        try:
            trainer.train()
            allocated, reserved = _peaks(device)
        finally:
            trainer.optimizer = None
            del trainer
            built.model.zero_grad(set_to_none=True)
            _free(device)
    return tokens_per_s(clock.ends, case.batch * case.seq), allocated, reserved


def baseline_steps(folder: Path, recipe: Recipe, case: Case, device: str) -> float | None:
    """The same steps with a plain transformers Trainer (+ PEFT for LoRA / QLoRA), no tuitune code."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        AutoModelForCausalLM,
        BitsAndBytesConfig,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if case.method == "qlora-4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
        kwargs["device_map"] = {"": 0} if cuda else "cpu"
    model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    if "device_map" not in kwargs:
        model.to(device)
    if case.method == "qlora-4bit":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if case.method != "full":
        model = get_peft_model(model, LoraConfig(r=recipe.lora.r, lora_alpha=recipe.lora.alpha, target_modules="all-linear",
                                                 lora_dropout=recipe.lora.dropout, task_type="CAUSAL_LM"))
    vocab = model.get_input_embeddings().weight.shape[0]
    rows = random_rows(vocab, case.batch * STEPS, case.seq, packed=False)

    def collate(batch: list[dict]) -> dict:
        ids = torch.tensor([r["input_ids"] for r in batch])
        return {"input_ids": ids, "labels": ids.clone()}

    clock = Clock(device)
    with tempfile.TemporaryDirectory(prefix="gpu-check-base-") as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=case.batch, max_steps=STEPS,
                                 learning_rate=recipe.train.learning_rate, bf16=cuda, use_cpu=not cuda,
                                 optim="adamw_torch_fused" if cuda else "adamw_torch", report_to="none",
                                 logging_strategy="no", save_strategy="no", disable_tqdm=True, remove_unused_columns=False)
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)
        try:
            trainer.train()
        finally:
            del trainer, model
            _free(device)
    return tokens_per_s(clock.ends, case.batch * case.seq)


def estimate_row(row: Row, case: Case, recipe: Recipe, device: str) -> None:
    from tuitune.core.memory import estimate
    from tuitune.core.models.spec import model_spec

    est = estimate(model_spec(recipe.model_path), recipe, device="cuda" if device == "cuda" else "cpu", bf16=True)
    row.estimate_allocated_bytes = est.allocated_peak_bytes
    row.estimate_total_bytes = est.train_peak_bytes


def _failure(e: BaseException) -> str:
    import torch

    if isinstance(e, torch.OutOfMemoryError):
        return "out of memory: " + str(e).splitlines()[0][:300]
    tail = traceback.format_exception(type(e), e, e.__traceback__)[-3:]
    return f"{type(e).__name__}: {e}"[:400] + " | " + " ".join(x.strip() for x in tail)[:600]


def _weak_refs(model: Any) -> list[Any]:
    """Weak references to a model and its base (a PEFT wrapper's), to check both are gone later."""
    import weakref

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return [weakref.ref(model), weakref.ref(base)]


def run_group(cases: list[Case], folder: Path, device: str, rows: list[Row], deadline: float) -> None:
    """One model load (the engine's build_model) for a method's cases; QLoRA loads again when
    checkpointing changes (peft's k-bit preparation turns it on at load time)."""
    from transformers import set_seed

    from tuitune.core.engine.arguments import check_before_loading
    from tuitune.core.engine.build import build_model

    built: Any = None
    built_ckpt: bool | None = None
    loaded: list[Any] = []  # weak references to every model loaded: all must be gone afterwards
    try:
        for case in cases:
            row = Row(case=asdict(case))
            rows.append(row)
            if time.monotonic() > deadline:
                row.status, row.error = "skipped", "time budget spent"
                continue
            start = time.perf_counter()
            recipe = recipe_for(case, folder)
            try:
                if built is None or (case.method.startswith("qlora") and built_ckpt != case.checkpointing):
                    built = None
                    _free(device)
                    check_before_loading(recipe, device)
                    set_seed(recipe.train.seed)
                    device_map = {"": 0} if device == "cuda" and recipe.method.type == "qlora" else None
                    built = build_model(recipe, device, device_map=device_map)
                    built_ckpt = case.checkpointing
                    loaded += _weak_refs(built.model)
                row.trainable_params = built.trainable_params
                estimate_row(row, case, recipe, device)
                row.tokens_per_s, row.allocated_bytes, row.reserved_bytes = engine_steps(built, recipe, case, device)
            except Exception as e:  # noqa: BLE001 - every failure is a result, with its message
                row.status, row.error = "failed", _failure(e)
                built = None
                _free(device)
            row.seconds = time.perf_counter() - start
            print(f"{case.name:42s} {row.status:7s} {_gib(row.allocated_bytes)} vs {_gib(row.estimate_allocated_bytes)} "
                  f"{_rate(row.tokens_per_s)} {row.error[:100]}", flush=True)
    finally:
        built = None
        _free(device)
    if any(ref() is not None for ref in loaded):
        # Something (a Trainer, accelerate) still holds the model: later peaks would include it.
        for row in rows[-len(cases):]:
            row.status, row.error = "failed", (row.error + " | the model is still referenced after its cases").strip(" |")
    for row in rows[-len(cases):]:
        case = Case(**row.case)
        if case.baseline and row.status == "ok" and time.monotonic() < deadline:
            try:
                row.baseline_tokens_per_s = baseline_steps(folder, recipe_for(case, folder), case, device)
            except Exception as e:  # noqa: BLE001
                row.baseline_error = _failure(e)
            print(f"{case.name:42s} baseline {_rate(row.baseline_tokens_per_s)} {row.baseline_error[:100]}", flush=True)


def _gib(n: int | None) -> str:
    return f"{n / GiB:6.2f} GiB" if n else "     - GiB"


def _rate(x: float | None) -> str:
    return f"{x:,.0f} tok/s" if x else "- tok/s"


def environment(device: str) -> dict[str, Any]:
    from importlib import metadata

    import torch

    env: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device,
                           "python": sys.version.split()[0], "torch_cuda": torch.version.cuda}
    for name in ("torch", "transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_bytes=int(props.total_memory), capability=f"{props.major}.{props.minor}")
    return env


def markdown(rows: list[Row], env: dict[str, Any]) -> str:
    libs = ", ".join(f"{k} {env.get(k)}" for k in ("torch", "transformers", "peft", "accelerate", "bitsandbytes"))
    out = [f"# tuitune GPU check: {env.get('gpu', env['device'])}, {env['date']}", "", f"{libs}; CUDA {env.get('torch_cuda')}", "",
           "| model | method | ckpt | batch x seq | allocated | estimate | error | reserved | estimate total | tok/s | "
           "plain Trainer tok/s | ratio | status |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        c = r.case
        err = f"{100 * r.allocated_error:+.1f}%" if r.allocated_error is not None else "-"
        ratio = f"{r.tokens_per_s / r.baseline_tokens_per_s:.2f}x" if r.tokens_per_s and r.baseline_tokens_per_s else "-"
        note = r.status + (f": {r.error[:80]}" if r.error else "")
        out.append(f"| {c['size']} | {c['method']} | {'on' if c['checkpointing'] else 'off'} | {c['batch']} x {c['seq']} | "
                   f"{_gib(r.allocated_bytes).strip()} | {_gib(r.estimate_allocated_bytes).strip()} | {err} | "
                   f"{_gib(r.reserved_bytes).strip()} | {_gib(r.estimate_total_bytes).strip()} | "
                   f"{_rate(r.tokens_per_s).replace(' tok/s', '')} | {_rate(r.baseline_tokens_per_s).replace(' tok/s', '')} | "
                   f"{ratio} | {note.replace('|', '/')} |")
    return "\n".join(out) + "\n"


def measure(cases: list[Case], out: Path, device: str, budget_s: float, models_dir: Path, tiny: bool = False) -> list[Row]:
    """Run the cases (grouped by model and method) and write the JSON and the table."""
    start = time.monotonic()
    deadline = start + budget_s
    rows: list[Row] = []
    env = environment(device)
    for model in dict.fromkeys(c.model for c in cases):
        mine = [c for c in cases if c.model == model]
        if time.monotonic() > deadline:
            rows += [Row(case=asdict(c), status="skipped", error="time budget spent") for c in mine]
            continue
        try:
            folder = write_random_model(model, models_dir / model.replace("/", "--"), device, tiny)
        except Exception as e:  # noqa: BLE001
            rows += [Row(case=asdict(c), status="failed", error="building the model: " + _failure(e)) for c in mine]
            continue
        for method in dict.fromkeys(c.method for c in mine):
            run_group([c for c in mine if c.method == method], folder, device, rows, deadline)
            # Written after each group: a run killed at its time limit still leaves what it measured.
            write_results(out, rows, env, start)
    write_results(out, rows, env, start)
    return rows


def write_results(out: Path, rows: list[Row], env: dict[str, Any], start: float) -> None:
    env["seconds"] = round(time.monotonic() - start, 1)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps({"environment": env, "steps": STEPS, "rows": [
        {**asdict(r), "allocated_error": r.allocated_error} for r in rows]}, indent=1))
    (out / "gpu_check.md").write_text(markdown(rows, env))


# ---------------------------------------------------------------------------- the dry run


def check_plan(cases: list[Case], gpu_bytes: int, budget_s: float) -> list[str]:
    """What would go wrong on the GPU, found without one; [] when the plan is sound."""
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    from tuitune.core.engine.arguments import check_before_loading
    from tuitune.core.engine.build import peft_config
    from tuitune.core.errors import UserError
    from tuitune.core.memory import estimate
    from tuitune.core.models.loading import quantization_config
    from tuitune.core.models.spec import model_spec

    problems: list[str] = []
    covered = {(c.method, c.checkpointing) for c in cases}
    for method in ALL:
        for ckpt in (False,) if method == "prefix" else (False, True):
            if (method, ckpt) not in covered:
                problems.append(f"{method} with checkpointing {ckpt} is not planned")
    seconds = 0.0
    for size, model, _, methods in MODELS:
        spec = model_spec(model)
        with torch.device("meta"):
            net = AutoModelForCausalLM.from_config(catalog_config(model), dtype=torch.bfloat16)
        count = sum(p.numel() for p in net.parameters())
        if abs(count - spec.total_params) > 0.01 * spec.total_params:
            problems.append(f"{size}: {count:,} parameters built, the catalog's spec says {spec.total_params:,}")
        seconds += 2 * spec.total_params / 1.5e9 + 5  # init on the GPU, save, (page-cached) loads
        for method in methods:
            mine = [c for c in cases if c.model == model and c.method == method]
            recipe = recipe_for(mine[0], model)
            if recipe.method.type not in ("full", "freeze", "qlora"):
                with torch.device("meta"):
                    adapted = peft.get_peft_model(
                        AutoModelForCausalLM.from_config(catalog_config(model), dtype=torch.bfloat16),
                        peft_config(recipe, net, Path(model), []))
                trainable = adapted.get_nb_trainable_parameters()[0]
                want = estimate(spec, recipe).trainable_params
                if abs(trainable - want) > 0.02 * want + 1000:
                    problems.append(f"{size} {method}: peft trains {trainable:,} parameters, the estimator counts {want:,}")
            if recipe.method.type == "qlora" and quantization_config(recipe, "cuda") is None:
                problems.append(f"{size} {method}: no quantization config")
            for case in mine:
                r = recipe_for(case, model)
                bad = validate(r)
                if bad:
                    problems.append(f"{case.name}: recipe: " + "; ".join(p.format() for p in bad))
                try:
                    check_before_loading(r, "cuda")
                except UserError as e:
                    problems.append(f"{case.name}: the engine refuses it: {e.message}")
                est = estimate(spec, r, device="cuda", bf16=True)
                if est.train_peak_bytes > 0.9 * gpu_bytes:
                    problems.append(f"{case.name}: needs {est.train_peak_bytes / GiB:.1f} GiB, more than 90% of the GPU")
                factor = 6 if r.method.type in ("full", "freeze") else 4  # weight gradients or not
                flops = factor * spec.total_params * case.batch * case.seq * STEPS * (1.33 if case.checkpointing else 1)
                seconds += flops / 200e12 + 3 + (8 if case.baseline else 0)  # 200 TFLOP/s reached, Trainer set-up
        del net
    if seconds > budget_s:
        problems.append(f"the plan takes about {seconds:.0f} s by this estimate, more than the {budget_s:.0f} s budget")
    print(f"plan: {len(cases)} cases, {sum(c.baseline for c in cases)} baselines, about {seconds:.0f} s on an H200-class GPU")
    return problems


def rehearse(out: Path) -> list[Row]:
    """The measuring code end to end on the CPU with tiny models of the same architectures: Qwen2
    (tied embeddings) with every method both ways and the baselines, Llama-3 (untied) with the 8B's
    methods once (Llama-3.2-1B runs the same code as both)."""
    small = MODELS[0]
    cases = plan_cases(((small[0], small[1], ((2, 32),), small[3]),))
    cases += [c for c in plan_cases(tuple((size, model, ((2, 32),), methods) for size, model, _, methods in MODELS[1:2]))
              if not c.checkpointing and not c.baseline]
    with tempfile.TemporaryDirectory(prefix="gpu-check-tiny-") as tmp:
        return measure(cases, out, "cpu", budget_s=1e9, models_dir=Path(tmp), tiny=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--dry-run", action="store_true", help="no GPU: check the plan and rehearse on the CPU")
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting new cases after this (default 450)")
    parser.add_argument("--gpu-memory-gib", type=float, default=139.0, help="the GPU's memory for the dry-run's check")
    parser.add_argument("--models-dir", type=Path, default=None, help="where the random models are saved (default: /dev/shm if it has room)")
    args = parser.parse_args(argv)
    cases = plan_cases()
    if args.dry_run:
        problems = check_plan(cases, int(args.gpu_memory_gib * GiB), args.budget_s)
        rows = rehearse(args.out)
        problems += [f"rehearsal {Case(**r.case).name}: {r.status} {r.error}" for r in rows if r.status != "ok"]
        problems += [f"rehearsal {Case(**r.case).name}: baseline {r.baseline_error}" for r in rows if r.baseline_error]
        for p in problems:
            print("problem:", p)
        print(f"dry run: {len(rows)} rehearsed, {len(problems)} problem(s); table in {args.out / 'gpu_check.md'}")
        return 1 if problems else 0
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU here: run with --dry-run to check the plan on the CPU", file=sys.stderr)
        return 2
    models_dir = args.models_dir or _models_dir()
    rows = measure(cases, args.out, "cuda", args.budget_s, models_dir)
    failed = [r for r in rows if r.status == "failed"]
    print(f"{len(rows)} cases: {sum(r.status == 'ok' for r in rows)} ok, {len(failed)} failed, "
          f"{sum(r.status == 'skipped' for r in rows)} skipped; {args.out / 'gpu_check.md'}")
    return 1 if failed else 0


def _models_dir() -> Path:
    """RAM (/dev/shm) when it holds the largest model twice over, else a temporary folder on disk."""
    import shutil

    need = 2 * 2 * 8.1e9
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > need:
        return shm / "tuitune-gpu-check"
    return Path(tempfile.gettempdir()) / "tuitune-gpu-check"


if __name__ == "__main__":
    raise SystemExit(main())
