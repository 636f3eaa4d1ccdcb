"""Training throughput: tuitune's path against a plain transformers Trainer + PEFT LoRA baseline.

Same model (the demo SmolLM2-135M-Instruct by default), same data (an alpaca-shaped mix of short
and long rows generated here), same LoRA settings, batch size and number of optimizer steps, in one
run. Prints non-padding tokens per second of each and the ratio.

    PYTHONPATH=. python bench/throughput.py [--steps 12] [--batch-size 4] [--cutoff 512]

The baseline is what a hand-written script usually does: tokenize, pad each random batch to its
longest row (DataCollatorForSeq2Seq), no packing. tuitune packs rows into cutoff-length sequences
without padding or cross-attention (position ids), so every token computed is a real one.
Timing skips the first step (allocator and thread-pool warm-up) for both.
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


def run_tuitune(model_path: str, data_path: Path, args) -> dict:
    import tomli_w

    from tuitune.core.engine.prepare import prepare_run
    from tuitune.core.engine.session import train_run
    from tuitune.core.recipe import load_recipe
    from tuitune.core.runs import RunDirectory

    recipe_file = data_path.parent / "tuitune.toml"
    recipe_file.write_text(tomli_w.dumps({
        "name": "bench",
        "model": {"name_or_path": model_path},
        "method": {"type": "lora"},
        "lora": {"r": args.rank, "alpha": 2 * args.rank, "dropout": 0.0, "target_modules": "all-linear"},
        "data": {"path": str(data_path), "cutoff_len": args.cutoff, "packing": True},
        "train": {"max_steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.lr,
                  "lr_scheduler": "constant", "warmup_ratio": 0.0, "logging_steps": 1, "save_steps": 0, "seed": args.seed},
        "output": {"runs_dir": str(data_path.parent / "runs")},
    }))
    recipe, problems = load_recipe(recipe_file)
    assert not problems, problems
    run = prepare_run(recipe)
    if train_run(run.path) != 0:
        raise SystemExit(f"tuitune run failed, see {run.path}")
    steps = [e for e in RunDirectory(run.path).events() if e["type"] == "step"]
    points = [(e["elapsed_s"], e["tokens"]) for e in steps]
    return {"tokens_per_s": window_rate(points[1:]), "tokens": points[-1][1], "padding_share": 0.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct")
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--cutoff", type=int, default=512)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2,
                   help="alternate baseline and tuitune this many times and report medians (the machine may be shared)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from tuitune.core.models import resolve_model

    model_path = str(resolve_model(args.model).path)
    bases, ours_ = [], []
    with tempfile.TemporaryDirectory(prefix="tuitune-bench-") as tmp:
        data_path = Path(tmp) / "alpaca_like.jsonl"
        with open(data_path, "w") as f:
            for row in alpaca_like(args.rows, args.seed):
                f.write(json.dumps(row) + "\n")
        for i in range(args.repeats):
            work = Path(tmp) / f"round{i}"
            work.mkdir()
            (work / data_path.name).write_bytes(data_path.read_bytes())
            bases.append(run_baseline(model_path, work / data_path.name, args))
            ours_.append(run_tuitune(model_path, work / data_path.name, args))
            print(f"round {i + 1}: baseline {bases[-1]['tokens_per_s']:.1f} tok/s, tuitune {ours_[-1]['tokens_per_s']:.1f} tok/s",
                  file=sys.stderr)
    base = {**bases[0], "tokens_per_s": statistics.median(b["tokens_per_s"] for b in bases),
            "rounds": [b["tokens_per_s"] for b in bases]}
    ours = {**ours_[0], "tokens_per_s": statistics.median(o["tokens_per_s"] for o in ours_),
            "rounds": [o["tokens_per_s"] for o in ours_]}
    ratio = ours["tokens_per_s"] / base["tokens_per_s"]
    figures = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "cutoff_len": args.cutoff,
               "threads": torch.get_num_threads(), "baseline": base, "tuitune": ours, "ratio": ratio}
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(f"model {args.model}, {args.steps} steps of batch {args.batch_size}, cutoff {args.cutoff}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} alternating rounds")
    print(f"baseline (Trainer + PEFT LoRA, padded batches): {base['tokens_per_s']:8.1f} non-padding tokens/s "
          f"({base['padding_share']:.0%} of computed tokens were padding)")
    print(f"tuitune  (packed, padding-free):                {ours['tokens_per_s']:8.1f} non-padding tokens/s")
    print(f"ratio: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
