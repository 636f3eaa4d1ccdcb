"""Did the fine-tuning work? Perplexity and answer quality of the base and the tuned model.

On the run's eval split (the same rows the trainer held out: `prepare_training_data`, split by
data.val_size and seeded by train.seed) or on a file given by the user:
- perplexity: exp of the mean negative log-likelihood of the trained tokens (the assistant
  replies, as the trainer's labels mark them), for base and tuned;
- exact match, token F1, ROUGE-1/2/L and BLEU-4 of greedy answers to each example's last
  assistant turn (`tuitune.core.text_metrics` says how each is computed, Chinese included).
Benchmarks (MMLU, C-Eval, ...) are `tuitune.core.benchmarks`, through lm-eval.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.progress import ProgressFn, report
from tuitune.core.text_metrics import NORMALIZATION, SEGMENTATION, AnswerScores, mean_scores, score_answer

REPORT_FILE = "report.json"


def perplexity_from(nll_sum: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per token); inf when the mean overflows, nan with no tokens."""
    if tokens == 0:
        return math.nan
    mean = nll_sum / tokens
    return math.exp(mean) if mean < 700 else math.inf


# ------------------------------------------------------------------------------ the data


@dataclass
class EvalItem:
    """One evaluation example: tokens for perplexity, and (for chats) the question and its answer."""

    input_ids: list[int]
    labels: list[int]
    line: int
    file: str | None = None
    context: list[dict[str, str]] | None = None  # the turns before the last reply (None: plain text)
    reference: str | None = None  # the last assistant reply


def eval_items(recipe: Any, tokenizer: Any, data: str | None = None, max_samples: int = 0, cancel: threading.Event | None = None) -> tuple[list[EvalItem], str]:
    """(items, description of where they came from): the run's eval split, or `data` read like the run's data."""
    from tuitune.core.data import encode_examples, load_examples, prepare_training_data

    d = recipe.data
    if data is None:
        if d.val_size <= 0:
            raise UserError(
                f"run '{recipe.name}' has no eval split: data.val_size = 0",
                "evaluate on a file instead: tuitune eval RUN --data FILE",
            )
        prepared = prepare_training_data(recipe, tokenizer, cancel=cancel)
        encoded = prepared.eval
        loaded = load_examples(
            recipe.data_path, d.format, d.columns, d.max_samples, d.split, cancel=cancel, dataset=d.dataset, text_split=d.text_split
        )
        source = f"eval split of {recipe.data_path} (data.val_size = {d.val_size}, seed {recipe.train.seed})"
    else:
        if not Path(data).exists():
            raise UserError(f"--data {data}: no such file or folder", "give a .jsonl/.json/.csv/.parquet/.txt file")
        loaded = load_examples(data, d.format, d.columns, max_samples, "train", cancel=cancel, text_split=d.text_split)
        if not loaded.examples:
            first = f": {loaded.problems[0]}" if loaded.problems else ""
            raise UserError(f"{data}: no usable rows{first}", f"inspect it with: tuitune data preview {data}")
        encoded, _ = encode_examples(loaded.examples, tokenizer, d.cutoff_len, d.train_on_prompt, d.template, d.system)
        source = str(data)
    examples = {(e.file, e.line): e for e in loaded.examples}
    items: list[EvalItem] = []
    for enc in encoded:
        if not any(label != -100 for label in enc.labels):
            continue
        item = EvalItem(list(enc.input_ids), list(enc.labels), enc.line, enc.file)
        example = examples.get((enc.file, enc.line))
        messages = example.messages if example is not None else None
        if messages and messages[-1].get("role") == "assistant" and len(messages) > 1:
            item.context = [dict(m) for m in messages[:-1]]
            item.reference = messages[-1]["content"]
        items.append(item)
        if max_samples and len(items) >= max_samples:
            break
    if not items:
        raise UserError(f"no examples to evaluate in the {source}", "check the data with: tuitune data preview FILE")
    return items, source


# ------------------------------------------------------------------------------ perplexity


def negative_log_likelihood(
    model: Any,
    items: list[EvalItem],
    *,
    batch_size: int = 8,
    pad_id: int = 0,
    cancel: threading.Event | None = None,
    on_batch: Any = None,
) -> tuple[float, int]:
    """(sum of -log p over labelled tokens, number of labelled tokens), batched with right padding.

    Prompt-learning models return logits for their virtual tokens too; those come first, so the
    last L positions are always the inputs' own.
    """
    import torch
    import torch.nn.functional as F

    device = next(p.device for p in model.parameters())
    order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))  # less padding
    total, tokens = 0.0, 0
    for start in range(0, len(order), batch_size):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        batch = [items[i] for i in order[start : start + batch_size]]
        width = max(len(it.input_ids) for it in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, it in enumerate(batch):
            n = len(it.input_ids)
            ids[row, :n] = torch.tensor(it.input_ids)
            labels[row, :n] = torch.tensor(it.labels)
            mask[row, :n] = 1
        ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
        with torch.inference_mode():
            logits = model(input_ids=ids, attention_mask=mask).logits[:, -width:, :].float()
        shift_logits, shift_labels = logits[:, :-1, :], labels[:, 1:]
        nll = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
        total += nll.item()
        tokens += int((shift_labels != -100).sum().item())
        if on_batch is not None:
            on_batch(min(start + batch_size, len(order)), len(order))
    return total, tokens


class Cancelled(Exception):
    """The caller's cancel event was set; the work stopped between steps."""


# ------------------------------------------------------------------------------ the report


@dataclass
class ModelScores:
    perplexity: float
    loss: float  # mean negative log-likelihood per token
    # Means over generated answers, 0..1; None without references (plain text data).
    exact_match: float | None
    f1: float | None
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None
    bleu4: float | None = None


@dataclass
class SamplePrediction:
    line: int
    prompt: str
    reference: str
    base: str
    tuned: str
    base_scores: AnswerScores
    tuned_scores: AnswerScores


@dataclass
class EvalReport:
    run: str
    method: str
    base_model: str
    data: str
    examples: int
    tokens: int
    answered: int  # examples with a reference answer that were generated
    base: ModelScores
    tuned: ModelScores
    samples: list[SamplePrediction] = field(default_factory=list)
    max_new_tokens: int = 64
    normalization: str = NORMALIZATION
    segmentation: str = SEGMENTATION
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    path: str = ""

    def to_json(self) -> str:
        return json.dumps(json_safe(asdict(self)), indent=2, ensure_ascii=False)


def json_safe(value: Any) -> Any:
    """JSON has no NaN/Infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


# ------------------------------------------------------------------------------ the whole evaluation


def evaluate_run(
    run_path: str | Path,
    *,
    data: str | None = None,
    max_samples: int = 100,
    max_new_tokens: int = 64,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    device: str | None = None,
    write: bool = True,
) -> EvalReport:
    """Evaluate base and tuned on the run's eval split (or `data`) and write eval/report.json.

    max_samples caps the examples scored (0 = all); only examples ending in an assistant reply
    are answered for exact match and F1. Checks the run before loading anything.
    """
    from tuitune.core.chat import ChatSession, GenerationSettings
    from tuitune.core.runs import open_finished_run
    from tuitune.core.tuned import load_base_for, load_run_model

    start = time.perf_counter()
    run = open_finished_run(run_path)
    if data is None and run.recipe.data.val_size <= 0:
        raise UserError(
            f"run '{run.name}' has no eval split: data.val_size = 0", "evaluate on a file instead: tuitune eval RUN --data FILE"
        )
    if data is not None and not Path(data).exists():
        raise UserError(f"--data {data}: no such file or folder", "give a .jsonl/.json/.csv/.parquet/.txt file")
    cancel = cancel or threading.Event()
    report(progress, "load", f"loading {run.name} ({run.method})")
    tuned = load_run_model(run, device)
    report(progress, "data", "preparing the evaluation examples")
    items, source = eval_items(run.recipe, tuned.tokenizer, data, max_samples, cancel)
    answerable = [it for it in items if it.reference is not None]
    settings = GenerationSettings(temperature=0, max_new_tokens=max_new_tokens)
    pad_id = tuned.tokenizer.pad_token_id if tuned.tokenizer.pad_token_id is not None else 0
    notes: list[str] = []
    if not answerable:
        notes.append("no example ends with an assistant reply (plain text data): exact match and F1 not computed")

    def score(session: ChatSession, who: str, use_adapter: bool) -> tuple[float, int, list[str]]:
        import contextlib

        model = session.loaded.model
        ctx = model.disable_adapter() if not use_adapter and session.loaded.kind == "adapter" else contextlib.nullcontext()
        with ctx:
            nll, tokens = negative_log_likelihood(
                model,
                items,
                pad_id=pad_id,
                cancel=cancel,
                on_batch=lambda d, t: report(progress, f"{who} perplexity", f"{who}: perplexity {d}/{t}", d, t),
            )
        answers = []
        for i, it in enumerate(answerable):
            if cancel.is_set():
                raise Cancelled()
            report(progress, f"{who} answers", f"{who}: answering {i + 1}/{len(answerable)}", i, len(answerable))
            answers.append(session.reply(it.context or [], settings, cancel, use_adapter=use_adapter).strip())
        return nll, tokens, answers

    if run.method == "qlora":
        bits = run.recipe.quantization.bits
        notes.append(f"qlora run: the base is the {bits}-bit quantized base the adapter was trained on (adapter switched off)")
    session = ChatSession(tuned)
    tuned_nll, tokens, tuned_answers = score(session, "tuned", True)
    if tuned.kind == "adapter":
        base_nll, _, base_answers = score(session, "base", False)
    else:
        notes.append(f"{run.method} run: the base model was loaded separately after the tuned one was released")
        del session, tuned
        free_memory()
        report(progress, "load", f"loading the base model {run.recipe.model.name_or_path}")
        base_session = ChatSession(load_base_for(run, device))
        base_nll, _, base_answers = score(base_session, "base", True)

    samples = [
        SamplePrediction(
            line=it.line,
            prompt=(it.context or [{}])[-1].get("content", ""),
            reference=it.reference or "",
            base=b,
            tuned=t,
            base_scores=score_answer(b, it.reference or ""),
            tuned_scores=score_answer(t, it.reference or ""),
        )
        for it, b, t in zip(answerable, base_answers, tuned_answers, strict=True)
    ]
    result = EvalReport(
        run=run.name,
        method=run.method,
        base_model=run.recipe.model.name_or_path,
        data=source,
        examples=len(items),
        tokens=tokens,
        answered=len(samples),
        base=_scores(base_nll, tokens, samples, "base"),
        tuned=_scores(tuned_nll, tokens, samples, "tuned"),
        samples=samples,
        max_new_tokens=max_new_tokens,
        notes=notes,
        seconds=round(time.perf_counter() - start, 2),
    )
    if write:
        save_report(result, run.eval_dir / REPORT_FILE)
    report(progress, "done", f"evaluated {len(items)} examples in {result.seconds:.1f} s")
    return result


def save_report(result: Any, path: Path) -> None:
    """Write result.to_json() to path at once (temp file + rename) and set result.path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result.path = str(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(result.to_json() + "\n", encoding="utf-8")
    tmp.replace(path)


def _scores(nll: float, tokens: int, samples: list[SamplePrediction], who: str) -> ModelScores:
    loss = nll / tokens if tokens else math.nan
    means = mean_scores([getattr(s, f"{who}_scores") for s in samples])
    return ModelScores(perplexity_from(nll, tokens), loss, **means)


def free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
