"""The Dataset screen's strings, English and Simplified Chinese (merged into i18n.STRINGS)."""

from __future__ import annotations

DATASET_STRINGS: dict[str, tuple[str, str]] = {
    "data.browse": ("Browse", "浏览"),
    "data.file": ("File", "文件"),
    "data.browse_help": ("Pick a dataset file from a folder tree", "在目录树中选择数据文件"),
    "data.use_help": ("Write the file, format and columns into the current recipe", "把文件、格式和列映射写入当前配方"),
    "data.browse_title": ("Open a dataset", "打开数据集"),
    "data.browse_hint": (
        "Folders and data files (.jsonl .json .csv .tsv .parquet .txt); enter opens, escape cancels.",
        "目录和数据文件（.jsonl .json .csv .tsv .parquet .txt）；回车打开，Esc 取消。",
    ),
    "data.next_page": ("Next page", "下一页"),
    "data.prev_page": ("Previous page", "上一页"),
    "data.next_row": ("Next row", "下一行"),
    "data.prev_row": ("Previous row", "上一行"),
    "data.back": ("Back to rows", "返回数据行"),
    "data.page_edge": ("No more rows on this page: go back (escape) and turn the page.", "本页没有更多行：按 Esc 返回后翻页。"),
    "data.tab_rows": ("Rows", "数据行"),
    "data.tab_row": ("Row as trained", "训练视角"),
    "data.tab_lengths": ("Lengths", "长度分布"),
    "data.tab_problems": ("Problems", "问题"),
    "data.col_line": ("line", "行号"),
    "data.col_text": ("text", "文本"),
    "data.col_chars": ("chars", "字符"),
    "data.col_user": ("user", "用户"),
    "data.col_assistant": ("assistant", "助手"),
    "data.col_turns": ("turns", "轮数"),
    "data.col_problems": ("problems", "问题"),
    "data.rows_hint": (
        "Rows {first}-{last} of {total}  ·  n / p: next / previous page  ·  enter: the row as trained",
        "第 {first}–{last} 行，共 {total} 行  ·  n / p：下一页 / 上一页  ·  回车：查看训练视角",
    ),
    "data.problems_hint": ("Enter: go to the row.", "回车：跳到该行。"),
    "data.reading": ("reading…", "读取中……"),
    "data.format_detected": ("format {format} (detected)", "格式 {format}（自动识别）"),
    "data.format_chosen": ("format {format}", "格式 {format}"),
    "data.rows": ("{n} rows", "{n} 行"),
    "data.rows_about": ("about {n} rows (counting…)", "约 {n} 行（计数中……）"),
    "data.usable": ("{n} usable", "{n} 行可用"),
    "data.problems": ("{n} problems", "{n} 个问题"),
    "data.checking": ("checking rows… {n}", "检查中…… {n} 行"),
    "data.checking_short": ("Checking every row…", "正在检查所有行……"),
    "data.columns": ("columns: {columns}", "列：{columns}"),
    "data.pending": ("not in the recipe yet: ctrl+r", "尚未写入配方：ctrl+r"),
    "data.last_page": ("This is the last page.", "已是最后一页。"),
    "data.first_page": ("This is the first page.", "已是第一页。"),
    "data.row_none": (
        "Choose a row in Rows and press enter to see it as the model is trained on it.",
        "在“数据行”中选中一行并按回车，查看模型训练时看到的内容。",
    ),
    "data.row_where": ("Line {line}", "第 {line} 行"),
    "data.rendering": ("Loading the tokenizer of {model}…", "正在加载 {model} 的分词器……"),
    "data.render_failed": ("Cannot render this row: {error}", "无法渲染该行：{error}"),
    "data.row_head": (
        "chat template: {template} · {tokens} tokens, {trained} trained · tokenizer of {model}",
        "对话模板：{template} · {tokens} 个 token，其中 {trained} 个参与训练 · {model} 的分词器",
    ),
    "data.tokenizer_hint": (
        "Rows are rendered with the tokenizer and chat template of the recipe's model ({model}); "
        "choose the model in Recipe (F3) or Hardware (F1, ctrl+r).",
        "数据行使用配方模型（{model}）的分词器和对话模板渲染；请在配方页（F3）或硬件页（F1，ctrl+r）选择模型。",
    ),
    "data.template_model": ("the model's own", "模型自带"),
    "data.columns_placeholder": ("none (standard names); e.g. instruction=question", "无（使用标准列名）；例如 instruction=question"),
    "data.truncated": ("(cut at cutoff_len)", "（超出 cutoff_len 被截断）"),
    "data.trained": ("trained (loss)", "参与训练（计算损失）"),
    "data.masked": ("masked (no loss)", "被遮蔽（不计损失）"),
    "data.cut": ("cut by cutoff_len", "被 cutoff_len 截掉"),
    "data.stats_waiting": ("Measuring token lengths…", "正在统计 token 长度……"),
    "data.stats_failed": ("No token lengths: {error}", "无法统计 token 长度：{error}"),
    "data.no_usable": ("no usable rows", "没有可用的行"),
    "data.stats_line": (
        "{rows} rows: min {min} · median {median} · p95 {p95} · max {max} tokens",
        "{rows} 行：最短 {min} · 中位数 {median} · p95 {p95} · 最长 {max} 个 token",
    ),
    "data.over_cutoff": ("{n} over cutoff_len {cutoff}", "{n} 行超过 cutoff_len {cutoff}"),
    "data.stats_note": (
        "From the first {rows} usable rows, with the tokenizer of {model}. cutoff_len is set in the Recipe (F3).",
        "基于前 {rows} 行可用数据，使用 {model} 的分词器。cutoff_len 在配方页（F3）设置。",
    ),
    "data.cutoff_marker": ("── cutoff_len {cutoff}: longer rows are truncated ──", "── cutoff_len {cutoff}：更长的行会被截断 ──"),
    "data.line_missing": ("Line {line} is not a row of this file any more.", "第 {line} 行已不在该文件中。"),
    # what the data layer says about how it read the data (core notes, translated by their English text)
    "data.note_line": ("plain text: one example per line", "纯文本：每行一个样本"),
    "data.note_paragraph": ("plain text: one example per blank-line-separated block", "纯文本：每个以空行分隔的段落一个样本"),
    "data.note_file": ("plain text: one example per file", "纯文本：每个文件一个样本"),
    "data.note_tools_native": ("tools: rendered by the model's own chat template", "工具：由模型自带的对话模板渲染"),
    "data.note_tools_fallback": (
        "tools: this model's chat template does not render tools, so tools, calls and results are written in "
        "tuitune's fallback format (# Tools block, <tool_call>, <tool_response>); prompt the tuned model the same way",
        "工具：该模型的对话模板不渲染工具，因此工具、调用和结果以 tuitune 的后备格式写出（# Tools 段、<tool_call>、"
        "<tool_response>）；使用微调后的模型时请用相同方式提示",
    ),
    "data.entry_prompt": ("choose an entry of dataset_info.json", "选择 dataset_info.json 中的条目"),
    "data.entry_refused": ("✗ {reason}", "✗ {reason}"),
    "data.entry_status": ("entry {name}", "条目 {name}"),
    "data.format_entry": ("format {format} (the entry's)", "格式 {format}（条目指定）"),
    "data.tokens_about": ("about {n}", "约 {n}"),
    "data.tool_calls": ("→ {calls}", "→ {calls}"),
}


# The data layer's notes (English, from core) and the strings that say the same.
NOTE_KEYS = (
    ("plain text: one example per line", "data.note_line"),
    ("plain text: one example per blank-line-separated block", "data.note_paragraph"),
    ("plain text: one example per file", "data.note_file"),
    ("tools: rendered by the model's own", "data.note_tools_native"),
    ("tools: the chat template does not render tools", "data.note_tools_fallback"),
)


def note_text(note: str, lang: str) -> str:
    """A core note in the interface language; notes with numbers in them stay as core wrote them."""
    for english, key in NOTE_KEYS:
        if note.startswith(english):
            en, zh = DATASET_STRINGS[key]
            rest = note[len(english) :]
            return (zh if lang == "zh" else en) + (rest if rest.startswith(" (data.") else "")
    return note
