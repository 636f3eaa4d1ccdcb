"""The data layer's value types: what a row becomes at each stage, and what was wrong with it.

Plain dataclasses of built-in types, so the engine, the TUI and `--json` can use them as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

IGNORE_INDEX = -100  # label of a token the loss skips (the value transformers' loss ignores)


@dataclass
class Example:
    """One normalized row.

    `messages` ([{"role", "content"}], roles user / assistant / system / tool) for chat formats;
    an assistant message that calls tools also has "tool_calls" ([{"type": "function", "function":
    {"name", "arguments": {...}}}]), a tool result may have "name" / "tool_call_id"; `tools` lists
    the function schemas the conversation offers ({"type": "function", "function": {...}}).
    `text` for the plain-text format (every token trained, no chat template).
    `line` is where the row starts in its source file: the 1-based line for text files (JSONL, JSON,
    CSV/TSV, TXT) and the 1-based row number for Parquet and hub datasets. `file` names the file
    when the source is a folder.
    """

    messages: list[dict[str, Any]] | None
    text: str | None
    line: int
    file: str | None = None
    tools: list[dict[str, Any]] | None = None


@dataclass
class DataProblem:
    """Something wrong with the data: where (line, file) and what, phrased for the user."""

    line: int | None
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file and self.line is not None:
            where = f"{self.file}:{self.line}: "
        elif self.file:
            where = f"{self.file}: "
        elif self.line is not None:
            where = f"line {self.line}: "
        return where + self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "message": self.message}
        if self.file:
            out["file"] = self.file
        return out


@dataclass
class LoadedData:
    """Every usable row of a dataset, plus the problems found while reading it."""

    format: str
    examples: list[Example]
    problems: list[DataProblem]
    total_rows: int  # rows read, usable or not
    columns: list[str] = field(default_factory=list)  # the columns of the first rows, after mapping
    notes: list[str] = field(default_factory=list)  # how the source was read (a text file's split ...)


@dataclass
class DataScan:
    """A whole-file check: every row read and checked, only the first usable rows kept."""

    format: str
    sample: list[Example]  # the first usable rows (as many as asked for)
    problems: list[DataProblem]
    rows: int  # rows read, usable or not
    usable: int  # usable rows (duplicates included: they are reported, not dropped)
    columns: list[str] = field(default_factory=list)
    cancelled: bool = False  # stopped early: the counts cover the rows read so far
    notes: list[str] = field(default_factory=list)


@dataclass
class PageRow:
    """One row of a page: the record as read (None if unreadable), its normalized form, its problems."""

    line: int
    record: dict[str, Any] | None
    example: Example | None
    problems: list[DataProblem]
    file: str | None = None


@dataclass
class DataPage:
    """A window of rows for a viewer. `offset`/`next_offset` count rows (blank lines are not rows)."""

    format: str
    rows: list[PageRow]
    offset: int
    next_offset: int
    at_end: bool  # no rows after this page
    total_rows: int  # exact when total_exact, else an estimate from the file size
    total_exact: bool
    columns: list[str]
    problems: list[DataProblem] = field(default_factory=list)  # about the whole source (e.g. format)
    notes: list[str] = field(default_factory=list)  # how the source was read (a text file's split ...)
    dataset: str = ""  # the dataset_info.json entry read, if any


@dataclass
class Encoded:
    """One example as token ids. Labels are IGNORE_INDEX (-100) where no loss is taken."""

    input_ids: list[int]
    labels: list[int]
    line: int
    truncated: bool
    full_length: int = 0  # tokens before truncation to cutoff_len
    file: str | None = None
    estimated: bool = False  # full_length estimated (a very long row was tokenized only in part)
    chunk: int | None = None  # which cutoff_len-sized piece of a long text (data.chunk_long_text)
    plain_text: bool = False  # a text-format row (chunkable), not a conversation

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class Packed:
    """Several encoded examples in one row. position_ids restart at 0 where each example starts,
    which is how transformers tells packed sequences apart without an attention mask."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    lengths: list[int] = field(default_factory=list)  # tokens of each example, in order
    lines: list[int] = field(default_factory=list)  # source line of each example


@dataclass
class LengthStats:
    """Token lengths of a dataset (before truncation) and how many rows exceed cutoff_len."""

    rows: int
    min: int
    median: float
    p95: int
    max: int
    over_cutoff: int
    cutoff_len: int
    histogram: list[tuple[int, int, int]]  # (from, to exclusive, rows)
    mean: float = 0.0
    total_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["histogram"] = [{"from": lo, "to": hi, "rows": n} for lo, hi, n in self.histogram]
        return out


@dataclass
class MaskPiece:
    """A run of consecutive tokens of a rendered example sharing one state, for coloured views."""

    text: str
    trained: bool
    cut: bool = False  # beyond cutoff_len: dropped by truncation
    tokens: int = 0


@dataclass
class MaskPreview:
    """An example rendered through the chat template, split into trained and masked pieces."""

    pieces: list[MaskPiece]
    tokens: int  # before truncation
    trained_tokens: int  # after truncation
    truncated: bool
    template: str  # "tokenizer" or the name of the fallback template used
    eos_appended: bool
    notes: list[str] = field(default_factory=list)  # e.g. tools written in the fallback format
    estimated: bool = False  # `tokens` estimated: the row is far longer than cutoff_len


@dataclass
class PreparedData:
    """Everything the trainer needs. `train` is packed rows when data.packing, else encoded examples."""

    train: list[Encoded] | list[Packed]
    eval: list[Encoded]
    stats: LengthStats
    problems: list[DataProblem]
    format: str
    rows: int = 0  # rows read from the source
    examples: int = 0  # examples kept after encoding (train + eval)
    dropped: int = 0  # examples dropped (nothing to train after truncation, template errors)
    truncated: int = 0
    train_tokens: int = 0  # tokens in the train split (after truncation)
    trained_tokens: int = 0  # tokens of the train split that carry a label
    packed: bool = False
    template: str = "tokenizer"
    notes: list[str] = field(default_factory=list)  # said once in the training log (tools fallback, long rows ...)
