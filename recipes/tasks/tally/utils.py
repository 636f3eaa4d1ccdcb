"""Rows of the Tally tasks, read from JSONL files named relative to this folder (lm-eval's
`custom_dataset` hook), so `--include recipes/tasks/tally` works from any working folder."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def local_jsonl(data_files=None, **_):
    import datasets

    return datasets.load_dataset("json", data_files={split: str(HERE / name) for split, name in (data_files or {}).items()})
