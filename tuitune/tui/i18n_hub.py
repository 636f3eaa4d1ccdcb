"""Interface strings about models from the hub (cache status, pulls, downloads while training), in
English and Simplified Chinese. Merged into `i18n.STRINGS`; kept apart so i18n.py stays readable."""

from __future__ import annotations

HUB_STRINGS: dict[str, tuple[str, str]] = {
    "hub.progress": ("{file} · {done} of {total} · {speed}/s · ETA {eta}", "{file} · {done} / {total} · {speed}/秒 · 剩余 {eta}"),
    "hub.title": ("Model files", "模型文件"),
    "hub.cached": ("✓ in the hub cache ({size})", "✓ 已在 hub 缓存中（{size}）"),
    "hub.missing": ("not downloaded yet: {size} to fetch ({files} files), {free} free on the cache disk",
                    "尚未下载：需下载 {size}（{files} 个文件），缓存所在磁盘可用 {free}"),
    "hub.no_room": ("not downloaded: needs {size}, but the cache disk has only {free} free",
                    "尚未下载：需要 {size}，但缓存所在磁盘只剩 {free}"),
    "hub.offline": ("not in the hub cache (offline: download size unknown)", "不在 hub 缓存中（离线：下载大小未知）"),
    "hub.bundled": ("not in the hub cache; offline, the bundled demo GGUF is used",
                    "不在 hub 缓存中；离线时使用内置演示模型（GGUF）"),
    "hub.problem": ("not in the hub cache: {problem}", "不在 hub 缓存中：{problem}"),
    "hub.pull_hint": ("ctrl+l downloads it now (again: stops; it resumes later)",
                      "ctrl+l 立即下载（再按一次停止；之后可续传）"),
    "hub.pull": ("Download", "下载"),
    "hub.pull_help": ("Download the model into the hub cache now, with progress; an interrupted download resumes",
                      "立即把模型下载到 hub 缓存并显示进度；中断的下载可续传"),
    "hub.downloading": ("downloading {progress}", "正在下载 {progress}"),
    "hub.pulled": ("Downloaded {model}", "已下载 {model}"),
    "hub.cancelled": ("Download of {model} stopped; what arrived is kept and resumes next time",
                      "{model} 的下载已停止；已下载部分会保留，下次续传"),
    "hub.pull_failed": ("Download of {model} failed: {error}", "{model} 下载失败：{error}"),
    "hub.nothing_to_pull": ("Nothing to download for {model}", "{model} 无需下载"),
    "train.estimate": ("memory estimate: training needs {need} of {free} free on {where}: {verdict}",
                       "显存估算：训练需要 {need}，{where} 可用 {free}：{verdict}"),
    "train.estimate_waiting": ("the memory estimate follows once config.json is in",
                               "config.json 下载后即给出显存估算"),
    "chat.downloading": ("Downloading {target}: {progress}", "正在下载 {target}：{progress}"),
}
