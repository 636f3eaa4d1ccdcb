"""The LLaMA-Factory `data/` folder in tests/data/llamafactory: a dataset_info.json with usable entries
(qa: alpaca with renamed columns; weather_tools: sharegpt with tools; chat_openai: the OpenAI layout
through tags; own_speakers: its own speaker names; pretrain: text; qa_first_5 / qa_sampled: split and
num_samples) and entries tuitune refuses (from_hub, scripted, ranked, with_images, gone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "data" / "llamafactory"
INFO = json.loads((FOLDER / "dataset_info.json").read_text())


def write_llamafactory_folder(folder: Path) -> Path:
    """A copy of the folder at `folder` (tests that write next to it work on their own copy)."""
    shutil.copytree(FOLDER, folder)
    return folder
