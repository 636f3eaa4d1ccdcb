"""A model, tokenizer or adapter that cannot be loaded, said in one line naming the folder and the file.

Truncated weights, an unknown model_type or a broken config.json make transformers and peft raise
whatever their internals hit (SafetensorError, ValueError, OSError, KeyError...). `loading(what, path)`
wraps one load: the folder's files are checked first (core.file_checks names a cut-off file exactly),
and any failure becomes a UserError with the reason and what would help. Out of memory passes through
untouched: the trainer reports it as such.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tuitune.core.errors import UserError
from tuitune.core.file_checks import folder_problem

RECOPY = "copy or download it again (a file still being written when it was copied ends short)"


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def check_files(what: str, folder: Path, suffixes: tuple[str, ...] | None = None) -> None:
    """UserError naming a damaged weights/config file in `folder` (a local folder only; `suffixes`:
    check only files ending so)."""
    if folder.is_dir():
        problem = folder_problem(folder, suffixes)
        if problem:
            raise UserError(f"cannot load {what} from {folder}: {problem}", RECOPY)


def describe_load_error(e: BaseException, what: str, where: str) -> UserError:
    """The one-line error for a failed load of `what` from `where`."""
    text = _first_line(e)
    if isinstance(e, ImportError):
        return UserError(f"cannot load {what} from {where}: {text}", "install the missing package")
    if "trust_remote_code" in str(e):
        return UserError(f"{where} needs its own code to load", "set model.trust_remote_code = true if you trust the repository")
    unknown = re.search(r"model type `([^`]*)`", text)
    if unknown and "does not recognize" in text:
        from importlib.metadata import version

        return UserError(
            f"cannot load {what} from {where}: its config.json has model_type '{unknown.group(1)}', "
            f"which transformers {version('transformers')} does not know",
            "check model_type in config.json, or upgrade transformers (pip install -U transformers)",
        )
    if "not a valid JSON file" in text or type(e).__name__ == "JSONDecodeError":
        return UserError(f"cannot load {what} from {where}: a configuration file is not valid JSON ({text})", RECOPY)
    if type(e).__name__ == "SafetensorError" or "deserializ" in text:
        return UserError(f"cannot load {what} from {where}: a weights file is damaged or cut off ({text})", RECOPY)
    return UserError(
        f"cannot load {what} from {where}: {type(e).__name__}: {text}"[:600],
        "check that the folder holds a complete model saved with save_pretrained()",
    )


@contextmanager
def loading(what: str, where: str | Path, check: bool | tuple[str, ...] = True) -> Iterator[None]:
    """Check a local folder's files (all of them, those with the suffixes `check` lists, or none when it
    is False), then run the load; failures become one UserError."""
    if check:
        check_files(what, Path(where), None if check is True else check)
    try:
        yield
    except UserError:
        raise
    except Exception as e:
        if type(e).__name__ == "OutOfMemoryError":  # torch's; the trainer has its own words for it
            raise
        raise describe_load_error(e, what, str(where)) from e
