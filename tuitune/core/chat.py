"""Chatting with a tuned model: streamed replies, and base-vs-tuned answers to the same prompt.

A ChatSession is loaded once (in a worker thread for the TUI) and then streams replies piece by
piece. Generation runs in its own thread feeding transformers' TextIteratorStreamer, so the caller
can show text as it comes and stop it at any time through a threading.Event.

Comparison: for PEFT runs the base answer comes from the same loaded model with the adapter
switched off (peft's `disable_adapter()`), so nothing is loaded twice. Full and freeze runs have
no adapter to switch off; their base model is loaded separately, once, on first use.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.tuned import LoadedModel, load_base_for, load_target

Message = dict[str, str]

# End-of-turn tokens of common chat templates: a reply also stops there, even when the tokenizer's
# eos is another token (base models given a chat template during fine-tuning).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@dataclass(frozen=True)
class GenerationSettings:
    """How replies are sampled. temperature 0 means greedy (always the most likely token)."""

    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 256
    seed: int | None = None
    # None: the run's data.system (what the model saw in training); "" means no system message.
    system: str | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def check(self) -> None:
        if not (self.temperature >= 0):
            raise UserError(f"temperature {self.temperature} is not allowed", "use 0 (greedy) or a positive number such as 0.7")
        if not (0 < self.top_p <= 1):
            raise UserError(f"top-p {self.top_p} is not allowed", "use a number in (0, 1], such as 0.9")
        if self.max_new_tokens < 1:
            raise UserError(f"max new tokens {self.max_new_tokens} is not allowed", "use a positive integer such as 256")


class _StopOnEvent:
    """Stopping criterion that ends generation as soon as any of the events is set."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class ChatSession:
    """A loaded model (tuned run or plain model) that answers conversations."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self._base: LoadedModel | None = None
        # Generation toggles adapter state and seeds the global RNG: one reply at a time.
        self._lock = threading.Lock()
        self._stop_ids = stop_token_ids(loaded.model, loaded.tokenizer)

    @classmethod
    def open(cls, target: str, runs_dir: str | Path = "runs", device: str | None = None) -> ChatSession:
        """Load a run (its tuned model) or a plain model by name. Slow: call from a worker thread."""
        return cls(load_target(target, runs_dir, device))

    # ------------------------------------------------------------------ facts for the UI

    @property
    def label(self) -> str:
        return self.loaded.label

    @property
    def can_compare(self) -> bool:
        return self.loaded.kind in ("adapter", "full")

    @property
    def compare_note(self) -> str:
        """How the base answer is obtained, in one sentence."""
        if self.loaded.kind == "adapter":
            return "base answer: the same loaded model with the adapter switched off"
        if self.loaded.kind == "full":
            return (
                f"{self.loaded.method} run: the tuned model is a full copy, so the base model is loaded "
                "separately for the comparison (a second copy in memory)"
            )
        return "comparison needs a run: this is a plain model"

    @property
    def default_system(self) -> str:
        recipe = self.loaded.recipe
        return recipe.data.system if recipe is not None else ""

    # ------------------------------------------------------------------ generation

    def prompt_ids(self, messages: list[Message], settings: GenerationSettings | None = None) -> list[int]:
        """Token ids of the conversation rendered as in training, ending with the assistant cue."""
        settings = settings or GenerationSettings()
        system = self.default_system if settings.system is None else settings.system
        full = with_system(messages, system)
        # A run's base is prompted like its tuned model: the recipe's template and system prompt.
        template = self.loaded.recipe.data.template if self.loaded.recipe is not None else "auto"
        return render_prompt_ids(self.loaded.tokenizer, full, template)

    def stream(
        self,
        messages: list[Message],
        settings: GenerationSettings | None = None,
        cancel: threading.Event | None = None,
        *,
        use_adapter: bool = True,
    ) -> Iterator[str]:
        """Yield the reply to `messages` piece by piece. use_adapter=False answers as the base model.

        Setting `cancel` stops generation after the current token; the text so far has been yielded.
        """
        settings = settings or GenerationSettings()
        settings.check()
        if not messages:
            raise UserError("nothing to answer: the conversation is empty", "send a message first")
        target = self._model_for(use_adapter)
        ids = self.prompt_ids(messages, settings)
        yield from self._generate(target, ids, settings, cancel or threading.Event(), disable_adapter=self._toggles(use_adapter))

    def reply(
        self,
        messages: list[Message],
        settings: GenerationSettings | None = None,
        cancel: threading.Event | None = None,
        *,
        use_adapter: bool = True,
    ) -> str:
        return "".join(self.stream(messages, settings, cancel, use_adapter=use_adapter))

    def compare(
        self,
        prompt: str | list[Message],
        settings: GenerationSettings | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[str, str]:
        """(base answer, tuned answer) to the same prompt with the same seed."""
        if not self.can_compare:
            raise UserError("comparison needs a run (base + tuned); this is a plain model", "give a run name or folder")
        settings = same_seed(settings or GenerationSettings())
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        base = self.reply(messages, settings, cancel, use_adapter=False)
        tuned = self.reply(messages, settings, cancel, use_adapter=True)
        return base, tuned

    def base_model(self) -> LoadedModel:
        """The base for comparison: loaded on first use for full/freeze runs (slow)."""
        if self.loaded.kind == "adapter":
            return self.loaded
        if self.loaded.kind != "full" or self.loaded.run is None:
            raise UserError("comparison needs a run (base + tuned); this is a plain model", "give a run name or folder")
        if self._base is None:
            self._base = load_base_for(self.loaded.run, self.loaded.device)
        return self._base

    # ------------------------------------------------------------------ internals

    def _toggles(self, use_adapter: bool) -> bool:
        return not use_adapter and self.loaded.kind == "adapter"

    def _model_for(self, use_adapter: bool) -> LoadedModel:
        if use_adapter:
            return self.loaded
        return self.base_model()

    def _generate(
        self, target: LoadedModel, ids: list[int], settings: GenerationSettings, cancel: threading.Event, *, disable_adapter: bool
    ) -> Iterator[str]:
        import contextlib

        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        tokenizer = self.loaded.tokenizer
        model = target.model
        abandoned = threading.Event()  # set when the consumer stops reading before the end
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        input_ids = torch.tensor([ids], device=model.device)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": settings.max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_StopOnEvent(cancel, abandoned)]),
            "eos_token_id": self._stop_ids or None,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if settings.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=None)
        generate = model.generate
        if not disable_adapter and (virtual := virtual_token_inputs(model, input_ids)) is not None:
            kwargs.update(virtual)
            generate = model.get_base_model().generate
        failure: list[BaseException] = []

        def work() -> None:
            try:
                ctx = model.disable_adapter() if disable_adapter else contextlib.nullcontext()
                with ctx, torch.inference_mode():
                    if settings.seed is not None:
                        torch.manual_seed(settings.seed)
                    generate(**kwargs)
            except BaseException as e:  # noqa: BLE001 - handed to the consuming thread below
                failure.append(e)
                streamer.end()

        with self._lock:
            thread = threading.Thread(target=work, name="tuitune-generate", daemon=True)
            thread.start()
            finished = False
            try:
                yield from whole_characters(streamer)
                finished = True
            finally:
                # The consumer may stop early (closed generator, Ctrl-C): stop the thread too.
                if not finished:
                    abandoned.set()
                thread.join()
        if failure:
            raise _as_user_error(failure[0]) from failure[0]


def virtual_token_inputs(model: Any, input_ids: Any) -> dict[str, Any] | None:
    """generate() arguments that put a prefix, prompt or P-tuning adapter's virtual tokens in front of
    `input_ids` as its training forward does; None for every other model.

    peft's own generate() does not do it with transformers 5's generation loop (peft 0.21.2 with
    transformers 5.24 looks for `past_key_values` where transformers now passes `cache`): a prefix is
    ignored and prompt tokens are inserted again at every step. So the base model generates from the
    virtual tokens given here: a prefix as the starting cache, prompt embeddings before the prompt's.
    """
    config = getattr(model, "active_peft_config", None)
    if config is None or not getattr(config, "is_prompt_learning", False):
        return None
    import inspect

    import torch
    from peft import PeftType

    batch, length = input_ids.shape
    mask = torch.ones((batch, config.num_virtual_tokens + length), dtype=torch.long, device=input_ids.device)
    virtual = model.get_prompt(batch_size=batch)
    if config.peft_type == PeftType.PREFIX_TUNING:
        forward = model.get_base_model().forward  # its argument's name: `cache` since transformers 5.2x
        cache_name = "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"
        return {"input_ids": input_ids, "attention_mask": mask, cache_name: virtual}
    embeds = model.word_embeddings(input_ids)
    return {"input_ids": None, "inputs_embeds": torch.cat([virtual.to(embeds.dtype), embeds], dim=1), "attention_mask": mask}


def whole_characters(pieces: Iterator[str]) -> Iterator[str]:
    """Streamed pieces without half-generated characters.

    transformers' streamer only emits up to the last space mid-reply, but its final flush can end in
    U+FFFD: a character whose bytes were not all generated when max_new_tokens was reached. That stub
    is dropped (a piece ending in one also waits for the next piece, should a streamer emit it early)."""
    held = ""
    for piece in pieces:
        piece = held + piece
        held = piece if piece.endswith("\ufffd") else ""
        if piece and not held:
            yield piece
    if held.rstrip("\ufffd"):
        yield held.rstrip("\ufffd")


def _as_user_error(e: BaseException) -> BaseException:
    if isinstance(e, UserError):
        return e
    text = str(e).strip().splitlines()
    if "out of memory" in str(e).lower():
        return UserError("out of memory while generating", "lower --max-new-tokens, or use a smaller model")
    return UserError(f"generation failed: {type(e).__name__}: {text[0] if text else ''}", "")


def same_seed(settings: GenerationSettings) -> GenerationSettings:
    """Settings with a fixed seed, so two answers are sampled alike (one is drawn when none is set)."""
    if settings.seed is not None:
        return settings
    return replace(settings, seed=random.randrange(2**31))


def with_system(messages: list[Message], system: str) -> list[Message]:
    """The conversation with `system` as its system message, unless it already has one."""
    if not system or (messages and messages[0].get("role") == "system"):
        return list(messages)
    return [{"role": "system", "content": system}, *messages]


def render_prompt_ids(tokenizer: Any, messages: list[Message], template: str = "auto") -> list[int]:
    """Render as the data layer renders training examples, with the assistant cue appended.

    template = "auto" uses the tokenizer's own template, or ChatML when it has none (as in training).
    """
    text = tokenizer.apply_chat_template(
        messages, chat_template=training_chat_template(tokenizer, template), add_generation_prompt=True, tokenize=False
    )
    # The template writes any BOS itself; adding special tokens again would double it (the data
    # layer tokenizes chat renderings the same way).
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def training_chat_template(tokenizer: Any, template: str) -> str:
    """The Jinja chat template a run with data.template = `template` was trained with."""
    from tuitune.core.data.templates import chat_template_for

    jinja, _ = chat_template_for(tokenizer, template)
    return jinja if jinja is not None else tokenizer.chat_template


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """eos of the tokenizer and the generation config, plus the template's end-of-turn token."""
    ids: list[int] = []

    def add(value: Any) -> None:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, int) and v not in ids:
                ids.append(v)

    add(tokenizer.eos_token_id)
    config = getattr(model, "generation_config", None)
    if config is not None:
        add(config.eos_token_id)
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []))
    for token in END_OF_TURN_TOKENS:
        if token in vocab and token in special and token != tokenizer.pad_token:
            add(vocab[token])
    return ids
