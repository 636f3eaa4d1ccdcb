"""LLaMA-Factory data folders: a `dataset_info.json` naming datasets, each an entry like

    "my_set": {"file_name": "my_set.json", "formatting": "sharegpt",
               "columns": {"messages": "conversations", "tools": "tools"},
               "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", ...},
               "split": "train", "num_samples": 1000}

`data.path` names the file (or its folder) and `data.dataset` the entry. An entry becomes what the
rest of the data layer takes: the file (or folder) it names, a format (alpaca, sharegpt, messages for
LLaMA-Factory's "openai", text for the pretraining layout whose only column is "prompt") and a
column mapping (LLaMA-Factory's prompt/query/response are instruction/input/output here; its tags
become role/content and user_tag... mappings). Entries that point to a hub, a loading script or a
cloud file, preference (ranking, chosen/rejected, kto_tag) and multimodal (images, videos, audios)
entries are refused with a message naming the entry.
"""

from __future__ import annotations

import difflib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError

INFO_NAME = "dataset_info.json"
REMOTE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
PREFERENCE_COLUMNS = ("chosen", "rejected", "kto_tag")
MEDIA_COLUMNS = ("images", "videos", "audios")
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}
TAG_COLUMNS = ("user_tag", "assistant_tag", "system_tag", "observation_tag", "function_tag")


@dataclass(frozen=True)
class DatasetEntry:
    """One usable entry of a dataset_info.json, in the data layer's terms."""

    name: str
    info: Path  # the dataset_info.json it came from
    path: Path  # the file or folder it names
    format: str
    columns: dict[str, str] = field(default_factory=dict)
    split: str = "train"
    num_samples: int = 0  # 0 = every row


@dataclass(frozen=True)
class EntrySummary:
    """An entry as a picker lists it: usable or not, and why not."""

    name: str
    file_name: str
    formatting: str
    reason: str = ""  # why it cannot be used here ("" = usable)

    @property
    def usable(self) -> bool:
        return not self.reason


def info_file(path: str | Path) -> Path | None:
    """The dataset_info.json that `path` is, or that the folder `path` holds; None otherwise."""
    p = Path(path).expanduser()
    if p.is_file() and p.name == INFO_NAME:
        return p
    if p.is_dir() and (p / INFO_NAME).is_file():
        return p / INFO_NAME
    return None


def read_dataset_info(info: Path) -> dict[str, dict[str, Any]]:
    try:
        raw = json.loads(info.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise UserError(f"{info}: cannot be read: {e.strerror or e}", "check the path and its permissions") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{info}: not valid JSON ({e})", "fix the file; it maps dataset names to their descriptions") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise UserError(f"{info}: expected an object of dataset entries", '{"name": {"file_name": "data.json", ...}, ...}')
    return raw


def list_entries(info: Path) -> list[EntrySummary]:
    """Every entry of the file, with the reason it cannot be used here when it cannot."""
    out = []
    for name, entry in read_dataset_info(info).items():
        try:
            _entry(info, name, entry)
            reason = ""
        except UserError as e:
            reason = e.message.split(f"entry '{name}': ", 1)[-1]
        out.append(EntrySummary(name, str(entry.get("file_name") or ""), str(entry.get("formatting") or "alpaca"), reason))
    return out


def resolve_entry(path: str | Path, name: str) -> DatasetEntry:
    """The entry `name` of the dataset_info.json at `path` (or in the folder `path`); UserError names
    the entry and what is wrong (unknown name, hub or script entry, preference or multimodal data)."""
    info = info_file(path)
    if info is None:
        raise UserError(
            f"data.dataset = \"{name}\" but {path} is not a {INFO_NAME} (nor a folder holding one)",
            f"set data.path to LLaMA-Factory's data folder or its {INFO_NAME}, or clear data.dataset",
        )
    entries = read_dataset_info(info)
    if name not in entries:
        close = difflib.get_close_matches(name, list(entries), n=1)
        did = f"; did you mean '{close[0]}'?" if close else ""
        raise UserError(f"{info}: no dataset entry '{name}'{did}", "one of " + ", ".join(list(entries)[:20]))
    return _entry(info, name, entries[name])


def _entry(info: Path, name: str, entry: dict[str, Any]) -> DatasetEntry:
    where = f"{info}: entry '{name}'"
    remote = [k for k in REMOTE_KEYS if entry.get(k)]
    if remote:
        key = remote[0]
        if key == "script_url":
            raise UserError(f"{where}: uses a loading script ({key} = {entry[key]!r}), which tuitune does not run",
                            "convert the data to a .jsonl, .json, .csv or .parquet file and name it in file_name")
        raise UserError(f"{where}: points to a remote dataset ({key} = {entry[key]!r}), not a file in this folder",
                        "set data.path to the hub name (and data.format / data.columns), or download it into the folder")
    columns = entry.get("columns") or {}
    tags = entry.get("tags") or {}
    if not isinstance(columns, dict) or not isinstance(tags, dict):
        raise UserError(f"{where}: 'columns' and 'tags' must be objects", '"columns": {"prompt": "instruction", ...}')
    preference = [c for c in PREFERENCE_COLUMNS if columns.get(c)]
    if entry.get("ranking") or preference:
        what = "ranking = true" if entry.get("ranking") else "columns " + ", ".join(preference)
        raise UserError(f"{where}: is preference data ({what}), for DPO, ORPO, KTO or reward models",
                        "supervised fine-tuning takes demonstrations: an alpaca or sharegpt entry without chosen/rejected")
    media = [c for c in MEDIA_COLUMNS if columns.get(c)]
    if media:
        raise UserError(f"{where}: is multimodal ({', '.join(media)} columns): only text is supported", "use a text-only entry")
    file_name = entry.get("file_name")
    if not isinstance(file_name, str) or not file_name.strip():
        raise UserError(f"{where}: has no file_name", "name the data file (or folder) next to dataset_info.json in file_name")
    target = (info.parent / file_name).resolve()
    if not target.exists():
        raise UserError(f"{where}: file_name '{file_name}' not found in {info.parent}", "check the name, or put the file there")
    fmt, mapped = _format_and_columns(where, str(entry.get("formatting") or "alpaca"), columns, tags)
    num_samples = entry.get("num_samples") or 0
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 0:
        raise UserError(f"{where}: num_samples must be a whole number of rows", '"num_samples": 1000')
    split = entry.get("split") or "train"
    if not isinstance(split, str):
        raise UserError(f"{where}: split must be a string", '"split": "train" (or "train[:1000]")')
    return DatasetEntry(name, info, target, fmt, mapped, split, num_samples)


def _format_and_columns(where: str, formatting: str, columns: dict[str, Any], tags: dict[str, Any]) -> tuple[str, dict[str, str]]:
    mapped: dict[str, str] = {}

    def put(std: str, theirs: Any) -> None:
        if isinstance(theirs, str) and theirs and theirs != std:
            mapped[std] = theirs

    if formatting == "alpaca":
        given = {k for k, v in columns.items() if v}
        if given == {"prompt"}:  # LLaMA-Factory's pretraining layout: one text column
            put("text", columns["prompt"])
            return "text", mapped
        for theirs_key, std in ALPACA_COLUMNS.items():
            put(std, columns.get(theirs_key))
        put("tools", columns.get("tools"))
        return "alpaca", mapped
    if formatting in ("sharegpt", "openai"):
        fmt = "sharegpt" if formatting == "sharegpt" else "messages"
        put(fmt if fmt == "messages" else "conversations", columns.get("messages"))
        put("system", columns.get("system"))
        put("tools", columns.get("tools"))
        role, content = tags.get("role_tag"), tags.get("content_tag")
        if isinstance(role, str) and role not in ("role", "from"):
            mapped["role"] = role
        if isinstance(content, str) and content not in ("content", "value"):
            mapped["content"] = content
        for tag in TAG_COLUMNS:
            if isinstance(tags.get(tag), str) and tags[tag]:
                mapped[tag] = tags[tag]
        return fmt, mapped
    raise UserError(f"{where}: formatting '{formatting}' is not supported", "alpaca, sharegpt or openai")


def select_rows(items: list[Any], split: str, num_samples: int, seed: int) -> list[Any]:
    """The rows an entry's split and num_samples keep, as LLaMA-Factory takes them: a split such as
    "train[:1000]" or "train[10%:]" slices the rows; num_samples draws that many rows (seeded), each
    row once before any row is repeated."""
    if split and split != "train":
        from datasets import ReadInstruction

        try:
            ranges = ReadInstruction.from_spec(split).to_absolute({"train": len(items)})
        except (ValueError, AssertionError) as e:
            raise UserError(f"split '{split}': {e}", "a local file has one split, train; slice it like train[:1000] or train[:10%]") from None
        items = [x for r in ranges for x in items[r.from_ : r.to]]
    if num_samples and items:
        rng = random.Random(seed)
        order = list(range(len(items)))
        rng.shuffle(order)
        picks = order[:num_samples] + [rng.randrange(len(items)) for _ in range(max(0, num_samples - len(items)))]
        items = [items[i] for i in picks]
    return items
