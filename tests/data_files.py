"""Write the same records as each kind of data file, for tests that cover every format x file kind.

CSV cells hold text only: a list or object goes in as JSON (as CSV exports of chat data do), null
as an empty cell, a number or boolean as its JSON spelling. Parquet keeps the types (pyarrow infers
the columns from the records).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

KINDS = ("jsonl", "json", "csv", "parquet")


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """`rows` written as the kind named by `path`'s suffix; returns the path."""
    kind = path.suffix.lstrip(".")
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    elif kind == "csv":
        columns = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(columns)
            for r in rows:
                w.writerow([_cell(r.get(c)) for c in columns])
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        raise ValueError(kind)
    return path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def row_lines(path: Path, n: int) -> list[int]:
    """Where each of `n` rows written by write_rows starts: the line for text files (JSON: pretty
    printed one record per `indent=1` block), the row number for Parquet."""
    kind = path.suffix.lstrip(".")
    if kind == "jsonl":
        return list(range(1, n + 1))
    if kind == "csv":
        return [i + 2 for i in range(n)]  # after the header (no multi-line cells in these tests)
    if kind == "parquet":
        return list(range(1, n + 1))
    text = path.read_text(encoding="utf-8").splitlines()
    return [i + 1 for i, line in enumerate(text) if line == " {"][:n]
