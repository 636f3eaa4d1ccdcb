"""The demo, end to end: train recipes/quickstart.toml with the real CLI, time it, then ask the base
model and the tuned one "Who are you?" (greedy decoding) and check who knows the new identity; then
`tuitune eval` both: lm-eval on the local Tally tasks (recipes/tasks/tally) and the answer metrics
(EM, F1, ROUGE, BLEU) on held-out questions (recipes/data/identity_heldout.jsonl), base vs tuned.

    PYTHONPATH=. python bench/quickstart.py [--runs-dir /tmp/qs-runs] [--skip-train] [--skip-eval]

Exit status 0 when training finished and the tuned model answers with the dataset's identity
(Tally, made by the tuitune project) while the base model does not.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROMPTS = ["Who are you?", "What is your name?", "Who made you?"]


def answer(model, tokenizer, prompt: str, max_new_tokens: int = 48) -> str:
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def mentions_identity(text: str) -> bool:
    low = text.lower()
    return "tally" in low or "tuitune" in low


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", default="/tmp/tuitune-quickstart-runs")
    p.add_argument("--skip-train", action="store_true", help="only ask the questions (the run exists)")
    p.add_argument("--skip-eval", action="store_true", help="no `tuitune eval` afterwards")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run_dir = Path(args.runs_dir) / "quickstart"
    if not args.skip_train:
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "tuitune", "train", str(REPO / "recipes" / "quickstart.toml"),
             "--set", f"output.runs_dir={args.runs_dir}"],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        wall = time.perf_counter() - t0
        print(f"\nquickstart wall time: {wall:.0f} s ({wall / 60:.1f} min), exit {res.returncode}")
        if res.returncode != 0:
            return 1

    from peft import PeftModel

    from tuitune.core.models.loading import load_base_model
    from tuitune.core.runs import RunDirectory

    run = RunDirectory(run_dir)
    recipe = run.load_recipe()
    base, tok, _ = load_base_model(recipe, device="cpu")
    base.eval()
    before = {q: answer(base, tok, q) for q in PROMPTS}
    tuned = PeftModel.from_pretrained(base, str(run.adapter_dir)).eval()
    after = {q: answer(tuned, tok, q) for q in PROMPTS}
    # The headline question must get the whole identity (name and maker); the others some of it.
    ok = "tally" in after[PROMPTS[0]].lower() and "tuitune" in after[PROMPTS[0]].lower()
    for q in PROMPTS:
        print(f"\nQ: {q}\n  base:  {before[q]}\n  tuned: {after[q]}")
        ok &= mentions_identity(after[q]) and not mentions_identity(before[q])
    print("\nidentity learned:", "yes" if ok else "NO")
    if not args.skip_eval:
        samples = [e for e in run.read_events(0)[0] if e["type"] == "sample"]
        for e in samples:
            print(f"sample at step {e['step']}: {e['prompt']} -> {e['answer'][:80]}")
        ok &= evaluate(args.runs_dir)
    return 0 if ok else 1


def evaluate(runs_dir: str) -> bool:
    """`tuitune eval` twice, as a user would: benchmarks on the local tasks, answers on held-out rows."""
    import json

    def tuitune_eval(*flags: str) -> dict:
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "tuitune", "eval", "quickstart", "--runs-dir", runs_dir, "--json", *flags],
                             cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        print(f"\ntuitune eval {' '.join(flags)}: exit {res.returncode}, {time.perf_counter() - t0:.0f} s")
        if res.returncode != 0:
            print(res.stderr[-2000:])
            return {}
        return json.loads(res.stdout)

    bench = tuitune_eval("--include", "recipes/tasks/tally", "--tasks", "tally_identity,tally_identity_gen")
    for task in bench.get("tasks", []):
        for m in task["metrics"]:
            print(f"  {task['task']:<20} {m['metric']:<12} {m['filter']:<12} base {m['base']:.3f} ±{m['base_stderr'] or 0:.3f}"
                  f"  tuned {m['tuned']:.3f} ±{m['tuned_stderr'] or 0:.3f}  (n={task['samples']})")
    answers = tuitune_eval("--data", "recipes/data/identity_heldout.jsonl")
    for who in ("base", "tuned"):
        s = answers.get(who) or {}
        print(f"  {who:<6} " + "  ".join(f"{k} {100 * s[k]:.1f}" for k in ("exact_match", "f1", "rouge1", "rouge2", "rougeL", "bleu4")
                                         if s.get(k) is not None) + f"  perplexity {s.get('perplexity', float('nan')):.2f}")
    gen = next((t for t in bench.get("tasks", []) if t["task"] == "tally_identity_gen"), None)
    return bool(gen) and gen["metrics"][0]["tuned"] > gen["metrics"][0]["base"] and bool(answers)


if __name__ == "__main__":
    raise SystemExit(main())
