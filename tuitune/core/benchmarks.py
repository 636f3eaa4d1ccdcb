"""Benchmarks before and after fine-tuning, scored by EleutherAI's lm-evaluation-harness (lm-eval).

Did general ability survive the fine-tuning (catastrophic forgetting), in English and Chinese?
`run_benchmarks(run, ["mmlu", "cmmlu", "ceval-valid", "gsm8k"])` loads the run once and lets
lm-eval score each task twice in this process: the tuned model, then the base (the same weights
with the adapter switched off, as `chat --compare` does; a full or freeze run's base is loaded
after the tuned model is released). Each task's metrics come back before and after, each with
lm-eval's standard error; `eval/benchmarks.json` in the run keeps the report and lm-eval's raw
results.

Tasks are lm-eval's: names of its built-in tasks, groups and tags (C-Eval is `ceval-valid`, CMMLU
`cmmlu`), of task YAML files in folders given as `include` (lm-eval's include_path), or the paths of
such files; a task YAML over a local JSONL makes a benchmark of your own. lm-eval fetches a built-in task's data from the Hugging Face
hub on first use; `datasets` caches it (~/.cache/huggingface/datasets), so later runs work offline.

Module level stays light (the TUI imports the task list); lm-eval, torch and the model adapter
(`benchmark_lm.RunLM`) are imported inside the functions.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.evaluate import Cancelled, free_memory, json_safe, save_report
from tuitune.core.progress import ProgressFn, report

REPORT_FILE = "benchmarks.json"
DEFAULT_BATCH_SIZE = 8
# lm-eval's standard errors of mean metrics (accuracy, exact match) are analytic; others (BLEU,
# F1 over a corpus) are bootstrapped. Its CLI's 100,000 resamples take minutes on such metrics.
BOOTSTRAP_ITERS = 1000


@dataclass(frozen=True)
class KnownTask:
    """A popular lm-eval task, offered by name in the TUI's task picker."""

    name: str
    about: dict[str, str]

    def text(self, lang: str = "en") -> str:
        return self.about.get(lang) or self.about["en"]


KNOWN_TASKS = (
    KnownTask("mmlu", {"en": "MMLU: 57 subjects, English, multiple choice", "zh": "MMLU：57 个学科，英文选择题"}),
    KnownTask("cmmlu", {"en": "CMMLU: 67 subjects, Chinese, multiple choice", "zh": "CMMLU：67 个学科，中文选择题"}),
    KnownTask(
        "ceval-valid",
        {"en": "C-Eval (validation split): 52 subjects, Chinese, multiple choice", "zh": "C-Eval（验证集）：52 个学科，中文选择题"},
    ),
    KnownTask(
        "gsm8k",
        {"en": "GSM8K: grade-school maths, generated answers (slower)", "zh": "GSM8K：小学数学应用题，生成式作答（较慢）"},
    ),
    KnownTask("arc_challenge", {"en": "ARC-Challenge: science questions", "zh": "ARC-Challenge：科学选择题"}),
    KnownTask("hellaswag", {"en": "HellaSwag: commonsense sentence endings", "zh": "HellaSwag：常识推理（续写句子）"}),
    KnownTask("truthfulqa_mc2", {"en": "TruthfulQA (MC2): avoiding common falsehoods", "zh": "TruthfulQA（MC2）：是否复述常见谬误"}),
    KnownTask("winogrande", {"en": "WinoGrande: pronoun resolution", "zh": "WinoGrande：代词指代消解"}),
)

_SEPARATORS = re.compile(r"[,\s]+")
_NOT_METRICS = {"alias", "name", "sample_len", "sample_count", " "}


def parse_task_names(value: str | list[str]) -> list[str]:
    """Task names from "mmlu, gsm8k" (or a list), in order, without repeats."""
    parts = value if isinstance(value, list) else _SEPARATORS.split(value)
    names: list[str] = []
    for part in parts:
        for name in _SEPARATORS.split(part.strip()):
            if name and name not in names:
                names.append(name)
    return names


# ------------------------------------------------------------------------------ the report


@dataclass
class MetricScore:
    """One metric of one task, before (base) and after (tuned), each with lm-eval's standard error."""

    metric: str  # acc, acc_norm, exact_match, ...
    filter: str  # lm-eval's answer filter: none, strict-match, flexible-extract, ...
    base: float | None
    base_stderr: float | None
    tuned: float | None
    tuned_stderr: float | None
    higher_is_better: bool = True

    @property
    def change(self) -> float | None:
        if self.base is None or self.tuned is None:
            return None
        return self.tuned - self.base

    @property
    def label(self) -> str:
        return self.metric if self.filter in ("none", "") else f"{self.metric} ({self.filter})"


@dataclass
class TaskScore:
    task: str
    metrics: list[MetricScore]
    samples: int  # examples scored (per model); a group's is the sum over its tasks
    fewshot: int | None
    subtasks: int = 0  # tasks inside a group (0 for a plain task)

    @property
    def primary(self) -> MetricScore | None:
        return self.metrics[0] if self.metrics else None


@dataclass
class BenchmarkReport:
    run: str
    method: str
    base_model: str
    tasks: list[TaskScore]
    limit: int | None
    num_fewshot: int | None
    chat_prompts: bool
    include: list[str] = field(default_factory=list)
    lm_eval_version: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    path: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # lm-eval's own results per model

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for task, out in zip(self.tasks, data["tasks"], strict=True):
            for metric, m in zip(task.metrics, out["metrics"], strict=True):
                m["change"] = metric.change
        return json_safe(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)


# ------------------------------------------------------------------------------ tasks


def task_files(names: list[str], include: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(names, include) with task YAML files given by path turned into their task name + folder."""
    out, folders = [], list(include or [])
    for name in names:
        if not name.endswith((".yaml", ".yml")):
            out.append(name)
            continue
        path = Path(name).expanduser()
        if not path.is_file():
            raise UserError(f"task file {name}: no such file", "give an lm-eval task YAML file, or a task name")
        from lm_eval.tasks._index import TaskIndex  # lm-eval's own reading of a task file

        try:
            entry = TaskIndex.entry_from_path(path)
        except Exception as e:  # noqa: BLE001 - a broken YAML can raise anything
            raise UserError(f"task file {name}: {type(e).__name__}: {_first_line(e)}", "check the YAML") from e
        if entry is None:
            raise UserError(f"task file {name} names no task", "an lm-eval task YAML has a `task: NAME` line")
        out.append(entry.name)
        if str(path.resolve().parent) not in [str(Path(f).expanduser().resolve()) for f in folders]:
            folders.append(str(path.resolve().parent))
    return out, folders


def task_manager(names: list[str], include: list[str] | None = None) -> Any:
    """lm-eval's TaskManager that knows every name, or a UserError naming the unknown ones.

    Folders in `include` are indexed first; lm-eval's ~15,000 built-in tasks (several seconds to
    index) only when a name is not found there.
    """
    if not names:
        raise UserError("no benchmark task given", "name lm-eval tasks, e.g. --tasks mmlu,cmmlu,ceval-valid,gsm8k")
    paths = []
    for folder in include or []:
        path = Path(folder).expanduser()
        if not path.exists():
            raise UserError(f"--include {folder}: no such folder", "give a folder holding lm-eval task YAML files")
        paths.append(str(path.resolve()))
    if paths:
        local = _index(tuple(paths), builtin=False)
        if all(n in local.all_tasks for n in names):
            return local
    manager = _index(tuple(paths), builtin=True)
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        first = unknown[0]
        close = difflib.get_close_matches(first, manager.all_tasks, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        where = f" or in {', '.join(paths)}" if paths else ""
        raise UserError(
            f"unknown lm-eval task{'s' if len(unknown) > 1 else ''} {', '.join(repr(u) for u in unknown)} "
            f"(not among lm-eval's tasks{where})",
            hint + "list them with: lm-eval ls tasks; a task of your own: a YAML file in a folder given with --include DIR",
        )
    return manager


@lru_cache(maxsize=4)
def _index(paths: tuple[str, ...], builtin: bool) -> Any:
    """One index per set of folders and process: indexing lm-eval's own tasks takes seconds."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths) or None, include_defaults=builtin)


def load_tasks(manager: Any, names: list[str]) -> list[Any]:
    """The tasks and groups, built (their data fetched on first use). UserError names the failing one."""
    built: list[Any] = []
    for name in names:
        try:
            loaded = manager.load([name])
        except (ConnectionError, OSError) as e:
            raise UserError(
                f"task '{name}': its data could not be fetched ({_first_line(e)})",
                "lm-eval downloads a task's data from the Hugging Face hub on first use and caches it; "
                "run once with network access (or copy ~/.cache/huggingface/datasets from a machine that has it)",
            ) from e
        except Exception as e:  # noqa: BLE001 - a broken task YAML can raise anything
            raise UserError(f"task '{name}' could not be loaded: {type(e).__name__}: {_first_line(e)}", "check its YAML") from e
        groups, tasks = loaded.get("groups") or {}, loaded["tasks"]
        if name in groups:
            built.append(groups[name])
        elif name in tasks:
            built.append(tasks[name])
        else:  # a tag: its tasks, each reported on its own
            built.extend(tasks.values())
    return built


# ------------------------------------------------------------------------------ the whole evaluation


def run_benchmarks(
    run_path: str | Path,
    tasks: list[str] | str,
    *,
    limit: int | None = None,
    num_fewshot: int | None = None,
    include: list[str] | None = None,
    chat_prompts: bool | None = None,
    batch_size: int | str = DEFAULT_BATCH_SIZE,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    device: str | None = None,
    write: bool = True,
) -> BenchmarkReport:
    """Score the run's tuned and base model on lm-eval tasks and write eval/benchmarks.json.

    limit: at most this many examples per task (None = all). num_fewshot: examples shown before
    each question (None = each task's default). chat_prompts: render prompts through the run's chat
    template (None = when the run trained on chat data, i.e. not data.format = "text" or
    data.template = "plain"). Task names and data are checked before the model loads.
    """
    import lm_eval

    from tuitune.core.runs import open_finished_run
    from tuitune.core.tuned import load_base_for, load_run_model

    start = time.perf_counter()
    names, include = task_files(parse_task_names(tasks), include)
    run = open_finished_run(run_path)
    cancel = cancel or threading.Event()
    report(progress, "tasks", f"finding {', '.join(names)} among lm-eval's tasks")
    manager = task_manager(names, include)
    report(progress, "data", "loading the tasks' data (lm-eval fetches it on first use)")
    built = load_tasks(manager, names)
    if chat_prompts is None:
        chat_prompts = run.recipe.data.format != "text" and run.recipe.data.template != "plain"
    notes: list[str] = []  # remarks beyond the report's fields (chat_prompts, limit, ...)
    if limit is not None:
        notes.append(f"at most {limit} examples per task: a quick look, not a published figure")
    if run.method == "qlora":
        notes.append(f"qlora run: the base is the {run.recipe.quantization.bits}-bit quantized base the adapter was trained on")

    report(progress, "load", f"loading {run.name} ({run.method})")
    loaded = load_run_model(run, device)

    def evaluate(lm: Any, who: str) -> dict[str, Any]:
        lm.on_batch = lambda kind, done, total: report(
            progress, f"{who} {kind}", f"{who}: {kind} {done}/{total}", done, total
        )
        result = lm_eval.simple_evaluate(
            model=lm,
            tasks=built,
            task_manager=manager,
            num_fewshot=num_fewshot,
            limit=limit,
            bootstrap_iters=BOOTSTRAP_ITERS,
            log_samples=False,
            apply_chat_template=chat_prompts,
            fewshot_as_multiturn=chat_prompts,
        )
        if cancel.is_set():
            raise Cancelled()
        return result

    lm = _run_lm(loaded, batch_size, cancel)
    tuned = evaluate(lm, "tuned")
    if loaded.kind == "adapter":
        lm.use_adapter = False
        base = evaluate(lm, "base")
    else:
        notes.append(f"{run.method} run: the base model was loaded separately after the tuned one was released")
        del lm, loaded
        free_memory()
        report(progress, "load", f"loading the base model {run.recipe.model.name_or_path}")
        base = evaluate(_run_lm(load_base_for(run, device), batch_size, cancel), "base")

    result = BenchmarkReport(
        run=run.name,
        method=run.method,
        base_model=run.recipe.model.name_or_path,
        tasks=task_scores(names, base, tuned),
        limit=limit,
        num_fewshot=num_fewshot,
        chat_prompts=chat_prompts,
        include=[str(Path(p).resolve()) for p in include or []],
        lm_eval_version=str(tuned.get("lm_eval_version") or _version("lm_eval")),
        notes=notes,
        seconds=round(time.perf_counter() - start, 2),
        raw={who: {k: r.get(k) for k in ("results", "groups", "group_subtasks", "n-shot", "n-samples", "versions", "configs")}
             for who, r in (("base", base), ("tuned", tuned))},
    )
    if write:
        save_report(result, run.eval_dir / REPORT_FILE)
    report(progress, "done", f"scored {len(result.tasks)} task(s) in {result.seconds:.1f} s")
    return result


def _run_lm(loaded: Any, batch_size: int | str, cancel: threading.Event) -> Any:
    from tuitune.core.benchmark_lm import RunLM

    return RunLM(loaded, batch_size=batch_size, cancel=cancel)


# ------------------------------------------------------------------------------ lm-eval's results


def task_scores(names: list[str], base: dict[str, Any], tuned: dict[str, Any]) -> list[TaskScore]:
    """One row per requested task or group (a tag's tasks each get their own), in the order asked."""
    results = tuned.get("results") or {}
    subtasks = tuned.get("group_subtasks") or {}
    rows: list[str] = []
    for name in names:
        if name in results and _metric_keys(results[name]):
            rows.append(name)
        else:  # a tag, or a group without an aggregate score: its members
            rows += [m for m in subtasks.get(name, []) if m in results and m not in rows]
    return [_task_score(name, base, tuned) for name in rows]


def _task_score(name: str, base: dict[str, Any], tuned: dict[str, Any]) -> TaskScore:
    before, after = (base.get("results") or {}).get(name, {}), (tuned.get("results") or {}).get(name, {})
    better = (tuned.get("higher_is_better") or {}).get(name, {})
    metrics = [
        MetricScore(
            metric=metric,
            filter=filt,
            base=_number(before.get(key)),
            base_stderr=_number(before.get(f"{metric}_stderr,{filt}")),
            tuned=_number(after.get(key)),
            tuned_stderr=_number(after.get(f"{metric}_stderr,{filt}")),
            higher_is_better=bool(better.get(metric, True)),
        )
        for key, metric, filt in _metric_keys(after, _configured_order(name, tuned))
    ]
    leaves = _leaves(name, tuned.get("group_subtasks") or {})
    n_samples = tuned.get("n-samples") or {}
    samples = sum(int((n_samples.get(t) or {}).get("effective", 0)) for t in leaves)
    fewshot = (tuned.get("n-shot") or {}).get(name)
    if fewshot is None and leaves:
        fewshot = (tuned.get("n-shot") or {}).get(leaves[0])
    return TaskScore(name, metrics, samples, fewshot, subtasks=len(leaves) if leaves != [name] else 0)


def _configured_order(name: str, result: dict[str, Any]) -> list[str]:
    """The metrics in the order the task's YAML lists them (its first is its headline figure)."""
    config = (result.get("configs") or {}).get(name) or {}
    return [m.get("metric") for m in config.get("metric_list") or [] if isinstance(m, dict)]


def _metric_keys(row: dict[str, Any], order: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(key, metric, filter) for every "metric,filter" score in one lm-eval results row, in `order`."""
    keys = []
    for key in row:
        if "," not in key:
            continue
        metric, filt = key.split(",", 1)
        if metric in _NOT_METRICS or metric.endswith("_stderr"):
            continue
        keys.append((key, metric, filt))
    rank = {m: i for i, m in enumerate(order or [])}
    return sorted(keys, key=lambda k: rank.get(k[1], len(rank)))  # stable: lm-eval's order otherwise


def _leaves(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    if name not in group_subtasks:
        return [name]
    out: list[str] = []
    for child in group_subtasks[name]:
        out += [leaf for leaf in _leaves(child, group_subtasks) if leaf not in out]
    return out


def _number(value: Any) -> float | None:
    """lm-eval writes "N/A" where it has no figure (a stderr of one sample)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
