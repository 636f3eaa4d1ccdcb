"""Rows supervised fine-tuning cannot train as they are: preference data and multimodal rows.

A file of them is recognized from its first rows and refused with one message saying what it is
and what is taken instead (not as one "no assistant turn" per row); a few such rows inside a text
dataset are each skipped with that reason.
"""

from __future__ import annotations

import json
from typing import Any

from tuitune.core.data.row_fields import is_null

MEDIA_COLUMNS = ("images", "image", "videos", "video", "audios", "audio")
MEDIA_PART_TYPES = ("image", "image_url", "input_image", "video", "video_url", "audio", "input_audio", "audio_url", "file")
SFT_FORMATS = "alpaca, sharegpt, messages, text or prompt-completion rows"


def media_column(record: dict[str, Any]) -> str | None:
    """The name of a column holding images, video or audio (a non-empty value), if any."""
    for key in MEDIA_COLUMNS:
        value = record.get(key)
        if not is_null(value) and value not in ("", [], {}):
            return key
    return None


def media_part(content: Any) -> str | None:
    """The type of the first image/audio/video part of a message's content parts, if any."""
    if not isinstance(content, list):
        return None
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            if kind in MEDIA_PART_TYPES or (kind is None and any(k in part for k in ("image", "image_url", "audio"))):
                return str(kind or "image")
    return None


BOOLEAN_WORDS = (True, False, "true", "false", "True", "False", "TRUE", "FALSE")
# A record with none of these keys is none of the kinds below (the check every row goes through first).
_SIGNS = frozenset(("chosen", "rejected", "kto_tag", "label", "messages", "conversations", *MEDIA_COLUMNS))


def row_kind(record: dict[str, Any], parse_json: bool = False) -> str | None:
    """"preference", "unpaired-preference" or "multimodal" when a (mapped) record is one of those.
    `parse_json`: also look inside turns stored as JSON text (CSV cells; costly, for the first rows)."""
    if _SIGNS.isdisjoint(record):
        return None
    present = {k for k, v in record.items() if not is_null(v)}
    if {"chosen", "rejected"} <= present:
        return "preference"
    if "kto_tag" in present or ({"prompt", "completion", "label"} <= present and record.get("label") in BOOLEAN_WORDS):
        return "unpaired-preference"
    if media_column(record):
        return "multimodal"
    for key in ("messages", "conversations"):
        turns = record.get(key)
        if parse_json and isinstance(turns, str) and turns.lstrip().startswith("["):
            try:
                turns = json.loads(turns)
            except (ValueError, RecursionError):
                continue
        if isinstance(turns, list) and any(isinstance(t, dict) and media_part(t.get("content")) for t in turns[:8]):
            return "multimodal"
    return None


def file_kind_message(kind: str, records: list[dict[str, Any]]) -> str:
    """The one message for a file whose rows are `kind`; ends with "; file skipped"."""
    if kind == "preference":
        return (
            "this is preference data (a chosen and a rejected answer per row, for DPO, ORPO or reward models); "
            f"supervised fine-tuning takes {SFT_FORMATS}. To train on the chosen answers only, map them, e.g. "
            "--columns output=chosen (data.columns = {output = \"chosen\"}); file skipped"
        )
    if kind == "unpaired-preference":
        label = "kto_tag" if any("kto_tag" in r for r in records) else "label"
        return (
            f"this is unpaired preference data (a true/false '{label}' rating each answer, for KTO); supervised "
            f"fine-tuning takes {SFT_FORMATS}, and would also learn the answers rated bad; file skipped"
        )
    column = next((c for r in records if (c := media_column(r))), None)
    what = f"an '{column}' column" if column else "image, audio or video parts in the messages"
    return (
        f"this is multimodal data ({what}): only text is supported; use text-only rows, or drop the media "
        "columns and parts; file skipped"
    )


def row_kind_problem(kind: str, record: dict[str, Any]) -> str:
    """Why one such row inside a text dataset is skipped (ends with "; row skipped")."""
    if kind == "multimodal":
        column = media_column(record)
        what = f"'{column}'" if column else "image, audio or video content parts"
        return f"has {what}: only text is supported; row skipped"
    return f"is {kind.replace('-', ' ')} data (chosen/rejected answers or a good/bad label), not a demonstration; row skipped"


def majority_kind(records: list[dict[str, Any]]) -> str | None:
    """The kind most of the first records are, when it is at least half of them."""
    if not records:
        return None
    counts: dict[str, int] = {}
    for record in records:
        kind = row_kind(record, parse_json=True)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    best = max(counts, key=lambda k: counts[k], default=None)
    return best if best and counts[best] * 2 >= len(records) else None
