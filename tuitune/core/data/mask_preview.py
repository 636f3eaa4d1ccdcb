"""One example as the model reads it, in pieces marked trained, masked or cut, for coloured views."""

from __future__ import annotations

from typing import Any

from tuitune.core.data.encoding import EncodeError, render_example
from tuitune.core.data.records import IGNORE_INDEX, Example, MaskPiece, MaskPreview
from tuitune.core.data.tokens import tokens_batch
from tuitune.core.data.tool_rendering import FALLBACK_NOTE
from tuitune.core.errors import UserError


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
    tok = tokens_batch([rendering], tokenizer, train_on_prompt, cutoff_len)[0]
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
    if tok.untokenized_chars:
        pieces.append(MaskPiece(f"… {tok.untokenized_chars:,} more characters", False, True, 0))
    trained_tokens = sum(1 for label in tok.labels[:limit] if label != IGNORE_INDEX)
    notes = [FALLBACK_NOTE] if rendering.tools_fallback else []
    return MaskPreview(
        pieces, tok.full_length, trained_tokens, tok.full_length > limit, tok.template, tok.eos_appended, notes, tok.estimated
    )
