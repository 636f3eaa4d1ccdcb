"""From a normalized example to token ids and labels, with the prompt masked out.

How the trained part is found: the conversation is rendered with the chat template, and each
assistant reply's character span in that text is found by rendering the conversation up to the
reply with the generation prompt (where the reply starts) and up to and including the reply (where
it ends, end-of-turn marker included). Tokens are then labelled by their character offsets
(`return_offsets_mapping`), which holds however the template or the tokenizer joins the pieces.
Templates that rewrite earlier turns (so prefixes do not line up) fall back to finding each
reply's text in the rendering. transformers' own `return_assistant_tokens_mask` needs templates
written with `{% generation %}` tags, which almost no model ships, hence this.

Rows with tools go to the template natively or in the fallback format (tool_rendering.py); either
way assistant turns (tool calls included) are trained and tool results are not. Tokenizing, with
its per-row bounds and the chunking of long texts, is in tokens.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tuitune.core.data.records import DataProblem, Encoded, Example
from tuitune.core.data.templates import END_MARKERS, chat_template_for
from tuitune.core.data.tokens import Rendering, text_chunks, tokens_batch
from tuitune.core.data.tool_rendering import fallback_messages, renders_tools, uses_tools
from tuitune.core.errors import UserError


class EncodeError(Exception):
    """One example cannot be rendered (e.g. the model's template rejects its turn order)."""


def render_example(example: Example, tokenizer: Any, template: str = "auto", system: str = "") -> Rendering:
    if example.text is not None:
        return Rendering(example.text, [(0, len(example.text))], True, True, "text")
    messages = [dict(m) for m in example.messages or ()]
    if not messages:
        raise EncodeError("no turns to render")
    if system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    jinja, name = chat_template_for(tokenizer, template)
    tools, fallback = None, False
    if uses_tools(messages, example.tools):
        if renders_tools(tokenizer, jinja):
            tools = example.tools
        else:
            messages, fallback = fallback_messages(messages, example.tools), True

    def render(msgs: list[dict[str, Any]], generation: bool) -> str:
        try:
            return tokenizer.apply_chat_template(
                msgs, tools=tools, chat_template=jinja, tokenize=False, add_generation_prompt=generation
            )
        except Exception as e:  # noqa: BLE001 - jinja errors and templates' raise_exception() alike
            raise EncodeError(f"the chat template ({name}) rejected this conversation: {e}") from None

    full = render(messages, False)
    spans = _prefix_spans(messages, full, render)
    if spans is None:
        spans = _search_spans(messages, full, getattr(tokenizer, "eos_token", None))
    return Rendering(full, spans, False, messages[-1]["role"] == "assistant", name, fallback)


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


def _search_spans(messages: list[dict[str, Any]], full: str, eos: str | None) -> list[tuple[int, int]]:
    spans = []
    cursor = 0
    markers = tuple(m for m in (eos, *END_MARKERS) if m)
    for i, message in enumerate(messages, 1):
        content = message["content"]
        if message.get("tool_calls"):
            spans.append(_call_span(message, full, cursor, markers, i))
            cursor = spans[-1][1]
            continue
        at = full.find(content, cursor) if content else -1
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


def _call_span(message: dict[str, Any], full: str, cursor: int, markers: tuple[str, ...], turn: int) -> tuple[int, int]:
    """An assistant turn with tool calls in a rendering that cannot be cut into prefixes: from its
    text (or else its first call's function name) to the next end-of-turn marker. The few template
    characters before a call's name stay masked: less trained, never a prompt token trained."""
    content = message["content"].strip()
    at = full.find(content, cursor) if content else -1
    if at < 0:
        at = full.find(message["tool_calls"][0]["function"]["name"], cursor)
    if at < 0:
        raise EncodeError(f"the chat template did not write the tool call of turn {turn}; cannot tell which tokens to train")
    ends = [p + len(m) for m in markers if (p := full.find(m, at)) >= 0]
    return at, min(ends) if ends else len(full)


def encode_examples(
    examples: Sequence[Example],
    tokenizer: Any,
    cutoff_len: int,
    train_on_prompt: bool = False,
    template: str = "auto",
    system: str = "",
    chunk_long_text: bool = False,
) -> tuple[list[Encoded], list[DataProblem]]:
    """Encode many examples (batched tokenization). Examples the template cannot render are left out
    and reported as problems. `chunk_long_text`: a plain-text example longer than cutoff_len becomes
    several examples of at most cutoff_len tokens (each with `chunk` set) instead of being cut."""
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
    for ex, tok in zip(kept, tokens_batch(renderings, tokenizer, train_on_prompt, cutoff_len), strict=True):
        n = tok.full_length
        if chunk_long_text and ex.text is not None and n > cutoff_len:
            chunks = text_chunks(ex.text, tokenizer, cutoff_len)
            encoded += [Encoded(c, list(c), ex.line, False, len(c), ex.file, chunk=k, plain_text=True) for k, c in enumerate(chunks)]
            continue
        encoded.append(
            Encoded(
                tok.ids[:cutoff_len], tok.labels[:cutoff_len], ex.line, n > cutoff_len, full_length=n, file=ex.file,
                estimated=tok.estimated, plain_text=ex.text is not None,
            )
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


