"""What the chunked output head saves: the longest sequence that fits a card, before and after.

    PYTHONPATH=. python bench/head_memory.py                       # Llama-3-8B QLoRA on 24 GB
    PYTHONPATH=. python bench/head_memory.py --card 48GB --recipe recipes/qwen2.5-7b-lora-48gb.toml

"Before" is the estimator with the model's own loss over full logits (`chunked_head=False`, what
other trainers do); "after" is the engine's chunked head (tuitune.core.engine.head_loss). Both are
the estimator's figures (tuitune.core.memory), searched beyond the model's context length so the
head's effect shows; `tests/core/test_memory_head.py` holds the head's model to the engine's tensors.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitune.core.memory.fit_plan import max_seq_len  # noqa: E402
from tuitune.core.memory.head import head_memory  # noqa: E402
from tuitune.core.memory.setup import resolve_setup  # noqa: E402
from tuitune.core.memory.targets import card_target  # noqa: E402
from tuitune.core.models.spec import model_spec  # noqa: E402
from tuitune.core.recipe import load_recipe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/llama3-8b-qlora-24gb.toml")
    ap.add_argument("--model", default="llama-3-8b", help="catalog name or config (the recipe's model is gated)")
    ap.add_argument("--card", default="24GB")
    args = ap.parse_args()
    recipe, problems = load_recipe(args.recipe)
    if problems:
        sys.exit(f"{args.recipe}: {problems[0]}")
    spec = model_spec(args.model)
    available = card_target(args.card).available_bytes
    print(f"{spec.name} {recipe.method.type} on {args.card} ({available / 2**30:.1f} GiB), vocabulary {spec.vocab_size}, "
          f"context {spec.max_position_embeddings}")
    s = resolve_setup(recipe, batch_size=1, seq_len=8192)
    hb = head_memory(spec, replace(s, chunked_head=False), 8192, 8192)
    ha = head_memory(spec, s, 8192, 8192)
    print(f"head and loss at 8192 trained tokens: {max(hb.forming, hb.backward) / 2**30:.2f} GiB with full logits, "
          f"{max(ha.forming, ha.backward) / 2**30:.2f} GiB chunked")
    print(f"{'checkpointing':>13s} {'batch':>5s} {'longest before':>15s} {'after':>7s} {'ratio':>6s}")
    # "on+offload": train.offload_activations, the checkpoints in pinned host memory.
    for gc, offload in ((True, True), (True, False), (False, False)):
        for batch in (1, 2):
            s = replace(resolve_setup(recipe, batch_size=batch), gradient_checkpointing=gc, offload_activations=offload)
            plain = replace(s, chunked_head=False)
            before = max_seq_len(spec, plain, available, 1 << 20)
            after = max_seq_len(spec, s, available, 1 << 20)
            label = "on+offload" if offload else "on" if gc else "off"
            print(f"{label:>13s} {batch:5d} {before:15d} {after:7d} {after / max(1, before):5.2f}x")


if __name__ == "__main__":
    main()
