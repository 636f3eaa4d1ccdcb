"""Peak memory of merging a LoRA adapter: peft's merge_and_unload (the whole model loaded) against
tuitune's shard-by-shard merge, on the demo model (SmolLM2-135M-Instruct, float32) split into shards.

    PYTHONPATH=. python bench/merge_memory.py [--shard-size 100MB] [--rank 16]

Each way runs in a fresh child process; the figure is its peak resident set (VmRSS sampled every
2 ms) above its RSS after importing torch, transformers and peft (the same for both), so it is the
merge's own memory. The adapter is a random LoRA on every linear layer (the merge does the same work
whatever the values).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = r"""
import json, sys, threading, time
import torch, transformers, peft, safetensors.torch  # imported before the baseline is taken

def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

base = rss_kib()
peak = [base]
stop = threading.Event()

def sample():  # the imports' own transient peak must not count, so ru_maxrss is not used
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.002)

threading.Thread(target=sample, daemon=True).start()
way, sharded, adapter, out = sys.argv[1:5]
if way == "peft":
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sharded), adapter).merge_and_unload()
    model.save_pretrained(out)
else:
    from pathlib import Path
    from tuitune.core.shard_merge import merge_by_shard
    merge_by_shard(Path(adapter), Path(sharded), Path(out), dtype_name="float32")
stop.set()
peak[0] = max(peak[0], rss_kib())
print(json.dumps({"baseline_kib": base, "peak_kib": peak[0]}))
"""


def prepare(tmp: Path, shard_size: str, rank: int) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuitune.core.models import resolve_model
    from tuitune.core.recipe import DEMO_MODEL

    source = resolve_model(DEMO_MODEL).path
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    sharded = tmp / "sharded"
    model.save_pretrained(sharded, max_shard_size=shard_size)
    AutoTokenizer.from_pretrained(source).save_pretrained(sharded)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", init_lora_weights=False))
    adapter = tmp / "adapter"
    peft_model.save_pretrained(adapter)
    return sharded, adapter


def run_child(way: str, sharded: Path, adapter: Path, out: Path) -> dict:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run([sys.executable, "-c", CHILD, way, str(sharded), str(adapter), str(out)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shard-size", default="100MB")
    p.add_argument("--rank", type=int, default=16)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tuitune-merge-bench-") as tmp:
        tmp_path = Path(tmp)
        sharded, adapter = prepare(tmp_path, args.shard_size, args.rank)
        shards = sorted(sharded.glob("*.safetensors"))
        biggest = max(f.stat().st_size for f in shards)
        total = sum(f.stat().st_size for f in shards)
        print(f"demo model, float32: {total / 2**20:.0f} MiB in {len(shards)} shards (largest {biggest / 2**20:.0f} MiB); "
              f"adapter r={args.rank}: {(adapter / 'adapter_model.safetensors').stat().st_size / 2**20:.1f} MiB")
        rows = {}
        for way in ("peft", "shards"):
            fig = run_child(way, sharded, adapter, tmp_path / f"out-{way}")
            rows[way] = (fig["peak_kib"] - fig["baseline_kib"]) / 1024
            print(f"{way:>7}: peak RSS {fig['peak_kib'] / 1024:.0f} MiB, {rows[way]:.0f} MiB above the imports")
        print(f"shard by shard uses {rows['shards'] / rows['peft']:.2f}x the memory of peft's merge_and_unload")
    print(f"(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
