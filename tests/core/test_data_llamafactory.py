"""LLaMA-Factory data folders: data.path names dataset_info.json (or its folder) and data.dataset an entry;
file_name, formatting, columns, tags, split and num_samples are used; hub, script, ranking and
multimodal entries are refused naming the entry."""

from __future__ import annotations

import pytest
from llamafactory_folder import INFO, write_llamafactory_folder
from tiny_model import build_tokenizer

from tuitune.core.data import count_rows, load_examples, prepare_training_data, read_page, row_at_line
from tuitune.core.data.dataset_info import list_entries, resolve_entry, select_rows
from tuitune.core.errors import UserError
from tuitune.core.recipe import Recipe


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_llamafactory_folder(tmp_path_factory.mktemp("lf") / "data")


def test_an_alpaca_entry_with_renamed_columns(folder):
    for path in (folder, folder / "dataset_info.json"):
        data = load_examples(path, dataset="qa")
        assert data.format == "alpaca" and data.problems == [] and len(data.examples) == 20
        assert data.examples[3].messages == [{"role": "user", "content": "What is 3 plus 3?"}, {"role": "assistant", "content": "6."}]


def test_a_sharegpt_entry_with_tools(folder):
    data = load_examples(folder, dataset="weather_tools")
    assert data.format == "sharegpt" and data.problems == []
    ex = data.examples[0]
    assert ex.tools[0]["function"]["name"] == "get_weather"
    assert ex.messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}


def test_tags_name_the_keys_and_speakers(folder):
    openai = load_examples(folder, dataset="chat_openai")
    assert openai.format == "sharegpt" and openai.problems == []
    assert [m["role"] for m in openai.examples[0].messages] == ["system", "user", "assistant"]
    own = load_examples(folder, dataset="own_speakers")
    assert own.problems == [] and own.examples[1].messages == [
        {"role": "user", "content": "Name 1?"}, {"role": "assistant", "content": "Tally 1."}
    ]


def test_the_pretraining_layout_is_plain_text(folder):
    data = load_examples(folder, dataset="pretrain")
    assert data.format == "text" and [e.text for e in data.examples][:2] == ["Document number 0. It is short.",
                                                                           "Document number 1. It is short."]


def test_paging_counting_and_lines_through_an_entry(folder):
    page = read_page(folder, dataset="qa", offset=10, limit=3)
    assert page.dataset == "qa" and [r.line for r in page.rows] == [52, 57, 62] and page.total_rows == 20
    assert count_rows(folder, dataset="weather_tools") == 24
    assert row_at_line(folder, 57, dataset="qa") == 11


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("from_hub", "entry 'from_hub': points to a remote dataset (hf_hub_url = 'someone/some_dataset'), not a file in this folder"),
        ("scripted", "entry 'scripted': uses a loading script (script_url = 'my_script'), which tuitune does not run"),
        ("ranked", "entry 'ranked': is preference data (ranking = true), for DPO, ORPO, KTO or reward models"),
        ("with_images", "entry 'with_images': is multimodal (images columns): only text is supported"),
        ("gone", "entry 'gone': file_name 'nowhere.json' not found in"),
        ("qa_frist_5", "no dataset entry 'qa_frist_5'; did you mean 'qa_first_5'?"),
    ],
)
def test_refused_entries_are_named(folder, name, message):
    with pytest.raises(UserError) as e:
        load_examples(folder, dataset=name)
    assert message in e.value.message


def test_a_folder_without_an_entry_lists_the_usable_ones(folder, tmp_path):
    with pytest.raises(UserError) as e:
        load_examples(folder)
    assert "is a LLaMA-Factory data folder (dataset_info.json): choose one of its datasets" in e.value.message
    assert e.value.hint.startswith("set data.dataset (or --dataset) to one of: qa, weather_tools, chat_openai")
    assert "from_hub" not in e.value.hint
    with pytest.raises(UserError, match="is not a dataset_info.json"):
        load_examples(folder / "qa.json", dataset="qa")


def test_a_parent_folder_reads_the_files_not_the_description(folder):
    data = load_examples(folder.parent)  # dataset_info.json is inside, one level down: it is not data
    assert not any(p.file == "data/dataset_info.json" for p in data.problems)
    assert "data/chat.jsonl" in {e.file for e in data.examples}


def test_list_entries_says_why_an_entry_cannot_be_used(folder):
    entries = {e.name: e for e in list_entries(folder / "dataset_info.json")}
    assert list(entries) == list(INFO)
    assert entries["qa"].usable and entries["weather_tools"].formatting == "sharegpt"
    assert not entries["ranked"].usable and entries["ranked"].reason.startswith("is preference data")


def test_split_and_num_samples(folder):
    entry = resolve_entry(folder, "qa_first_5")
    assert entry.split == "train[:5]" and select_rows(list(range(20)), entry.split, 0, 1) == [0, 1, 2, 3, 4]
    assert select_rows(list(range(20)), "train[50%:]", 0, 1) == list(range(10, 20))
    sampled = select_rows(list(range(20)), "train", 25, seed=3)
    assert len(sampled) == 25 and set(sampled) == set(range(20))  # every row once before repeats
    assert sampled == select_rows(list(range(20)), "train", 25, seed=3)
    with pytest.raises(UserError, match="split 'test'"):
        select_rows(list(range(5)), "test", 0, 1)


def test_prepare_uses_the_entry(folder):
    tok = build_tokenizer()
    recipe = Recipe()
    recipe.data.path = str(folder)
    recipe.data.dataset = "qa_first_5"
    recipe.data.cutoff_len = 128
    prepared = prepare_training_data(recipe, tok)
    assert prepared.examples == 5 and "dataset 'qa_first_5': 5 of 20 usable rows (split train[:5], num_samples all)" in prepared.notes
    recipe.data.dataset = "qa_sampled"
    assert prepare_training_data(recipe, tok).examples == 25
    recipe.data.dataset, recipe.data.cutoff_len = "weather_tools", 1024
    notes = prepare_training_data(recipe, tok).notes
    assert any(n.startswith("tools: the chat template does not render tools") for n in notes)
