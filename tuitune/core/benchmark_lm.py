"""lm-eval's view of a model tuitune has loaded: `RunLM`, an lm-eval `HFLM` over the loaded model.

Imports torch, transformers and lm-eval at module level: import it inside functions only
(`tuitune.core.benchmarks` does). What it adds to HFLM, and why HFLM alone would not do:
- the adapter switch: `use_adapter = False` runs every forward pass and generation inside peft's
  `disable_adapter()`, so the base is the same loaded weights (as `chat --compare` does);
- prompts rendered as in training: with chat prompts on, lm-eval's chat turns go through the
  run's `data.template` and `data.system` (tuitune's own templates, not only the tokenizer's);
- prompt-learning adapters (prompt tuning, P-tuning) return logits for their virtual tokens too:
  only the inputs' own positions go back to lm-eval, which slices them by position;
- cancellation between batches, and progress per batch, for the CLI and the TUI.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import torch
from lm_eval.models.huggingface import HFLM

from tuitune.core.chat import training_chat_template, with_system
from tuitune.core.evaluate import Cancelled
from tuitune.core.tuned import LoadedModel

# (kind, done, total): kind is "loglikelihood" or "generate"; counts are requests.
BatchProgress = Callable[[str, int, int], None]


class RunLM(HFLM):
    """lm-eval model over a tuitune `LoadedModel`; `use_adapter` picks tuned (True) or base (False)."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        batch_size: int | str = 8,
        max_length: int | None = None,
        cancel: threading.Event | None = None,
        on_batch: BatchProgress | None = None,
    ) -> None:
        super().__init__(
            pretrained=loaded.model,
            tokenizer=loaded.tokenizer,
            batch_size=batch_size,
            max_length=max_length,
        )
        self.loaded = loaded
        self.use_adapter = True
        self.cancel = cancel or threading.Event()
        self.on_batch = on_batch
        recipe = loaded.recipe
        self._template = training_chat_template(loaded.tokenizer, recipe.data.template if recipe else "auto")
        self._system = recipe.data.system if recipe else ""
        self._kind, self._done, self._total = "", 0, 0

    # ------------------------------------------------------------------ the adapter switch

    def _adapter_state(self) -> contextlib.AbstractContextManager:
        if not self.use_adapter and self.loaded.kind == "adapter":
            return self.loaded.model.disable_adapter()
        return contextlib.nullcontext()

    def _model_call(self, inps: torch.Tensor, attn_mask: Any = None, labels: Any = None) -> torch.Tensor:
        self._check_cancel()
        with self._adapter_state():
            logits = super()._model_call(inps, attn_mask, labels)
        self._advance(inps.shape[0])
        # Virtual tokens (prompt tuning, P-tuning) come first: keep the last positions, the inputs'.
        return logits[:, -inps.shape[1] :, :] if logits.shape[1] > inps.shape[1] else logits

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **kwargs: Any) -> torch.Tensor:
        self._check_cancel()
        with self._adapter_state():
            out = super()._model_generate(context, max_length, stop, **kwargs)
        self._advance(context.shape[0])
        return out

    # ------------------------------------------------------------------ prompts as in training

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        messages = with_system(chat_history, self._system)
        return self.tokenizer.apply_chat_template(
            messages,
            chat_template=self._template,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
        )

    # ------------------------------------------------------------------ progress and cancel

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        self._start("loglikelihood", len(requests))
        return super().loglikelihood(requests, disable_tqdm=True)  # progress goes through on_batch

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list:
        self._start("generate", len(requests))
        return super().generate_until(requests, disable_tqdm=True)

    def _start(self, kind: str, total: int) -> None:
        self._kind, self._done, self._total = kind, 0, total
        if self.on_batch is not None:
            self.on_batch(kind, 0, total)

    def _advance(self, rows: int) -> None:
        # Requests sharing a context are scored in one row (lm-eval's logits cache), so rows can
        # fall short of the request count: the count is capped, and the caller sees the end anyway.
        self._done = min(self._total, self._done + rows)
        if self.on_batch is not None and self._kind:
            self.on_batch(self._kind, self._done, self._total)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()
