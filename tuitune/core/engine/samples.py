"""What the model says *now*: greedy answers to a few fixed prompts while the run trains.

Every `eval.sample_every` optimizer steps and at the last step, rank 0 answers each prompt with the
model being trained (eval mode, no gradients, at most SAMPLE_MAX_NEW_TOKENS new tokens) and writes one
`sample` event per prompt (step, prompt, answer), then a `log` event with what it cost. Greedy
decoding in eval mode draws no random numbers, so the training batches and dropout stay exactly as
without samples (a resumed run still repeats its losses).

The prompts: `eval.sample_prompts`, or ("auto") the identity questions for the demo data, else the
first held-out prompts of the eval split, else the first training prompts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitune.core.engine.report import Reporter
from tuitune.core.events import SampleEvent

SAMPLE_MAX_NEW_TOKENS = 64
AUTO_PROMPTS = 3
# The questions the bundled demo data (recipes/data/identity*.jsonl) teaches the answers to.
IDENTITY_QUESTIONS = {
    "identity.jsonl": ["Who are you?", "What is your name?", "Who made you?"],
    "identity_zh.jsonl": ["你是谁？", "你叫什么名字？", "谁开发了你？"],
}

Message = dict[str, str]


@dataclass(frozen=True)
class SamplePrompt:
    """One prompt to answer: the conversation up to the reply, and the words shown for it."""

    messages: list[Message] | None  # None for plain-text data: `text` is continued as it is
    text: str


def choose_prompts(recipe: Any, prepared: Any) -> tuple[list[SamplePrompt], str]:
    """(prompts, where they come from) for this run; no prompts when there is nothing to ask."""
    chosen = recipe.eval.sample_prompts
    plain = recipe.data.format == "text"
    if chosen != "auto":
        return [SamplePrompt(None if plain else [{"role": "user", "content": p}], p) for p in chosen], "eval.sample_prompts"
    name = Path(recipe.data_path).name
    if name in IDENTITY_QUESTIONS and not plain:
        return [SamplePrompt([{"role": "user", "content": q}], q) for q in IDENTITY_QUESTIONS[name]], "the demo's identity questions"
    if prepared.eval:
        return _held_out(recipe, prepared.eval[:AUTO_PROMPTS]), "the first held-out prompts (eval split)"
    return _first_rows(recipe), "the first training prompts (no eval split)"


def _held_out(recipe: Any, encoded: list[Any]) -> list[SamplePrompt]:
    """The prompts of encoded eval rows, read back from the data by their line."""
    from tuitune.core.data import read_page, row_at_line

    d = recipe.data
    examples = []
    for enc in encoded:
        row = row_at_line(recipe.data_path, enc.line, enc.file, d.split, dataset=d.dataset, text_split=d.text_split)
        page = read_page(recipe.data_path, d.format, d.columns, offset=row, limit=1, split=d.split,
                         dataset=d.dataset, text_split=d.text_split) if row is not None else None
        if page is not None and page.rows:
            examples.append(page.rows[0].example)
    return _prompts_of(examples)


def _first_rows(recipe: Any) -> list[SamplePrompt]:
    from tuitune.core.data import read_page

    d = recipe.data
    page = read_page(recipe.data_path, d.format, d.columns, offset=0, limit=4 * AUTO_PROMPTS, split=d.split,
                     dataset=d.dataset, text_split=d.text_split)
    return _prompts_of([r.example for r in page.rows])[:AUTO_PROMPTS]


def _prompts_of(examples: list[Any]) -> list[SamplePrompt]:
    """Each example's conversation up to its last reply, shown by its last question."""
    prompts = []
    for example in examples:
        if example is None or not example.messages:
            continue  # plain text: nothing to ask (eval.sample_prompts can give prompts to continue)
        messages = example.messages
        if messages[-1].get("role") == "assistant":
            messages = messages[:-1]
        last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        if last_user:
            prompts.append(SamplePrompt([dict(m) for m in messages], last_user))
    return prompts


class AnswerSampler:
    """Renders the prompts once (as training renders them) and answers them with a given model."""

    def __init__(self, recipe: Any, tokenizer: Any, prompts: list[SamplePrompt]) -> None:
        from tuitune.core.chat import render_prompt_ids, stop_token_ids, with_system

        self.tokenizer = tokenizer
        self.prompts = prompts
        self.ids = [
            render_prompt_ids(tokenizer, with_system(p.messages, recipe.data.system), recipe.data.template)
            if p.messages is not None
            else tokenizer(p.text)["input_ids"]
            for p in prompts
        ]
        self._stop = stop_token_ids
        self.max_new_tokens = SAMPLE_MAX_NEW_TOKENS

    def answer(self, model: Any) -> list[str]:
        """Greedy answers to every prompt, in eval mode; the model's training mode is put back."""
        import torch

        was_training = model.training
        device = next(p.device for p in model.parameters())
        stop = self._stop(model, self.tokenizer)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (stop[0] if stop else 0)
        answers = []
        model.eval()
        try:
            for ids in self.ids:
                input_ids = torch.tensor([ids], device=device)
                # no_grad, not inference_mode: a tensor a module caches here may meet autograd later.
                with torch.no_grad():
                    out = model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        max_new_tokens=self.max_new_tokens,
                        do_sample=False,
                        temperature=None,
                        top_p=None,
                        top_k=None,
                        eos_token_id=stop or None,
                        pad_token_id=pad,
                        use_cache=True,
                    )
                text = self.tokenizer.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)
                # A character whose bytes were cut by max_new_tokens decodes to U+FFFD: drop the stub.
                answers.append(text.strip().rstrip("\ufffd"))
        finally:
            if was_training:
                model.train()
        return answers


class SampleSchedule:
    """When to answer (every `every` steps and at the last one) and what to write: one `sample`
    event per prompt, then a `log` event with the cost. `engine.callbacks.SamplesCallback` calls it."""

    def __init__(self, reporter: Reporter, sampler: AnswerSampler, every: int, on_cost: Callable[[float], None] | None = None) -> None:
        self.reporter = reporter
        self.sampler = sampler
        self.every = every
        self.on_cost = on_cost  # told the seconds spent, so tokens/s stays the training speed
        self.last_step = -1
        self._since = time.monotonic()

    def begin(self) -> None:
        self._since = time.monotonic()

    def step_ended(self, model: Any, step: int, max_steps: int) -> None:
        due = step % self.every == 0 or step == max_steps
        if not due or step == self.last_step:
            return
        self.last_step = step
        start = time.monotonic()
        with _quiet_generation():
            answers = self.sampler.answer(model)
        for prompt, answer in zip(self.sampler.prompts, answers, strict=True):
            self.reporter.emit(SampleEvent(step=step, prompt=prompt.text, answer=answer))
        now = time.monotonic()
        cost, window = now - start, now - self._since
        if self.on_cost is not None:
            self.on_cost(cost)
        share = f", {100 * cost / window:.0f}% of the time since the last samples" if window > cost else ""
        self.reporter.log(
            f"sample answers at step {step}: {len(answers)} prompt(s), up to {self.sampler.max_new_tokens} "
            f"new tokens each, {cost:.1f} s{share}"
        )
        self._since = now


@contextlib.contextmanager
def _quiet_generation():
    """transformers warns once per call that a checkpointed or compiled model generates in eval mode."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def samples_callback(
    recipe: Any, tokenizer: Any, prepared: Any, reporter: Reporter, fsdp: bool, on_cost: Callable[[float], None] | None = None
) -> Any:
    """Rank 0's callback for this run, or None (sample_every = 0, or nothing to ask: said in the log)."""
    every = recipe.eval.sample_every
    if every <= 0:
        return None
    prompts, source = choose_prompts(recipe, prepared)
    if not prompts:
        reporter.log("no sample answers: the data has no prompts to ask (set eval.sample_prompts)")
        return None
    if fsdp:
        # Each rank holds a shard of the weights: one rank cannot run the model on its own.
        reporter.warning("no sample answers under FSDP (every rank would have to generate); eval.sample_every ignored")
        return None
    from tuitune.core.engine.callbacks import SamplesCallback

    sampler = AnswerSampler(recipe, tokenizer, prompts)
    reporter.log(f"sample answers every {every} steps to {len(prompts)} prompt(s): {source}")
    return SamplesCallback(SampleSchedule(reporter, sampler, every, on_cost))
