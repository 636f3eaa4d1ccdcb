"""Preference data and multimodal rows: recognized and refused with one message saying what they are
and what is taken instead, not one "no assistant turn" per row; in every file kind."""

from __future__ import annotations

import pytest
from data_files import KINDS, write_rows

from tuitune.core.data import load_examples, read_page

PREFERENCE = {
    "alpaca (LLaMA-Factory ranking)": [{"instruction": f"Q{i}", "input": "", "chosen": "good", "rejected": "bad"} for i in range(30)],
    "trl prompt/chosen/rejected": [{"prompt": f"Q{i}", "chosen": "good", "rejected": "bad"} for i in range(30)],
    "trl implicit prompt": [
        {"chosen": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "good"}],
         "rejected": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "bad"}]}
        for i in range(30)
    ],
    "sharegpt ranking": [
        {"conversations": [{"from": "human", "value": f"Q{i}"}], "chosen": {"from": "gpt", "value": "good"},
         "rejected": {"from": "gpt", "value": "bad"}}
        for i in range(30)
    ],
}
MULTIMODAL = {
    "images column": [{"messages": [{"role": "user", "content": f"<image>What is {i}?"}, {"role": "assistant", "content": "A cat."}],
                       "images": [f"img/{i}.png"]} for i in range(30)],
    "image parts": [{"messages": [
        {"role": "user", "content": [{"type": "image", "image": f"img/{i}.png"}, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]} for i in range(30)],
}


def one_problem(data):
    assert data.examples == [] and len(data.problems) == 1, [str(p) for p in data.problems[:3]]
    return data.problems[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(PREFERENCE))
def test_preference_data_is_refused_with_one_message(tmp_path, kind, name):
    path = write_rows(tmp_path / f"pref.{kind}", PREFERENCE[name])
    problem = one_problem(load_examples(path))
    assert problem.line is None
    assert problem.message.startswith("this is preference data (a chosen and a rejected answer per row")
    assert "supervised fine-tuning takes alpaca, sharegpt, messages, text or prompt-completion rows" in problem.message
    assert problem.message.endswith("file skipped")


def test_mapping_the_chosen_answer_trains_on_it(tmp_path):
    path = write_rows(tmp_path / "pref.jsonl", PREFERENCE["alpaca (LLaMA-Factory ranking)"])
    data = load_examples(path, columns={"output": "chosen"})
    assert len(data.examples) == 30 and data.examples[0].messages[-1] == {"role": "assistant", "content": "good"}


@pytest.mark.parametrize("kind", KINDS)
def test_kto_labels_are_unpaired_preference(tmp_path, kind):
    rows = [{"prompt": f"Q{i}", "completion": "an answer", "label": i % 2 == 0} for i in range(20)]
    problem = one_problem(load_examples(write_rows(tmp_path / f"kto.{kind}", rows)))  # CSV: the label is "true" text
    assert problem.message.startswith("this is unpaired preference data (a true/false 'label' rating each answer, for KTO)")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(MULTIMODAL))
def test_multimodal_data_is_refused_with_one_message(tmp_path, kind, name):
    problem = one_problem(load_examples(write_rows(tmp_path / f"mm.{kind}", MULTIMODAL[name])))
    assert problem.message.startswith("this is multimodal data (")
    assert "only text is supported" in problem.message and problem.message.endswith("file skipped")
    assert ("an 'images' column" if name == "images column" else "image, audio or video parts") in problem.message


def test_a_few_image_rows_in_a_text_dataset_are_each_skipped(tmp_path):
    text_rows = [{"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "A"}]} for i in range(5)]
    rows = text_rows[:2] + [MULTIMODAL["images column"][0], MULTIMODAL["image parts"][0]] + text_rows[2:]
    data = load_examples(write_rows(tmp_path / "mixed.jsonl", rows))
    assert [e.line for e in data.examples] == [1, 2, 5, 6, 7]
    assert [(p.line, p.message) for p in data.problems] == [
        (3, "has 'images': only text is supported; row skipped"),
        (4, "has image, audio or video content parts: only text is supported; row skipped"),
    ]


def test_empty_media_columns_do_not_count(tmp_path):
    rows = [{"instruction": "Q", "output": "A", "images": []}, {"instruction": "R", "output": "B", "images": None}]
    data = load_examples(write_rows(tmp_path / "d.jsonl", rows))
    assert data.problems == [] and len(data.examples) == 2


def test_the_page_carries_the_refusal_too(tmp_path):
    path = write_rows(tmp_path / "pref.jsonl", PREFERENCE["trl prompt/chosen/rejected"])
    page = read_page(path)
    assert page.rows == [] and page.problems[0].message.startswith("this is preference data")
