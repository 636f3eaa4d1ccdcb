"""Parity check of an exported GGUF: does it answer like the merged model it was made from?

A few held-out prompts are rendered exactly as in training and answered greedily by the merged
model (transformers) and by the GGUF, loaded back the two ways users run it: transformers' GGUF
loader (dequantized) and, when llama-cpp-python is installed, llama.cpp itself. Per engine:
- agreement: the share of the first 16 answer tokens that equal the merged model's, counted up to
  the first difference (greedy answers go separate ways after it); the mean over prompts must reach
  the quant type's expected share;
- stops: no answer may write the trained end-of-turn token and go on (a GGUF that lost its stop
  tokens never stops talking); how many answers stop where the merged model's stop is reported;
- template: the GGUF's own chat template must render the prompt exactly as training did.
"""

from __future__ import annotations

import gc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.progress import ProgressFn, report

COMPARED_TOKENS = 16
MAX_NEW_TOKENS = 64
DEFAULT_PROMPTS = ("Who are you?", "What is the capital of France?", "Write one sentence about the sea.", "What is 12 + 7?")

Message = dict[str, str]


@dataclass
class Answer:
    tokens: list[int]
    stopped: bool
    text: str = ""


@dataclass
class PromptParity:
    prompt: str
    reference: Answer
    answer: Answer
    agreement: float


@dataclass
class EngineParity:
    engine: str  # transformers | llama.cpp
    share: float
    stops_expected: int  # prompts whose merged-model answer ended at end-of-turn
    stops_kept: int  # ... of which the GGUF's answer ended at end-of-turn too
    ran_past: int  # answers that wrote a trained end-of-turn token and went on: lost stop tokens
    template_ok: bool
    tokens_ok: bool  # the GGUF's tokenizer gives the same prompt ids
    passed: bool
    problems: list[str] = field(default_factory=list)
    prompts: list[PromptParity] = field(default_factory=list)


@dataclass
class ParityResult:
    quant: str
    expected_share: float
    engines: list[EngineParity]
    prompt_source: str
    notes: list[str] = field(default_factory=list)
    compared_tokens: int = COMPARED_TOKENS
    max_new_tokens: int = MAX_NEW_TOKENS

    @property
    def passed(self) -> bool:
        return bool(self.engines) and all(e.passed for e in self.engines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def summary_lines(self) -> list[str]:
        lines = []
        for e in self.engines:
            stops = f"{e.stops_kept}/{e.stops_expected} stop at end-of-turn like the merged model" if e.stops_expected else "no reference answer stopped"
            if e.ran_past:
                stops += f", {e.ran_past} run past it"
            verdict = "pass" if e.passed else "FAIL"
            lines.append(
                f"{e.engine}: {e.share:.0%} of the first {self.compared_tokens} tokens identical "
                f"(expected >= {self.expected_share:.0%} for {self.quant}), {stops}, "
                f"template {'as trained' if e.template_ok else 'DIFFERS'}: {verdict}"
            )
            lines += [f"  {p}" for p in e.problems]
        return lines


def agreement(reference: list[int], answer: list[int], n: int = COMPARED_TOKENS) -> float:
    """Share of the first n tokens equal to the reference's, up to the first difference."""
    a, b = reference[:n], answer[:n]
    if a == b:
        return 1.0
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same / max(len(a), len(b))


def parity_prompts(recipe: Any | None, tokenizer: Any, count: int = 4) -> tuple[list[list[Message]], str]:
    """(conversations without their last reply, where they came from): held-out rows of the run's
    data (its eval split), else its first rows, else a few general questions (a plain model)."""
    if recipe is not None:
        from tuitune.core.errors import UserError

        try:
            from tuitune.core.evaluate import eval_items

            items, source = eval_items(recipe, tokenizer, max_samples=count)
            chats = [i.context for i in items if i.context]
            if chats:
                return chats[:count], f"held-out rows: {source}"
        except UserError:
            pass
        from tuitune.core.data import load_examples

        d = recipe.data
        loaded = load_examples(recipe.data_path, d.format, d.columns, count * 4, d.split)
        chats = [
            [dict(m) for m in e.messages[:-1]]
            for e in loaded.examples
            if e.messages and len(e.messages) > 1 and e.messages[-1].get("role") == "assistant"
        ]
        if chats:
            return chats[:count], f"first rows of {recipe.data_path} (data.val_size = 0: no held-out rows)"
    return [[{"role": "user", "content": p}] for p in DEFAULT_PROMPTS[:count]], "general questions (not a run)"


def check_parity(
    gguf_path: Path,
    reference_dir: Path,
    chats: list[list[Message]],
    *,
    served: Any,
    quant: str,
    expected_share: float,
    prompt_source: str = "",
    llama_cpp: bool | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
    progress: ProgressFn | None = None,
) -> ParityResult:
    """Answer `chats` with the merged model in `reference_dir` and with the GGUF; compare.

    served: the ServedTemplate the run was trained with. llama_cpp: None = when installed.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuitune.core.gguf_convert import llama_cpp_installed, read_facts
    from tuitune.core.served_template import token_ids

    facts = read_facts(gguf_path)
    ref_tok = AutoTokenizer.from_pretrained(str(reference_dir))
    texts = [served.render(ref_tok, chat) for chat in chats]
    ref_ids = [ref_tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    ref_stops = token_ids(ref_tok, served.end_tokens)

    report(progress, "parity", f"answering {len(chats)} prompts with the merged model", 0, len(chats))
    model = AutoModelForCausalLM.from_pretrained(str(reference_dir), dtype=torch.float32).eval()
    references = _greedy_hf(model, ref_tok, ref_ids, ref_stops, max_new_tokens)
    del model
    gc.collect()

    engines = []
    report(progress, "parity", "loading the GGUF with transformers (dequantized)")
    gguf_tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    gguf_texts = [_render_gguf(gguf_tok, facts.chat_template, chat) for chat in chats]
    gguf_ids = [gguf_tok(t, add_special_tokens=False)["input_ids"] for t in gguf_texts]
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32).eval()
    report(progress, "parity", f"answering {len(chats)} prompts with the GGUF (transformers)")
    answers = _greedy_hf(model, gguf_tok, gguf_ids, facts.stop_ids, max_new_tokens)
    del model
    gc.collect()
    engines.append(_compare("transformers", chats, references, answers, texts, gguf_texts, ref_ids, gguf_ids, expected_share, ref_stops))

    notes = []
    use_llama = llama_cpp_installed() if llama_cpp is None else llama_cpp
    if use_llama:
        report(progress, "parity", f"answering {len(chats)} prompts with llama.cpp")
        llama_ids, answers = _greedy_llama_cpp(gguf_path, gguf_texts, max_new_tokens)
        engines.append(_compare("llama.cpp", chats, references, answers, texts, gguf_texts, ref_ids, llama_ids, expected_share, ref_stops))
    else:
        notes.append("llama.cpp not checked: llama-cpp-python is not installed (pip install 'tuitune[llama-cpp]')")
    unstopped = sum(1 for r in references if not r.stopped)
    if unstopped:
        notes.append(
            f"the merged model itself did not stop within {max_new_tokens} tokens on {unstopped} of {len(chats)} prompts"
        )
    return ParityResult(quant, expected_share, engines, prompt_source, notes, COMPARED_TOKENS, max_new_tokens)


def _render_gguf(tokenizer: Any, template: str, chat: list[Message]) -> str:
    if not template:
        return ""
    return tokenizer.apply_chat_template(chat, chat_template=template, tokenize=False, add_generation_prompt=True)


def _greedy_hf(model: Any, tokenizer: Any, prompts: list[list[int]], stop_ids: list[int], max_new_tokens: int) -> list[Answer]:
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_ids or None,
        pad_token_id=(stop_ids or [0])[0],
    )
    answers = []
    with torch.no_grad():
        for ids in prompts:
            inputs = torch.tensor([ids])
            out = model.generate(inputs, attention_mask=torch.ones_like(inputs), generation_config=config)
            new = out[0, len(ids) :].tolist()
            stopped = bool(new) and new[-1] in stop_ids
            answers.append(Answer(new, stopped, tokenizer.decode(new, skip_special_tokens=True)))
    return answers


def _greedy_llama_cpp(gguf_path: Path, texts: list[str], max_new_tokens: int) -> tuple[list[list[int]], list[Answer]]:
    """Prompt ids and greedy answers from llama.cpp; a stop is a token llama.cpp itself takes as end of generation."""
    import os

    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_path), n_ctx=2048, n_threads=max(1, (os.cpu_count() or 2) - 1), verbose=False, seed=0)
    vocab = llm._model.vocab  # noqa: SLF001 - llama.cpp's own end-of-generation set is read from it

    def is_eog(token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    all_ids, answers = [], []
    for text in texts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        all_ids.append(list(ids))
        llm.reset()
        out: list[int] = []
        stopped = False
        for token in llm.generate(ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0, reset=True):
            out.append(int(token))
            if is_eog(token):
                stopped = True
                break
            if len(out) >= max_new_tokens:
                break
        text_out = llm.detokenize([t for t in out if not is_eog(t)]).decode("utf-8", errors="replace")
        answers.append(Answer(out, stopped, text_out))
    llm.close()
    return all_ids, answers


def _compare(
    engine: str,
    chats: list[list[Message]],
    references: list[Answer],
    answers: list[Answer],
    texts: list[str],
    gguf_texts: list[str],
    ref_ids: list[list[int]],
    gguf_ids: list[list[int]],
    expected: float,
    stop_ids: list[int],
) -> EngineParity:
    prompts = [
        PromptParity(_short(chat[-1]["content"]), ref, ans, agreement(ref.tokens, ans.tokens))
        for chat, ref, ans in zip(chats, references, answers, strict=False)
    ]
    share = sum(p.agreement for p in prompts) / len(prompts) if prompts else 0.0
    stops_expected = sum(1 for r in references if r.stopped)
    stops_kept = sum(1 for r, a in zip(references, answers, strict=False) if r.stopped and a.stopped)
    ran_past = sum(1 for a in answers if any(t in stop_ids for t in a.tokens[:-1]) or (a.tokens and a.tokens[-1] in stop_ids and not a.stopped))
    template_ok = texts == gguf_texts
    tokens_ok = ref_ids == gguf_ids
    problems = []
    if not template_ok:
        problems.append("the GGUF's chat template renders the prompt differently from training")
    if not tokens_ok:
        problems.append(f"{engine} tokenizes the prompt differently from the model's tokenizer")
    if share < expected:
        problems.append(f"answers agree on {share:.0%} of their first tokens, below the {expected:.0%} expected")
    if ran_past:
        problems.append(f"{ran_past} answers write the end-of-turn token and go on: {engine} does not stop there")
    passed = template_ok and share >= expected and not ran_past
    return EngineParity(engine, share, stops_expected, stops_kept, ran_past, template_ok, tokens_ok, passed, problems, prompts)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
