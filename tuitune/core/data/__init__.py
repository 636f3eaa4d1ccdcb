"""The data layer: load, detect the format, normalize to messages, render with the chat template,
tokenize with the prompt masked, pack; stats and problems with line numbers.

Module map (each one job): sources (what a path is), readers (raw rows per file kind), formats
(column mapping, detection, normalizing), loader (load_examples, read_page, counting), templates
(named fallback chat templates), encoding (render + tokenize + label masks, label_mask_preview),
packing (pack), stats (length_stats), prepare (prepare_training_data).

Imports only the standard library at module level: the TUI can import it at start-up; tokenizers,
pyarrow and datasets load inside the functions that need them.
"""

from tuitune.core.data.encoding import encode_example, encode_examples, render_example
from tuitune.core.data.formats import FORMATS, detect_format, normalize, parse_columns
from tuitune.core.data.loader import (
    count_rows,
    estimate_rows,
    load_examples,
    read_page,
    row_at_line,
    scan_examples,
)
from tuitune.core.data.mask_preview import label_mask_preview
from tuitune.core.data.packing import pack
from tuitune.core.data.prepare import prepare_training_data, split_indices
from tuitune.core.data.records import (
    IGNORE_INDEX,
    DataPage,
    DataProblem,
    DataScan,
    Encoded,
    Example,
    LengthStats,
    LoadedData,
    MaskPiece,
    MaskPreview,
    Packed,
    PageRow,
    PreparedData,
)
from tuitune.core.data.stats import length_stats
from tuitune.core.data.templates import TEMPLATES, chat_template_for

__all__ = [
    "FORMATS",
    "IGNORE_INDEX",
    "TEMPLATES",
    "DataPage",
    "DataProblem",
    "DataScan",
    "Encoded",
    "Example",
    "LengthStats",
    "LoadedData",
    "MaskPiece",
    "MaskPreview",
    "Packed",
    "PageRow",
    "PreparedData",
    "chat_template_for",
    "count_rows",
    "detect_format",
    "encode_example",
    "encode_examples",
    "estimate_rows",
    "label_mask_preview",
    "length_stats",
    "load_examples",
    "normalize",
    "pack",
    "parse_columns",
    "prepare_training_data",
    "read_page",
    "render_example",
    "row_at_line",
    "scan_examples",
    "split_indices",
]
