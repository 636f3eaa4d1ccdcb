"""A LLaMA-Factory `data/` folder written for tests: a dataset_info.json with usable entries (alpaca with
renamed columns, sharegpt with tools and tags, the OpenAI layout, pretraining text, a sliced and a
sampled entry) and entries tuitune refuses (hub, script, ranking, multimodal, a missing file)."""

from __future__ import annotations

import json
from pathlib import Path

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def qa_rows(n: int) -> list[dict]:
    return [{"question": f"What is {i} plus {i}?", "context": "", "answer": f"{2 * i}."} for i in range(n)]


def tool_rows(n: int) -> list[dict]:
    cities = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Kyiv", "Quito", "Riga"]
    rows = []
    for i in range(n):
        city = cities[i % len(cities)] + ("" if i < len(cities) else f" {i}")
        rows.append({
            "conversations": [
                {"from": "human", "value": f"Weather in {city}?"},
                {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}})},
                {"from": "observation", "value": "sunny"},
                {"from": "gpt", "value": f"It is sunny in {city}."},
            ],
            "tools": json.dumps([WEATHER]),
        })
    return rows


INFO = {
    "qa": {"file_name": "qa.json", "columns": {"prompt": "question", "query": "context", "response": "answer"}},
    "weather_tools": {
        "file_name": "tools.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "chat_openai": {
        "file_name": "chat.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"},
    },
    "own_speakers": {
        "file_name": "own.json",
        "formatting": "sharegpt",
        "columns": {"messages": "dialog"},
        "tags": {"role_tag": "who", "content_tag": "said", "user_tag": "Q", "assistant_tag": "A"},
    },
    "pretrain": {"file_name": "pt.json", "columns": {"prompt": "text"}},
    "qa_first_5": {"file_name": "qa.json", "split": "train[:5]", "columns": {"prompt": "question", "query": "context", "response": "answer"}},
    "qa_sampled": {"file_name": "qa.json", "num_samples": 25, "columns": {"prompt": "question", "query": "context", "response": "answer"}},
    "from_hub": {"hf_hub_url": "someone/some_dataset"},
    "scripted": {"script_url": "my_script"},
    "ranked": {"file_name": "qa.json", "ranking": True, "columns": {"prompt": "question", "chosen": "answer", "rejected": "answer"}},
    "with_images": {"file_name": "qa.json", "columns": {"prompt": "question", "response": "answer", "images": "images"}},
    "gone": {"file_name": "nowhere.json"},
}


def write_llamafactory_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset_info.json").write_text(json.dumps(INFO, indent=2))
    (folder / "qa.json").write_text(json.dumps(qa_rows(20), indent=2))
    (folder / "tools.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tool_rows(24)))
    chat = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Hi {i}"},
                          {"role": "assistant", "content": f"Hello {i}."}]} for i in range(6)]
    (folder / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chat))
    own = [{"dialog": [{"who": "Q", "said": f"Name {i}?"}, {"who": "A", "said": f"Tally {i}."}]} for i in range(4)]
    (folder / "own.json").write_text(json.dumps(own))
    (folder / "pt.json").write_text(json.dumps([{"text": f"Document number {i}. It is short."} for i in range(5)]))
    return folder
