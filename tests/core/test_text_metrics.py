"""Answer metrics on hand-worked cases in English and Chinese: exact match, token F1, ROUGE-1/2/L
(rouge-score, Chinese cut into words by jieba) and BLEU-4 (sacrebleu, Chinese per character).

Expected values are worked out by hand in the comments (n-gram counts), not copied from a run."""

from __future__ import annotations

import math

import pytest

from tuitune.core import text_metrics as tm

# ------------------------------------------------------------------------------ exact match, F1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  a   cat, an owl; the END.  ", "cat owl end"),
        ("Theory of anything", "theory of anything"),  # articles only as whole words
        ("“Paris”—France", "paris france"),  # Unicode punctuation too
        ("北京。", "北京"),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert tm.normalize_answer(text) == expected


def test_answer_tokens_split_cjk_characters():
    assert tm.answer_tokens("我是 Tally，一个助手") == ["我", "是", "tally", "一", "个", "助", "手"]


@pytest.mark.parametrize(
    "prediction, reference, em, f1",
    [
        ("Paris", "paris.", 1.0, 1.0),
        ("The capital is Paris", "Paris", 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),  # p = 1/3, r = 1
        ("Paris France", "Paris", 0.0, 2 / 3),
        ("London", "Paris", 0.0, 0.0),
        ("", "", 1.0, 1.0),
        ("", "Paris", 0.0, 0.0),
        ("the a an", "", 1.0, 1.0),  # only articles: empty after normalization
        ("paris paris", "paris", 0.0, 2 * 0.5 * 1 / 1.5),  # repeats count once per occurrence
        ("我是助手", "我是一个助手", 0.0, 2 * 1.0 * (4 / 6) / (1 + 4 / 6)),
    ],
)
def test_exact_match_and_token_f1(prediction, reference, em, f1):
    assert tm.exact_match(prediction, reference) == em
    assert tm.token_f1(prediction, reference) == pytest.approx(f1)


# ------------------------------------------------------------------------------ ROUGE


def test_rouge_english():
    # words: the cat sat on the mat / the cat is on the mat (6 each)
    # unigrams in common: the x2, cat, on, mat = 5 -> P = R = 5/6
    # bigrams (5 each) in common: the-cat, on-the, the-mat = 3 -> 3/5
    # longest common subsequence: the cat on the mat = 5 -> 5/6
    r = tm.rouge("The cat sat on the mat.", "The cat is on the mat.")
    assert r == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6})


def test_rouge_english_is_rouge_scores_own_figure():
    from rouge_score.rouge_scorer import RougeScorer

    pred, ref = "Waves fold over waves, the sea keeps time.", "The sea keeps time as waves fold."
    theirs = RougeScorer(["rouge1", "rouge2", "rougeL"]).score(ref, pred)  # their default tokenizer
    assert tm.rouge(pred, ref) == pytest.approx({k: v.fmeasure for k, v in theirs.items()})


def test_rouge_chinese_counts_jieba_words():
    # jieba: 我/是/一个/助手 and 我/是/一个/有用/的/助手
    # unigrams: 4 in common -> P = 1, R = 4/6 -> F = 0.8
    # bigrams: 我是, 是一个 in common; 3 and 5 bigrams -> P = 2/3, R = 2/5 -> F = 0.5
    # LCS 我 是 一个 助手 = 4 -> 0.8
    assert tm.rouge("我是一个助手", "我是一个有用的助手") == pytest.approx({"rouge1": 0.8, "rouge2": 0.5, "rougeL": 0.8})
    # Words, not characters: 北京大学 (one word) shares no word with 北京/的/大学 (it would share
    # four of five characters per character).
    assert tm.rouge_words("北京的大学") == ["北京", "的", "大学"]
    assert tm.rouge("北京大学", "北京的大学")["rouge1"] == 0.0


def test_rouge_words_mixed_text():
    words = tm.rouge_words("我是 Tally，一个由 tuitune 项目开发的助手。")
    assert words == ["我", "是", "tally", "一个", "由", "tuitune", "项目", "开发", "的", "助手"]


def test_rouge_of_empty_texts():
    assert tm.rouge("", "") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert tm.rouge("", "Paris")["rouge1"] == 0.0
    assert tm.rouge("Paris", "")["rouge1"] == 0.0


# ------------------------------------------------------------------------------ BLEU


def test_bleu4_english():
    # 13a tokens: The cat sat on the mat . / The cat is on the mat . (7 each, brevity penalty 1)
    # matched n-grams: 1: 6/7, 2: 4/6, 3: 2/5 (on the mat, the mat .), 4: 1/4 (on the mat .)
    expected = (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25
    assert tm.bleu4("The cat sat on the mat.", "The cat is on the mat.") == pytest.approx(expected)


def test_bleu4_english_is_sacrebleus_figure():
    import sacrebleu

    pred, ref = "Waves fold over waves, the sea keeps time.", "The sea keeps time as waves fold over."
    assert tm.bleu4(pred, ref) == pytest.approx(sacrebleu.sentence_bleu(pred, [ref]).score / 100)


def test_bleu4_chinese_counts_characters():
    # 今 天 天 气 很 好 / 今 天 天 气 不 错: 1: 4/6, 2: 3/5, 3: 2/4, 4: 1/3, brevity penalty 1
    assert tm.bleu4("今天天气很好", "今天天气不错") == pytest.approx((4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    # 6 characters against 9: brevity penalty exp(1 - 9/6); n-grams 6/6, 4/5, 2/4, 1/3
    expected = math.exp(1 - 9 / 6) * (1 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert tm.bleu4("我是一个助手", "我是一个有用的助手") == pytest.approx(expected)


def test_bleu4_bounds():
    assert tm.bleu4("the cat is on the mat", "the cat is on the mat") == 1.0
    assert tm.bleu4("", "something") == 0.0
    assert tm.bleu4("", "") == 1.0
    assert tm.bleu4("完全不同", "毫无关系") == 0.0


# ------------------------------------------------------------------------------ together


def test_score_answer_and_means():
    right = tm.score_answer("Paris", "Paris")
    wrong = tm.score_answer("London", "Paris")
    # One word: no bigram to match for ROUGE-2; BLEU uses the orders the texts have (effective order).
    assert right == tm.AnswerScores(1.0, 1.0, 1.0, 0.0, 1.0, 1.0)
    # Normalization forgives the full stop; BLEU counts it as a token (1 of 2 unigrams, no bigram).
    assert tm.score_answer("Paris.", "Paris").exact_match == 1.0 and tm.score_answer("Paris.", "Paris").bleu4 < 1.0
    assert wrong == tm.AnswerScores(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    means = tm.mean_scores([right, wrong])
    assert set(means) == set(tm.METRICS)
    assert means["exact_match"] == 0.5 and means["rouge1"] == 0.5
    assert tm.mean_scores([]) == dict.fromkeys(tm.METRICS)
