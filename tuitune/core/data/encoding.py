"""From a normalized example to token ids and labels, with the prompt masked out.

How the trained part is found: the conversation is rendered with the chat template, and each
assistant reply's character span in that text is found by rendering the conversation up to the
reply with the generation prompt (where the reply starts) and up to and including the reply (where
it ends, end-of-turn marker included). Tokens are then labelled by their character offsets
(`return_offsets_mapping`), which holds however the template or the tokenizer joins the pieces.
Templates that rewrite earlier turns (so prefixes do not line up) fall back to finding each
reply's text in the rendering. transformers' own `return_assistant_tokens_mask` needs templates
written with `{% generation %}` tags, which almost no model ships, hence this.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tuitune.core.data.records import IGNORE_INDEX, DataProblem, Encoded, Example, MaskPiece, MaskPreview
from tuitune.core.data.templates import END_MARKERS, chat_template_for
from tuitune.core.errors import UserError

BATCH = 512  # examples tokenized per tokenizer call (the fast tokenizer batches in Rust)


class EncodeError(Exception):
    """One example cannot be rendered (e.g. the model's template rejects its turn order)."""


@dataclass
class Rendering:
    """An example as the model will read it, and which characters are trained."""

    text: str
    spans: list[tuple[int, int]]  # trained character ranges (assistant replies with their end marker)
    add_special_tokens: bool  # True for plain text (the tokenizer adds BOS where it does)
    last_is_reply: bool  # an appended EOS ends a reply and is trained
    template: str  # "tokenizer", a fallback template name, or "text"


def render_example(example: Example, tokenizer: Any, template: str = "auto", system: str = "") -> Rendering:
    if example.text is not None:
        return Rendering(example.text, [(0, len(example.text))], True, True, "text")
    messages = [dict(m) for m in example.messages or ()]
    if not messages:
        raise EncodeError("no turns to render")
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    jinja, name = chat_template_for(tokenizer, template)

    def render(msgs: list[dict[str, str]], generation: bool) -> str:
        try:
            return tokenizer.apply_chat_template(msgs, chat_template=jinja, tokenize=False, add_generation_prompt=generation)
        except Exception as e:  # noqa: BLE001 - jinja errors and templates' raise_exception() alike
            raise EncodeError(f"the chat template ({name}) rejected this conversation: {e}") from None

    full = render(messages, False)
    spans = _prefix_spans(messages, full, render)
    if spans is None:
        spans = _search_spans(messages, full, getattr(tokenizer, "eos_token", None))
    return Rendering(full, spans, False, messages[-1]["role"] == "assistant", name)


def _prefix_spans(messages: list[dict[str, str]], full: str, render: Callable) -> list[tuple[int, int]] | None:
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if i == 0:
            return None  # nothing to render before it: the templates differ on an empty prompt
        before = render(messages[:i], True)
        upto = render(messages[: i + 1], False)
        if not upto.startswith(before) or not full.startswith(upto):
            return None
        start, end = len(before), len(upto)
        while end > start and full[end - 1].isspace():
            end -= 1  # the newline after an end marker is layout, not something to generate
        spans.append((start, end))
    return spans


def _search_spans(messages: list[dict[str, str]], full: str, eos: str | None) -> list[tuple[int, int]]:
    spans = []
    cursor = 0
    markers = tuple(m for m in (eos, *END_MARKERS) if m)
    for i, message in enumerate(messages, 1):
        content = message["content"]
        at = full.find(content, cursor)
        if at < 0:
            content = content.strip()
            at = full.find(content, cursor)
        if at < 0:
            if message["role"] != "assistant":
                continue  # templates may drop or rewrite system/user turns; only replies matter
            raise EncodeError(f"the chat template changed the text of turn {i}; cannot tell which tokens to train")
        end = at + len(content)
        cursor = end
        if message["role"] != "assistant":
            continue
        rest = full[end:]
        gap = len(rest) - len(rest.lstrip(" \t\n"))
        for marker in markers:
            if rest[gap:].startswith(marker):
                end += gap + len(marker)
                break
        spans.append((at, end))
    return spans


def _tokenize(texts: list[str], tokenizer: Any, add_special_tokens: bool) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """Token ids and character offsets. Tokenizers without offsets (slow ones) are not supported
    for label masking: say so instead of guessing."""
    try:
        enc = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True, verbose=False)
    except NotImplementedError:
        raise UserError(
            "this tokenizer cannot report character offsets (a slow tokenizer)", "use a model with a fast tokenizer (tokenizer.json)"
        ) from None
    return list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))


def _labels(ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: list[tuple[int, int]], train_all: bool) -> list[int]:
    if train_all:
        return list(ids)
    labels = [IGNORE_INDEX] * len(ids)
    j = 0
    for t, (s, e) in enumerate(offsets):
        while j < len(spans) and spans[j][1] <= s:
            j += 1
        if j < len(spans) and s < spans[j][1] and e > spans[j][0]:
            labels[t] = ids[t]
    return labels


@dataclass
class _Tokens:
    ids: list[int]
    labels: list[int]
    offsets: list[tuple[int, int]]
    text: str
    eos_appended: bool
    template: str


def _strip_final_eos(rendering: Rendering, eos: str | None) -> Rendering:
    """When the rendering ends with EOS plus layout whitespace, drop the whitespace: the example
    then ends with EOS itself and nothing needs appending."""
    stripped = rendering.text.rstrip()
    if eos and stripped.endswith(eos) and len(stripped) < len(rendering.text):
        spans = [(s, min(e, len(stripped))) for s, e in rendering.spans if s < len(stripped)]
        return Rendering(stripped, spans, rendering.add_special_tokens, rendering.last_is_reply, rendering.template)
    return rendering


def _tokens_batch(renderings: list[Rendering], tokenizer: Any, train_on_prompt: bool) -> list[_Tokens]:
    eos, eos_id = getattr(tokenizer, "eos_token", None), getattr(tokenizer, "eos_token_id", None)
    renderings = [_strip_final_eos(r, eos) for r in renderings]
    out: list[_Tokens | None] = [None] * len(renderings)
    for special in (False, True):
        idx = [i for i, r in enumerate(renderings) if r.add_special_tokens == special]
        for k in range(0, len(idx), BATCH):
            chunk = idx[k : k + BATCH]
            for i, (ids, offsets) in zip(chunk, _tokenize([renderings[i].text for i in chunk], tokenizer, special), strict=True):
                r = renderings[i]
                ids, offsets = list(ids), [tuple(o) for o in offsets]
                labels = _labels(ids, offsets, r.spans, train_on_prompt or r.template == "text")
                appended = False
                if eos_id is not None and not (eos and r.text.endswith(eos)):
                    appended = True
                    ids.append(eos_id)
                    labels.append(eos_id if (train_on_prompt or r.last_is_reply) else IGNORE_INDEX)
                    offsets.append((len(r.text), len(r.text)))
                out[i] = _Tokens(ids, labels, offsets, r.text, appended, r.template)
    return [t for t in out if t is not None]


def encode_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    cutoff_len: int,
    train_on_prompt: bool = False,
    template: str = "auto",
    system: str = "",
) -> tuple[list[Encoded], list[DataProblem]]:
    """Encode many examples (batched tokenization). Examples the template cannot render are left out
    and reported as problems."""
    renderings: list[Rendering] = []
    kept: list[Example] = []
    problems: list[DataProblem] = []
    for ex in examples:
        try:
            renderings.append(render_example(ex, tokenizer, template, system))
            kept.append(ex)
        except EncodeError as e:
            problems.append(DataProblem(ex.line, f"{e}; row skipped", ex.file))
    encoded = []
    for ex, tok in zip(kept, _tokens_batch(renderings, tokenizer, train_on_prompt), strict=True):
        n = len(tok.ids)
        encoded.append(
            Encoded(tok.ids[:cutoff_len], tok.labels[:cutoff_len], ex.line, n > cutoff_len, full_length=n, file=ex.file)
        )
    return encoded, problems


def encode_example(
    example: Example,
    tokenizer: Any,
    cutoff_len: int,
    train_on_prompt: bool = False,
    template: str = "auto",
    system: str = "",
) -> Encoded:
    """One example as input_ids and labels (-100 where masked), EOS appended when the rendering does
    not end with it, truncated to cutoff_len. UserError when the template cannot render it."""
    encoded, problems = encode_examples([example], tokenizer, cutoff_len, train_on_prompt, template, system)
    if problems:
        raise UserError(str(problems[0]), "fix the row's turns, or choose another data.template")
    return encoded[0]


def label_mask_preview(
    example: Example,
    tokenizer: Any,
    cutoff_len: int | None = None,
    train_on_prompt: bool = False,
    template: str = "auto",
    system: str = "",
) -> MaskPreview:
    """The example as the model reads it, in pieces marked trained or masked (and cut, past
    cutoff_len), for coloured views."""
    try:
        rendering = render_example(example, tokenizer, template, system)
    except EncodeError as e:
        raise UserError(f"line {example.line}: {e}", "fix the row's turns, or choose another data.template") from None
    tok = _tokens_batch([rendering], tokenizer, train_on_prompt)[0]
    n = len(tok.ids)
    limit = n if not cutoff_len else min(cutoff_len, n)
    real = n - 1 if tok.eos_appended else n
    # Each token shows the text from where it starts to where the next starts, so the layout
    # whitespace between tokens stays visible; tokens with no characters (an added BOS, the
    # appended EOS) show their own spelling.
    bounds = [0]
    for t in range(1, real):
        bounds.append(max(bounds[-1], tok.offsets[t][0]))
    bounds.append(len(tok.text))

    def shown(t: int) -> str:
        if t >= real:
            return tokenizer.eos_token or ""
        s, e = tok.offsets[t]
        if s == e and (t == 0 or tok.offsets[t - 1] != (s, e)):
            return tokenizer.convert_ids_to_tokens(tok.ids[t]) or ""
        return tok.text[bounds[t] : bounds[t + 1]]

    states = [(tok.labels[t] != IGNORE_INDEX, t >= limit) for t in range(n)]
    pieces: list[MaskPiece] = []
    t = 0
    while t < n:
        u = t
        while u < n and states[u] == states[t]:
            u += 1
        pieces.append(MaskPiece("".join(shown(k) for k in range(t, u)), states[t][0], states[t][1], u - t))
        t = u
    trained_tokens = sum(1 for label in tok.labels[:limit] if label != IGNORE_INDEX)
    return MaskPreview(pieces, n, trained_tokens, n > limit, tok.template, tok.eos_appended)
