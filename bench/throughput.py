"""Training throughput: tuitune's path against two peers, a plain transformers Trainer + PEFT LoRA
baseline and TRL's SFTTrainer.

Same model (the demo SmolLM2-135M-Instruct by default), same data (an alpaca-shaped mix of short
and long rows generated here), same LoRA settings, batch size and number of optimizer steps, in one
run. Prints non-padding tokens per second of each and the ratio to the baseline.

    pip install -e '.[bench]'     # TRL, for the SFTTrainer rows (skipped with a note without it)
    PYTHONPATH=. python bench/throughput.py [--steps 8] [--repeats 2] [--batch-size 4] [--cutoff 512]

The baseline is what a hand-written script usually does: tokenize, pad each random batch to its
longest row (DataCollatorForSeq2Seq), fp32, logits over the whole vocabulary at every position.
TRL's SFTTrainer is set up as its docs recommend for speed: packing (best-fit decreasing, which
implies padding-free batches with position ids), completion-only loss, fp32 and bf16 (the Trainer's
CPU autocast); it gets the very token ids and trained positions the other two get.
What tuitune does differently (the same engine code `tuitune train` runs):
- no padding to speak of: batches of similar length (length-grouped, seeded per epoch), or packed
  rows with position ids (no attention mask, no cross-attention);
- the output head only where a label is trained: prompt tokens (system prompt, instruction) have
  no loss, so their 49k-wide logits are not computed;
- with train.mixed_precision = "bf16" on a CPU with AMX / AVX512-BF16, CPU autocast (skipped
  elsewhere).
Timing skips the first step (allocator and thread-pool warm-up) for all runs; the runs alternate,
and medians are reported, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "the model data train token answer question example language learn write list explain short long "
    "simple step first second because however which people time world city water light system value "
    "number result change group large small good new old great high little important different"
).split()


def alpaca_like(n: int, seed: int) -> list[dict[str, str]]:
    """Rows shaped like Alpaca: short instructions, an input 40% of the time, answers from a few words
    to a few hundred (log-normal, median ~45 words), so lengths vary as in real instruction data."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(max(1, k))).capitalize() + "."

    rows = []
    for _ in range(n):
        rows.append({
            "instruction": text(int(rng.uniform(5, 20))),
            "input": text(int(rng.lognormvariate(3.0, 0.6))) if rng.random() < 0.4 else "",
            "output": text(min(300, int(rng.lognormvariate(3.8, 0.8)))),
        })
    return rows


def window_rate(points: list[tuple[float, int]]) -> float:
    """Tokens per second between the first and the last (elapsed, tokens) point."""
    (t0, n0), (t1, n1) = points[0], points[-1]
    return (n1 - n0) / (t1 - t0)


def run_baseline(model_path: str, data_path: Path, args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from tuitune.core.data import encode_examples, load_examples
    from tuitune.core.models import load_tokenizer

    tok = load_tokenizer(model_path)
    loaded = load_examples(str(data_path))
    encoded, _ = encode_examples(loaded.examples, tok, args.cutoff)
    rows = [{"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.input_ids)} for e in encoded]
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=args.rank, lora_alpha=2 * args.rank,
                                             lora_dropout=0.0, target_modules="all-linear"))
    pad = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    batches: list[tuple[int, int]] = []  # (real tokens, padded tokens) per batch, in order

    def collate(features):
        batch = pad(features)
        batches.append((int(batch["attention_mask"].sum()), int(batch["attention_mask"].numel())))
        return batch

    points: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **k):
            # The dataloader prefetches one batch: count only the batches of finished steps.
            done = sum(real for real, _ in batches[: state.global_step * a.gradient_accumulation_steps])
            points.append((time.perf_counter() - self.t0, done))

    targs = TrainingArguments(
        output_dir=str(data_path.parent / "baseline"), max_steps=args.steps, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to="none",
        disable_tqdm=True, use_cpu=True, seed=args.seed, remove_unused_columns=False,
    )
    Trainer(model=model, args=targs, train_dataset=rows, data_collator=collate, callbacks=[Clock()]).train()
    seen = batches[: args.steps]
    padded_share = 1 - sum(r for r, _ in seen) / sum(p for _, p in seen)
    return {"tokens_per_s": window_rate(points[1:]), "tokens": points[-1][1], "padding_share": padded_share}


TRL_MISSING = "TRL is not installed: SFTTrainer rows skipped (pip install -e '.[bench]' adds it)"


def trl_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("trl") is not None


def trl_version() -> str:
    from importlib.metadata import version

    return version("trl")


def run_trl(model_path: str, data_path: Path, args, precision: str) -> dict:
    """TRL's SFTTrainer: packing + padding-free + completion-only loss, same LoRA, rows and steps."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from tuitune.core.data import encode_examples, load_examples
    from tuitune.core.models import load_tokenizer

    tok = load_tokenizer(model_path)
    encoded, _ = encode_examples(load_examples(str(data_path)).examples, tok, args.cutoff)
    # Pre-tokenized: TRL keeps input_ids as given and turns completion_mask into labels (-100 elsewhere),
    # so the three runs train on the same tokens and the same positions.
    rows = Dataset.from_list([
        {"input_ids": e.input_ids, "completion_mask": [int(label != -100) for label in e.labels]} for e in encoded
    ])
    torch.manual_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    config = SFTConfig(
        output_dir=str(data_path.parent / f"trl-{precision}"), max_steps=args.steps,
        per_device_train_batch_size=args.batch_size, learning_rate=args.lr, lr_scheduler_type="constant",
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=args.seed,
        bf16=precision == "bf16", max_length=args.cutoff, packing=True, packing_strategy="bfd",
        padding_free=True, completion_only_loss=True,
    )
    points: list[tuple[float, int]] = []
    batches: list[int] = []  # real tokens per batch, in order (padding-free: every token is real)

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **k):
            points.append((time.perf_counter() - self.t0, sum(batches[: state.global_step])))

    trainer = SFTTrainer(
        model=model, args=config, train_dataset=rows, processing_class=tok, callbacks=[Clock()],
        peft_config=LoraConfig(task_type="CAUSAL_LM", r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                               target_modules="all-linear"),
    )
    collate = trainer.data_collator  # TRL refuses a custom collator with padding-free: wrap its own to count

    def counting(features):
        batch = collate(features)
        mask = batch.get("attention_mask")
        batches.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch

    trainer.data_collator = counting
    trainer.train()
    return {"tokens_per_s": window_rate(points[1:]), "tokens": points[-1][1]}


# tuitune's recipes for the same job: (label, data.packing, train.mixed_precision).
TRL_LABELS = {"no": "TRL SFTTrainer fp32, packed, padding-free",
              "bf16": "TRL SFTTrainer bf16 autocast, packed, padding-free"}
VARIANTS = [
    ("tuitune fp32, length-grouped batches", False, "no"),
    ("tuitune bf16 autocast, packed rows", True, "bf16"),
]


def run_tuitune(model_path: str, data_path: Path, args, packing: bool, precision: str, tag: str) -> dict:
    """tuitune's engine (the trainer process's code, in this process) on the same data and steps."""
    import tomli_w

    from tuitune.core.engine.prepare import prepare_run
    from tuitune.core.engine.session import train_run
    from tuitune.core.recipe import load_recipe
    from tuitune.core.runs import RunDirectory

    recipe_file = data_path.parent / f"{tag}.toml"
    recipe_file.write_text(tomli_w.dumps({
        "name": tag,
        "model": {"name_or_path": model_path},
        "method": {"type": "lora"},
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.0, "target_modules": "all-linear"},
        "data": {"path": str(data_path), "cutoff_len": args.cutoff, "packing": packing},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                  "lr_scheduler": "constant", "warmup_ratio": 0.0, "logging_steps": 1, "save_steps": 0,
                  "seed": args.seed, "mixed_precision": precision},
        # The peers generate nothing during training: no sample answers here either (a run logs
        # what they cost: "sample answers at step N: ... s, P% of the time since the last samples").
        "eval": {"sample_every": 0},
        "output": {"runs_dir": str(data_path.parent / "runs")},
    }))
    recipe, problems = load_recipe(recipe_file)
    assert not problems, problems
    run = prepare_run(recipe)
    if train_run(run.path) != 0:
        raise SystemExit(f"tuitune run failed, see {run.path}")
    events = RunDirectory(run.path).events()
    steps = [e for e in events if e["type"] == "step"]
    points = [(e["elapsed_s"], e["tokens"]) for e in steps]
    precision_used = next(e for e in events if e["type"] == "start").get("precision")
    return {"tokens_per_s": window_rate(points[1:]), "tokens": points[-1][1], "precision": precision_used}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--cutoff", type=int, default=512)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2,
                   help="alternate the runs this many times and report medians (the machine may be shared)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from tuitune.core.models import resolve_model
    from tuitune.core.models.precision import cpu_bf16_native

    bf16 = cpu_bf16_native()
    variants = [v for v in VARIANTS if v[2] != "bf16" or bf16]
    peers = [(TRL_LABELS[p], p) for p in ("no", "bf16") if p != "bf16" or bf16] if trl_available() else []
    if not peers:
        print(TRL_MISSING, file=sys.stderr)
    model_path = str(resolve_model(args.model).path)
    rounds: dict[str, list[dict]] = {"baseline": [], **{label: [] for label, _ in peers},
                                     **{label: [] for label, _, _ in variants}}
    with tempfile.TemporaryDirectory(prefix="tuitune-bench-") as tmp:
        data_path = Path(tmp) / "alpaca_like.jsonl"
        with open(data_path, "w") as f:
            for row in alpaca_like(args.rows, args.seed):
                f.write(json.dumps(row) + "\n")
        for i in range(args.repeats):
            work = Path(tmp) / f"round{i}"
            work.mkdir()
            (work / data_path.name).write_bytes(data_path.read_bytes())
            rounds["baseline"].append(run_baseline(model_path, work / data_path.name, args))
            for label, precision in peers:
                rounds[label].append(run_trl(model_path, work / data_path.name, args, precision))
            for k, (label, packing, precision) in enumerate(variants):
                rounds[label].append(run_tuitune(model_path, work / data_path.name, args, packing, precision, f"v{k}"))
            print(f"round {i + 1}: " + ", ".join(f"{name} {r[-1]['tokens_per_s']:.1f}" for name, r in rounds.items()),
                  file=sys.stderr)
    median = {name: statistics.median(r["tokens_per_s"] for r in rs) for name, rs in rounds.items()}
    base = median["baseline"]
    figures = {
        "model": args.model, "steps": args.steps, "batch_size": args.batch_size, "cutoff_len": args.cutoff,
        "threads": torch.get_num_threads(), "rounds": args.repeats,
        "padding_share_baseline": rounds["baseline"][0]["padding_share"],
        "tokens_per_s": median, "ratio": {name: v / base for name, v in median.items() if name != "baseline"},
        "per_round": {name: [r["tokens_per_s"] for r in rs] for name, rs in rounds.items()},
        "trl": trl_version() if peers else TRL_MISSING,
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"model {args.model}, {args.steps} steps of batch {args.batch_size}, cutoff {args.cutoff}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} alternating rounds"
          + (f", TRL {trl_version()}" if peers else ""))
    print(f"{'baseline: Trainer + PEFT LoRA, fp32, padded random batches':58s} {base:7.1f} non-padding tokens/s "
          f"({figures['padding_share_baseline']:.0%} of computed tokens were padding)")
    if not peers:
        print(TRL_MISSING)
    for label in [label for label, _ in peers] + [label for label, _, _ in variants]:
        print(f"{label:58s} {median[label]:7.1f} non-padding tokens/s  ratio {median[label] / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
