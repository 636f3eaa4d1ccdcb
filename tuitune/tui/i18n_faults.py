"""Strings of the app's answers to faults (remote code, unreadable runs, partial deletes), merged into i18n.STRINGS."""

from __future__ import annotations

STRINGS_FAULTS: dict[str, tuple[str, str]] = {
    "remote.title": ("Run the model's own code?", "运行模型自带的代码？"),
    "remote.ask": (
        "The recipe of run {run} sets model.trust_remote_code = true: loading {model} runs the Python files "
        "that come with that model. Say yes only if you trust the model and where this run folder came from.",
        "运行 {run} 的配方设置了 model.trust_remote_code = true：载入 {model} 会执行该模型附带的 Python 文件。"
        "只有在信任该模型以及此运行目录的来源时才选择“是”。",
    ),
    "remote.declined": (
        "Not loaded: {run} needs the model's own code, which was not allowed.",
        "未载入：{run} 需要运行模型自带的代码，但未获允许。",
    ),
    "remote.export_note": ("ctrl+s asks whether to allow it.", "按 ctrl+s 确认是否允许。"),
    "runs.deleted_kept": (
        "Deleted run {name}; kept {count} file(s) tuitune did not write: {names}",
        "已删除运行 {name}；保留了 {count} 个不是 tuitune 写入的文件：{names}",
    ),
    "runs.unreadable": ("cannot be read: {error}", "无法读取：{error}"),
}
