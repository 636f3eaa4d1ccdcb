"""Everything the trainer needs from a recipe's data section, in one call."""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from tuitune.core.data.dataset_info import resolve_entry, select_rows
from tuitune.core.data.encoding import encode_examples
from tuitune.core.data.loader import load_examples
from tuitune.core.data.long_rows import long_row_problems, long_rows_summary
from tuitune.core.data.packing import pack
from tuitune.core.data.records import DataProblem, Encoded, PreparedData
from tuitune.core.data.stats import length_stats
from tuitune.core.data.templates import chat_template_for
from tuitune.core.data.tool_rendering import tools_note
from tuitune.core.errors import UserError

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe


def split_indices(n: int, val_size: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, eval) indices in source order; the same seed and n always give the same split."""
    if val_size <= 0 or n == 0:
        return list(range(n)), []
    n_eval = max(1, round(n * val_size))
    if n_eval >= n:
        raise UserError(
            f"data.val_size = {val_size} leaves no rows to train on ({n} usable rows)", "lower data.val_size or add rows"
        )
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[:n_eval])
    return [i for i in range(n) if i not in held], sorted(held)


def prepare_training_data(recipe: Recipe, tokenizer: Any, cancel: threading.Event | None = None) -> PreparedData:
    """Load, normalize, encode (prompt masked unless data.train_on_prompt), split (data.val_size,
    seeded by train.seed) and, when data.packing, pack the train split. A dataset_info.json entry
    (data.dataset) has its split and num_samples applied (seeded by train.seed) before encoding.

    Rows with problems are reported in `problems` and left out where unusable; examples with
    nothing left to train after truncation are dropped with a problem. UserError when the source
    cannot be read or no usable row remains.
    """
    d = recipe.data
    path = recipe.data_path
    loaded = load_examples(path, d.format, d.columns, d.max_samples, d.split, cancel=cancel, dataset=d.dataset, text_split=d.text_split)
    problems = list(loaded.problems)
    notes = list(loaded.notes)
    if not loaded.examples:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise UserError(f"{path}: no usable rows ({loaded.total_rows} read){first}", f"inspect it with: tuitune data preview {path}")
    examples = loaded.examples
    if d.dataset:
        entry = resolve_entry(path, d.dataset)
        examples = select_rows(examples, entry.split, entry.num_samples, recipe.train.seed)
        if len(examples) != len(loaded.examples):
            notes.append(
                f"dataset '{entry.name}': {len(examples):,} of {len(loaded.examples):,} usable rows "
                f"(split {entry.split}, num_samples {entry.num_samples or 'all'})"
            )
        if not examples:
            raise UserError(f"dataset '{entry.name}': split '{entry.split}' keeps no rows", "widen the split in dataset_info.json")
    jinja, template_name = chat_template_for(tokenizer, d.template)
    note = tools_note(examples, tokenizer, jinja)
    if note:
        notes.append(note)
    encoded, render_problems = encode_examples(
        examples, tokenizer, d.cutoff_len, d.train_on_prompt, d.template, d.system, chunk_long_text=d.chunk_long_text
    )
    problems += render_problems
    summary = long_rows_summary(encoded, d.cutoff_len)
    if summary:
        notes.append(summary)
    kept: list[Encoded] = []
    for enc in encoded:
        if enc.trained_tokens == 0:
            why = (
                f"nothing left to train after truncating to cutoff_len = {d.cutoff_len} ({enc.full_length} tokens)"
                if enc.truncated
                else "no tokens to train (no assistant reply)"
            )
            problems.append(DataProblem(enc.line, why + "; row dropped", enc.file))
        else:
            kept.append(enc)
    problems += long_row_problems(kept, d.cutoff_len)  # a dropped row has its own problem above
    if not kept:
        raise UserError(
            f"{path}: no example has tokens to train ({len(encoded)} encoded)",
            "raise data.cutoff_len, or check that rows have assistant replies",
        )
    train_idx, eval_idx = split_indices(len(kept), d.val_size, recipe.train.seed)
    train = [kept[i] for i in train_idx]
    evals = [kept[i] for i in eval_idx]
    stats = length_stats([e.full_length for e in encoded], d.cutoff_len)
    rows = pack(train, d.cutoff_len) if d.packing else train
    return PreparedData(
        train=rows,
        eval=evals,
        stats=stats,
        problems=problems,
        format=loaded.format,
        rows=loaded.total_rows,
        examples=len(kept),
        dropped=len(render_problems) + len(encoded) - len(kept),
        truncated=sum(1 for e in kept if e.truncated),
        train_tokens=sum(len(e.input_ids) for e in train),
        trained_tokens=sum(e.trained_tokens for e in train),
        packed=bool(d.packing),
        template=template_name,
        notes=notes,
    )
