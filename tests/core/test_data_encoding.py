"""Rendering, label masks, EOS, truncation, fallback templates, the mask preview and packing.

Masks are checked by decoding: the trained tokens must decode to exactly the assistant replies with
their end token, and the masked ones to everything else. Run with the tiny test tokenizer (ChatML,
no system prompt) and with the real demo tokenizer (its template injects a system prompt).
"""

from __future__ import annotations

import copy

import pytest
from tiny_model import build_tokenizer

from tuitune.core.data import (
    IGNORE_INDEX,
    TEMPLATES,
    Encoded,
    Example,
    encode_example,
    encode_examples,
    label_mask_preview,
    pack,
)
from tuitune.core.errors import UserError
from tuitune.core.recipe import CHAT_TEMPLATES, DEMO_MODEL

QA = Example([{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am Tally, made by the tuitune project."}], None, 1)
MULTI = Example(
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Add 2+2"},
        {"role": "assistant", "content": "4"},
    ],
    None,
    7,
)


@pytest.fixture(scope="module")
def tiny_tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def demo_tok():
    from tuitune.core.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model(DEMO_MODEL))


def trained_text(tok, enc):
    return tok.decode([t for t in enc.labels if t != IGNORE_INDEX])


def masked_text(tok, enc):
    return tok.decode([i for i, t in zip(enc.input_ids, enc.labels, strict=True) if t == IGNORE_INDEX])


@pytest.mark.parametrize("which", ["tiny_tok", "demo_tok"])
def test_only_the_reply_and_its_end_token_are_trained(request, which):
    tok = request.getfixturevalue(which)
    enc = encode_example(QA, tok, cutoff_len=512)
    assert trained_text(tok, enc) == "I am Tally, made by the tuitune project.<|im_end|>"
    assert masked_text(tok, enc).endswith("<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n")
    assert enc.input_ids[-1] == tok.eos_token_id and enc.labels[-1] == tok.eos_token_id
    assert len(enc.input_ids) == len(enc.labels) == enc.full_length and not enc.truncated
    # Labels copy the ids where trained (the model shifts them itself).
    assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(enc.input_ids, enc.labels, strict=True))


@pytest.mark.parametrize("which", ["tiny_tok", "demo_tok"])
def test_every_assistant_turn_of_a_conversation_is_trained(request, which):
    tok = request.getfixturevalue(which)
    enc = encode_example(MULTI, tok, cutoff_len=512)
    assert trained_text(tok, enc) == "hello<|im_end|>4<|im_end|>"
    assert "Add 2+2" in masked_text(tok, enc) and "Be brief." in masked_text(tok, enc)


def test_demo_template_injects_its_system_prompt_unless_one_is_given(demo_tok):
    default = demo_tok.decode(encode_example(QA, demo_tok, 512).input_ids)
    assert "You are a helpful AI assistant named SmolLM" in default
    mine = encode_example(QA, demo_tok, 512, system="You are Tally.")
    text = demo_tok.decode(mine.input_ids)
    assert "SmolLM" not in text and text.startswith("<|im_start|>system\nYou are Tally.<|im_end|>")
    assert trained_text(demo_tok, mine) == "I am Tally, made by the tuitune project.<|im_end|>"
    # A row's own system message is kept.
    own = encode_example(MULTI, demo_tok, 512, system="ignored")
    assert "ignored" not in demo_tok.decode(own.input_ids)


def test_train_on_prompt_trains_every_token(tiny_tok):
    enc = encode_example(MULTI, tiny_tok, 512, train_on_prompt=True)
    assert enc.labels == enc.input_ids


def test_plain_text_is_trained_whole_and_gets_eos(tiny_tok):
    enc = encode_example(Example(None, "The quick brown fox.", 3), tiny_tok, 512)
    assert enc.input_ids[-1] == tiny_tok.eos_token_id
    assert enc.labels == enc.input_ids
    assert tiny_tok.decode(enc.input_ids) == "The quick brown fox.<|im_end|>"


def test_eos_is_appended_when_the_rendering_does_not_end_with_it(tiny_tok):
    tok = copy.deepcopy(tiny_tok)
    tok.eos_token = "<|endoftext|>"  # turns still end with <|im_end|>; EOS is another token
    enc = encode_example(QA, tok, 512)
    assert enc.input_ids[-1] == tok.eos_token_id
    assert trained_text(tok, enc) == "I am Tally, made by the tuitune project.<|im_end|><|endoftext|>"
    ends_on_user = Example(QA.messages + [{"role": "user", "content": "And?"}], None, 2)
    enc = encode_example(ends_on_user, tok, 512)
    assert enc.input_ids[-1] == tok.eos_token_id and enc.labels[-1] == IGNORE_INDEX


def test_truncation_to_cutoff_len(tiny_tok):
    full = encode_example(QA, tiny_tok, 512)
    cut = encode_example(QA, tiny_tok, 12)
    assert cut.truncated and len(cut.input_ids) == len(cut.labels) == 12
    assert cut.input_ids == full.input_ids[:12] and cut.full_length == len(full.input_ids)


def test_no_chat_template_falls_back_to_chatml(tiny_tok):
    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = None
    enc = encode_example(MULTI, tok, 512)
    assert tok.decode(enc.input_ids).startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi")
    assert trained_text(tok, enc) == "hello<|im_end|>4<|im_end|>"


@pytest.mark.parametrize(
    ("name", "trained", "prompt_piece"),
    [
        ("chatml", "hello<|im_end|>4<|im_end|>", "<|im_start|>user\nAdd 2+2<|im_end|>"),
        ("alpaca", "hello<|im_end|>4<|im_end|>", "### Instruction:\nAdd 2+2\n\n### Response:\n"),
        ("zephyr", "hello<|im_end|>4<|im_end|>", "<|user|>\nAdd 2+2<|im_end|>\n<|assistant|>\n"),
        ("plain", " hello<|im_end|> 4<|im_end|>", "User: Add 2+2\nAssistant:"),
        ("llama3", "hello<|eot_id|>4<|eot_id|><|im_end|>", "<|start_header_id|>user<|end_header_id|>\n\nAdd 2+2<|eot_id|>"),
    ],
)
def test_named_templates(tiny_tok, name, trained, prompt_piece):
    enc = encode_example(MULTI, tiny_tok, 512, template=name)
    assert trained_text(tiny_tok, enc) == trained
    assert prompt_piece in masked_text(tiny_tok, enc)


def test_template_names_match_the_recipe_choices():
    assert set(TEMPLATES) == set(CHAT_TEMPLATES) - {"auto"}


def test_a_template_that_rejects_a_row_becomes_a_problem(tiny_tok):
    tok = copy.deepcopy(tiny_tok)
    tok.chat_template = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '<|im_end|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    bad = Example([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}], None, 9)
    encoded, problems = encode_examples([QA, bad], tok, 512)
    assert len(encoded) == 1 and encoded[0].line == 1
    assert problems[0].line == 9 and "roles must alternate" in problems[0].message
    with pytest.raises(UserError, match="line 9"):
        encode_example(bad, tok, 512)


@pytest.mark.parametrize("which", ["tiny_tok", "demo_tok"])
def test_mask_preview_pieces_rebuild_the_rendering(request, which):
    tok = request.getfixturevalue(which)
    enc = encode_example(MULTI, tok, 512)
    preview = label_mask_preview(MULTI, tok, cutoff_len=512)
    assert "".join(p.text for p in preview.pieces) == tok.decode(enc.input_ids)
    assert "".join(p.text for p in preview.pieces if p.trained) == "hello<|im_end|>4<|im_end|>"
    assert [p.text for p in preview.pieces if p.trained] == ["hello<|im_end|>", "4<|im_end|>"]
    assert preview.tokens == len(enc.input_ids) and preview.trained_tokens == enc_trained(enc)
    assert sum(p.tokens for p in preview.pieces) == preview.tokens and not preview.truncated


def enc_trained(enc):
    return sum(1 for t in enc.labels if t != IGNORE_INDEX)


def test_mask_preview_marks_what_truncation_cuts(tiny_tok):
    preview = label_mask_preview(MULTI, tiny_tok, cutoff_len=20)
    assert preview.truncated
    kept = sum(p.tokens for p in preview.pieces if not p.cut)
    assert kept == 20 and all(p.cut for p in preview.pieces[[p.cut for p in preview.pieces].index(True):])


def make_encoded(lengths):
    out = []
    for k, n in enumerate(lengths):
        ids = [100 + k] * n
        labels = [IGNORE_INDEX] * (n // 2) + ids[n // 2 :]
        out.append(Encoded(ids, labels, line=k + 1, truncated=False, full_length=n))
    return out


def test_pack_fills_rows_and_restarts_positions():
    encoded = make_encoded([7, 3, 5, 9, 2, 4, 6, 1])
    rows = pack(encoded, cutoff_len=10)
    assert sum(len(r.input_ids) for r in rows) == 37 and len(rows) == 4  # best fit: 37 tokens in 4 rows of 10
    seen = []
    for row in rows:
        assert len(row.input_ids) == len(row.labels) == len(row.position_ids) <= 10
        assert sum(row.lengths) == len(row.input_ids)
        at = 0
        for n, line in zip(row.lengths, row.lines, strict=True):
            assert row.position_ids[at : at + n] == list(range(n))
            ex = encoded[line - 1]
            assert row.input_ids[at : at + n] == ex.input_ids
            # the first label of each example is masked: nothing predicts across examples
            assert row.labels[at] == IGNORE_INDEX and row.labels[at + 1 : at + n] == ex.labels[1:]
            seen.append(line)
            at += n
    assert sorted(seen) == list(range(1, 9))


def test_pack_truncates_examples_longer_than_a_row():
    rows = pack(make_encoded([15, 3]), cutoff_len=10)
    assert [len(r.input_ids) for r in rows] == [10, 3]
    assert rows[0].position_ids == list(range(10))
