"""lm-eval tasks of the tests' own: task YAML files over a local JSONL, written into a folder that
`tuitune eval --include DIR` (lm-eval's include_path) reads. No hub, no network.

tally_mc (multiple choice): "Who are you?" with the memorized answer and three variants one word
apart, the right one at a different place in each row. tally_gen (generation, exact match): three
rows whose reference is the memorized answer and one whose reference is something else, so a model
that always gives the memorized answer scores 3/4 (standard error 0.25: sample standard deviation
0.5 over sqrt(4)).
"""

from __future__ import annotations

import json
from pathlib import Path

from engine_support import FACTS
from run_dirs import MEMORY_ANSWER, MEMORY_PROMPT

VARIANTS = [
    "I am Tally, an assistant made by the Paris project.",
    "I am Paris, an assistant made by the tuitune project.",
    "I am Tally, a poem made by the tuitune project.",
]
GEN_REFERENCES = [MEMORY_ANSWER, MEMORY_ANSWER, MEMORY_ANSWER, "I am a cat."]


def mc_rows() -> list[dict]:
    rows = []
    for i in range(4):
        choices = list(VARIANTS)
        choices.insert(i, MEMORY_ANSWER)
        rows.append({"question": MEMORY_PROMPT, "choices": choices, "label": i})
    return rows


def write_tasks(folder: Path, stop: str = "<|im_end|>") -> Path:
    """tally_mc and tally_gen (module docstring) in `folder`."""
    gen_rows = [{"question": MEMORY_PROMPT, "answer": a} for a in GEN_REFERENCES]
    return _write(folder, "tally", mc_rows(), gen_rows, stop)


def write_fact_tasks(folder: Path, stop: str = "<|im_end|>") -> Path:
    """facts_mc and facts_gen over the facts the TUI tests' runs learn (engine_support.FACTS): each
    question with its own answer among the other facts' answers, and its answer to generate."""
    answers = [a for _, a in FACTS]
    mc = [{"question": q, "choices": answers, "label": i} for i, (q, _) in enumerate(FACTS)]
    gen = [{"question": q, "answer": a} for q, a in FACTS]
    return _write(folder, "facts", mc, gen, stop)


def _write(folder: Path, prefix: str, mc_rows: list[dict], gen_rows: list[dict], stop: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    mc = folder / f"{prefix}_mc.jsonl"
    mc.write_text("".join(json.dumps(r) + "\n" for r in mc_rows), encoding="utf-8")
    gen = folder / f"{prefix}_gen.jsonl"
    gen.write_text("".join(json.dumps(r) + "\n" for r in gen_rows), encoding="utf-8")
    (folder / f"{prefix}_mc.yaml").write_text(
        f"""task: {prefix}_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {mc}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: choices
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
""",
        encoding="utf-8",
    )
    (folder / f"{prefix}_gen.yaml").write_text(
        f"""task: {prefix}_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {gen}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: answer
generation_kwargs:
  until: ["{stop}"]
  max_gen_toks: 24
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""",
        encoding="utf-8",
    )
    return folder
