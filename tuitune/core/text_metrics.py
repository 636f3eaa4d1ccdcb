"""How close a generated answer is to its reference: exact match, token F1, ROUGE-1/2/L, BLEU-4.

Exact match and token F1 compare SQuAD-style normalized answers (see `normalize_answer`): lowercase,
punctuation and the articles a/an/the removed, whitespace collapsed; tokens are words, and each CJK
character is one token (Chinese is written without spaces; the CMRC 2018 evaluation scores
Chinese answers per character).

ROUGE and BLEU come from the libraries everyone reports them with, so the figures compare:
- ROUGE-1/2/L: `rouge-score` (Google's implementation), F-measure, over words: Chinese is cut into
  words with `jieba` (as LLaMA-Factory's predict mode does), other text is lowercased and split into
  letters/digits runs (rouge-score's own rule, without stemming, so it works for any language).
- BLEU-4: `sacrebleu` sentence BLEU (4-grams, "exp" smoothing, effective order), with the `13a`
  tokenizer, or its `zh` tokenizer when either text holds Chinese: every Chinese character one
  token (LLaMA-Factory's predict mode also scores BLEU per character).
All scores are 0..1 (BLEU divided by 100); means over answers are what reports show.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

NORMALIZATION = (
    "lowercase; punctuation removed; articles a/an/the removed; whitespace collapsed; "
    "tokens are words split on whitespace, each CJK character one token"
)
SEGMENTATION = (
    "ROUGE-1/2/L (rouge-score, F-measure) over words: Chinese cut into words by jieba, other text "
    "lowercased letter/digit runs; BLEU-4 (sacrebleu sentence BLEU, exp smoothing) with the 13a "
    "tokenizer, or per Chinese character (zh tokenizer) when a text holds Chinese"
)
METRICS = ("exact_match", "f1", "rouge1", "rouge2", "rougeL", "bleu4")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af])")
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# rouge-score's default tokenizer keeps [a-z0-9] runs only; \w (minus _) keeps other scripts too.
_WORD = re.compile(r"[^\W_]+")

# ------------------------------------------------------------------------------ exact match, F1


def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """Lowercase, remove punctuation (ASCII and Unicode) and English articles, collapse whitespace."""
    text = text.lower()
    text = "".join(" " if _is_punctuation(ch) else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Normalized tokens: whitespace-separated words, with every CJK character a token of its own."""
    return _CJK.sub(r" \1 ", normalize_answer(text)).split()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the two answers are the same after normalization, else 0.0."""
    return float(answer_tokens(prediction) == answer_tokens(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (tokens counted with multiplicity)."""
    pred, ref = answer_tokens(prediction), answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)  # both empty: a match; only one empty: nothing in common
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ------------------------------------------------------------------------------ ROUGE


def has_chinese(text: str) -> bool:
    return _HAN_RUN.search(text) is not None


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary on stderr otherwise
    return jieba


def rouge_words(text: str) -> list[str]:
    """The words ROUGE counts: jieba's words for Chinese runs, lowercase letter/digit runs elsewhere."""
    words: list[str] = []
    pos = 0
    for run in _HAN_RUN.finditer(text):
        words += _WORD.findall(text[pos : run.start()].lower())
        words += [w for w in _jieba().lcut(run.group()) if w.strip()]
        pos = run.end()
    words += _WORD.findall(text[pos:].lower())
    return words


class _Words:
    """rouge-score's tokenizer interface over `rouge_words`."""

    def tokenize(self, text: str) -> list[str]:
        return rouge_words(text)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_Words())


def rouge(prediction: str, reference: str) -> dict[str, float]:
    """{"rouge1", "rouge2", "rougeL"}: F-measures 0..1. Two empty texts match (1.0)."""
    if not rouge_words(prediction) and not rouge_words(reference):
        return {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    scores = _rouge_scorer().score(reference, prediction)  # rouge-score takes (target, prediction)
    return {name: float(score.fmeasure) for name, score in scores.items()}


# ------------------------------------------------------------------------------ BLEU


@lru_cache(maxsize=2)
def _bleu(tokenize: str) -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=True)


def bleu4(prediction: str, reference: str) -> float:
    """Sentence BLEU-4, 0..1 (sacrebleu; per Chinese character when either text holds Chinese)."""
    if not prediction.strip() or not reference.strip():
        return float(prediction.strip() == reference.strip())
    tokenize = "zh" if has_chinese(prediction) or has_chinese(reference) else "13a"
    return min(1.0, _bleu(tokenize).sentence_score(prediction, [reference]).score / 100.0)


# ------------------------------------------------------------------------------ all together


@dataclass(frozen=True)
class AnswerScores:
    exact_match: float
    f1: float
    rouge1: float
    rouge2: float
    rougeL: float  # the name every paper and library uses
    bleu4: float


def score_answer(prediction: str, reference: str) -> AnswerScores:
    """Every answer metric of one prediction against its reference."""
    r = rouge(prediction, reference)
    return AnswerScores(
        exact_match=exact_match(prediction, reference),
        f1=token_f1(prediction, reference),
        rouge1=r["rouge1"],
        rouge2=r["rouge2"],
        rougeL=r["rougeL"],
        bleu4=bleu4(prediction, reference),
    )


def mean_scores(scores: list[AnswerScores]) -> dict[str, float | None]:
    """Mean of each metric over answers (None for every metric when there are none)."""
    if not scores:
        return dict.fromkeys(METRICS)
    return {m: sum(getattr(s, m) for s in scores) / len(scores) for m in METRICS}
