"""How fast the data layer pages a big JSONL file. Prints figures; asserts nothing.

    PYTHONPATH=. python bench/data_preview.py [--rows 1000000] [--file /tmp/big.jsonl]

Writes the file (alpaca rows of varied length) unless it already exists with that many rows, then
times, each in this fresh process:
  first page      read_page(limit=50): what a viewer shows first
  estimate        the total row estimate that page carries (from the first megabyte)
  line count      count_rows(): the exact count, a full scan without parsing JSON
  deep page       read_page(offset=rows/2) after the count (seeks via remembered offsets)
  full load       load_examples(): every row parsed, normalized, checked for problems and duplicates
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def write_rows(path: Path, rows: int) -> None:
    rng = random.Random(0)
    words = "the a model data token train learn answer question tuitune tally small fast memory".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            q = " ".join(rng.choice(words) for _ in range(rng.randint(4, 30)))
            a = " ".join(rng.choice(words) for _ in range(rng.randint(4, 60)))
            f.write(json.dumps({"instruction": f"{i}: {q}?", "input": "", "output": a}) + "\n")


def timed(label: str, fn):
    start = time.perf_counter()
    result = fn()
    print(f"{label:<14} {time.perf_counter() - start:8.3f} s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--file", default=os.path.join(tempfile.gettempdir(), "tuitune-bench-1m.jsonl"))
    parser.add_argument("--skip-full-load", action="store_true")
    args = parser.parse_args()
    path = Path(args.file)
    if not path.exists() or sum(1 for _ in open(path, "rb")) != args.rows:
        timed("write file", lambda: write_rows(path, args.rows))
    print(f"file           {path} ({path.stat().st_size / 1e6:.0f} MB, {args.rows} rows)")

    start = time.perf_counter()
    from tuitune.core.data import count_rows, load_examples, read_page

    print(f"{'import':<14} {time.perf_counter() - start:8.3f} s")
    page = timed("first page", lambda: read_page(path, limit=50))
    print(f"{'estimate':<14} {page.total_rows} rows (exact: {page.total_exact}); page lines {page.rows[0].line}..{page.rows[-1].line}")
    total = timed("line count", lambda: count_rows(path))
    print(f"{'counted':<14} {total} rows")
    deep = timed("deep page", lambda: read_page(path, offset=args.rows // 2, limit=50))
    print(f"{'deep lines':<14} {deep.rows[0].line}..{deep.rows[-1].line}")
    if not args.skip_full_load:
        data = timed("full load", lambda: load_examples(path))
        print(f"{'loaded':<14} {len(data.examples)} examples, {len(data.problems)} problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
