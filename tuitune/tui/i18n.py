"""Interface strings in English and Simplified Chinese.

Only the app's own words live here. Field labels, guidance and section titles come from the recipe
schema (`tuitune.core.recipe.FIELDS`, `section_labels`) so a field is described in exactly one place.
"""

from __future__ import annotations

from typing import Any

from tuitune.tui.i18n_dataset import DATASET_STRINGS
from tuitune.tui.i18n_eval import EVAL_STRINGS
from tuitune.tui.i18n_gpus import GPU_STRINGS
from tuitune.tui.i18n_hub import HUB_STRINGS

LANGS = ("en", "zh")

# key -> (English, Chinese). Keep keys grouped by screen; `t()` raises KeyError on a typo so a
# missing string fails a test instead of showing a blank.
STRINGS: dict[str, tuple[str, str]] = {
    # shell
    "app.title": ("tuitune", "tuitune"),
    "app.subtitle": ("fine-tune LLMs from a terminal", "在终端里微调大模型"),
    "key.palette": ("Commands", "命令"),
    "key.quit": ("Quit", "退出"),
    "key.goto": ("Go to", "转到"),
    "goto.title": ("Go to (press a digit or choose)", "转到（按数字或选择）"),
    "palette.goto": ("Go to {title}", "转到 {title}"),
    "palette.goto_help": ("Switch to the {title} screen ({key})", "切换到“{title}”页（{key}）"),
    # modes: short name for the mode bar, full title for the screen heading
    "mode.hardware": ("Hardware", "硬件"),
    "mode.hardware.title": ("Hardware & Memory", "硬件与显存"),
    "mode.dataset": ("Dataset", "数据集"),
    "mode.dataset.title": ("Dataset", "数据集"),
    "mode.recipe": ("Recipe", "配方"),
    "mode.recipe.title": ("Recipe", "训练配方"),
    "mode.train": ("Train", "训练"),
    "mode.train.title": ("Train", "训练"),
    "mode.runs": ("Runs", "运行"),
    "mode.runs.title": ("Runs", "运行记录"),
    "mode.chat": ("Chat", "对话"),
    "mode.chat.title": ("Chat & Eval", "对话与评估"),
    "mode.export": ("Export", "导出"),
    "mode.export.title": ("Export", "导出"),
    # train screen
    "train.start": ("Start", "开始"),
    "train.stop": ("Stop", "停止"),
    "train.resume": ("Resume", "继续"),
    "train.start_help": ("Train the current recipe in a new run (it keeps going after the app quits)",
                         "用当前配方开始新的训练（退出应用后仍继续）"),
    "train.stop_help": ("Ask the run to save a checkpoint and stop", "让训练保存检查点后停止"),
    "train.resume_help": ("Continue a stopped or crashed run from its last checkpoint",
                          "从最后一个检查点继续已停止或中断的训练"),
    "train.no_run": ("No run on this screen yet.", "此页面还没有训练。"),
    "train.recipe_line": ("Current recipe: {name} — {method} on {model}, data {data}",
                          "当前配方：{name} — {model} 上的 {method}，数据 {data}"),
    "train.first_recipe": ("This is the bundled quickstart ({path}): no recipe was opened. It teaches the demo "
                           "model a new name in a few minutes on CPU; then F6 compares it with the base.",
                           "这是自带的快速入门配方（{path}）：尚未打开其他配方。它在 CPU 上几分钟内教会演示模型一个新名字；"
                           "之后按 F6 与基础模型对比。"),
    "train.how": ("Press t to train it in a new run; F3 edits the recipe. "
                  "A run started here keeps training after you quit; `tuitune` reattaches to it.",
                  "按 t 开始新的训练；F3 编辑配方。在此开始的训练在退出应用后继续；"
                  "再次运行 `tuitune` 会重新连接。"),
    "train.run": ("Run {name}", "运行 {name}"),
    "train.progress": ("step {step}/{max} · ETA {eta} · epoch {epoch} · elapsed {elapsed}",
                       "步 {step}/{max} · 剩余 {eta} · 轮 {epoch} · 已用 {elapsed}"),
    "train.speed": ("{rate} tokens/s", "{rate} token/秒"),
    "train.memory_gpu": ("GPU {allocated} (peak {peak})", "显存 {allocated}（峰值 {peak}）"),
    "train.memory_ram": ("RAM {rss}", "内存 {rss}"),
    "train.loss_now": ("loss {loss}", "损失 {loss}"),
    "train.eval_now": ("eval {loss} (best {best})", "验证 {loss}（最佳 {best}）"),
    "train.chart_title": ("loss by step: train (line), eval (x)", "损失（按步）：训练（线）、验证（x）"),
    "train.lr": ("learning rate {value}", "学习率 {value}"),
    "train.grad": ("grad norm {value}", "梯度范数 {value}"),
    "train.waiting": ("waiting for the first step…", "等待第一步…"),
    "train.log_title": ("Log", "日志"),
    "train.error": ("{kind} error: {message}", "{kind} 错误：{message}"),
    "train.hint": ("hint: {hint}", "提示：{hint}"),
    "train.result": ("result: {path}", "结果：{path}"),
    "train.crashed_text": ("The trainer ended without saying why (killed?). See {log}; r resumes from the last checkpoint.",
                           "训练进程未说明原因就结束了（被终止？）。见 {log}；按 r 从最后的检查点继续。"),
    "train.status.none": ("no run", "无训练"),
    "train.status.prepared": ("prepared", "已准备"),
    "train.status.starting": ("starting", "启动中"),
    "train.status.loading": ("loading", "加载中"),
    "train.status.training": ("training", "训练中"),
    "train.status.evaluating": ("evaluating", "验证中"),
    "train.status.saving": ("saving", "保存中"),
    "train.status.stopping": ("stopping", "正在停止"),
    "train.status.stopped": ("stopped", "已停止"),
    "train.status.done": ("done", "已完成"),
    "train.status.failed": ("failed", "失败"),
    "train.status.crashed": ("crashed", "已中断"),
    "train.status.interrupted": ("interrupted", "已中断"),
    "train.stop_title": ("Stop run {name}?", "停止训练 {name}？"),
    "train.stop_message": ("The trainer finishes its current step, saves a checkpoint and stops. "
                           "r (Resume) continues it later from that checkpoint.",
                           "训练进程会完成当前步、保存检查点后停止。之后可按 r（继续）从该检查点恢复。"),
    "train.not_live": ("Run {name} is not training.", "训练 {name} 未在进行。"),
    "train.not_resumable": ("Run {name} is {status}: only a stopped or crashed run can be resumed.",
                            "训练 {name} 的状态为 {status}：只有已停止或中断的训练可以继续。"),
    "train.busy": ("Run {name} is still training: stop it first (s).", "训练 {name} 仍在进行：请先停止（s）。"),
    "train.starting": ("Starting run {name}…", "正在启动训练 {name}…"),
    "train.stopping": ("Asked {name} to stop after this step.", "已请求 {name} 在本步结束后停止。"),
    "train.attached": ("Run {name} is training: attached to it.", "训练 {name} 正在进行：已重新连接。"),
    "train.note.done": ("Run {name} finished ({steps} steps).", "训练 {name} 已完成（{steps} 步）。"),
    "train.note.failed": ("Run {name} failed: {message}", "训练 {name} 失败：{message}"),
    "train.note.nan": ("Run {name}: the loss became NaN. {message}", "训练 {name}：损失变为 NaN。{message}"),
    "train.note.oom": ("Run {name} ran out of memory. {message}", "训练 {name} 内存不足。{message}"),
    "train.note.crashed": ("Run {name}: the trainer ended without finishing.", "训练 {name}：训练进程未完成就结束了。"),
    # runs screen
    "runs.heading": ("Runs in the folder {folder}/ · refreshed every 2 s", "运行目录 {folder}/ · 每 2 秒刷新"),
    "runs.col.name": ("name", "名称"),
    "runs.col.status": ("status", "状态"),
    "runs.col.method": ("method", "方法"),
    "runs.col.model": ("model", "模型"),
    "runs.col.steps": ("steps", "步数"),
    "runs.col.best_eval": ("best eval", "最佳验证损失"),
    "runs.col.duration": ("duration", "用时"),
    "runs.loading": ("Reading the runs folder…", "正在读取运行目录…"),
    "runs.none": (
        "No runs in {folder}/ yet. Start one from the Train screen (F4) or with `tuitune train RECIPE`.",
        "{folder}/ 中还没有运行。可在训练页（F4）或用 `tuitune train RECIPE` 开始。",
    ),
    "runs.looking": ("Looking for the run {name}…", "正在查找运行 {name}…"),
    "runs.missing": ("No run named {name} in {folder}/", "{folder}/ 中没有名为 {name} 的运行"),
    "runs.live": ("training now (pid {pid})", "正在训练（pid {pid}）"),
    "runs.error": ("error: {error}", "错误：{error}"),
    "runs.marked": (
        "◆ {name} marked: press m on another run to diff the recipes (escape: unmark)",
        "◆ 已标记 {name}：移到另一个运行并按 m 对比两者的配方（escape 取消）",
    ),
    "runs.mark_hint": ("Marked {name}: press m on another run to diff the recipes", "已标记 {name}：在另一个运行上按 m 对比配方"),
    "runs.diff_title": ("Recipe differences: {a} → {b}", "配方差异：{a} → {b}"),
    "runs.opened": ("Run {name}: shown in the Train screen", "运行 {name}：已在训练页打开"),
    "runs.already_live": ("Run {name} is training already", "运行 {name} 已在训练中"),
    "runs.resumed": ("Run {name} resumes in the background", "运行 {name} 已在后台继续训练"),
    "runs.resume_failed": ("Run {name} could not be resumed", "无法继续运行 {name}"),
    "runs.not_live": ("Run {name} is not training (status: {status})", "运行 {name} 不在训练中（状态：{status}）"),
    "runs.stop_title": ("Stop training", "停止训练"),
    "runs.stop_ask": (
        "Stop run {name}? It finishes its current step, saves a checkpoint and stops; resume it later with r.",
        "停止运行 {name}？它会完成当前步、保存检查点后停止；之后可按 r 继续。",
    ),
    "runs.stop_sent": ("Asked run {name} to stop after its current step", "已请求运行 {name} 在当前步后停止"),
    "runs.delete_title": ("Delete run", "删除运行"),
    "runs.delete_ask": (
        "Delete run {name}? Its folder {path} is removed with its checkpoints and result. This cannot be undone.",
        "删除运行 {name}？其目录 {path} 及其中的检查点和结果都会被删除，无法恢复。",
    ),
    "runs.deleted": ("Deleted run {name}", "已删除运行 {name}"),
    "runs.open": ("Open", "打开"),
    "runs.resume": ("Resume", "继续"),
    "runs.stop": ("Stop", "停止"),
    "runs.delete": ("Delete", "删除"),
    "runs.diff": ("Diff", "对比"),
    "runs.unmark": ("Unmark", "取消标记"),
    "runs.open_help": ("Show the run in the Train screen (its chart and log)", "在训练页查看该运行（曲线与日志）"),
    "runs.resume_help": ("Continue a stopped or crashed run from its last checkpoint", "从最后的检查点继续已停止或中断的运行"),
    "runs.stop_help": ("Ask the trainer to checkpoint and stop", "请训练进程保存检查点后停止"),
    "runs.delete_help": ("Remove the run's folder (asks first)", "删除该运行的目录（会先确认）"),
    "runs.diff_help": ("Mark a run, then press m on another: their recipes' differences", "标记一个运行，再在另一个上按 m：显示配方差异"),
    # chat & eval screen
    "chat.target": ("Run or model", "运行或模型"),
    "chat.target_placeholder": ("a run name, a run folder, a model folder or a hub id; enter loads", "运行名、运行目录、模型目录或 Hub 名称；回车载入"),
    "chat.not_loaded": ("Nothing loaded: choose a run (or a model) and press enter.", "尚未载入：选择一个运行（或模型）后按回车。"),
    "chat.no_runs": ("No finished runs in {folder}/: type a model to chat with it.", "{folder}/ 中没有已完成的运行：可输入模型名直接对话。"),
    "chat.loading": ("Loading {target}…", "正在载入 {target}…"),
    "chat.loaded": ("{label}", "{label}"),
    "chat.load_failed": ("Could not load {target}: {error}", "无法载入 {target}：{error}"),
    "chat.temperature": ("temp", "温度"),
    "chat.top_p": ("top-p", "top-p"),
    "chat.max_new_tokens": ("max tokens", "最大 token"),
    "chat.seed": ("seed", "种子"),
    "chat.seed_placeholder": ("random", "随机"),
    "chat.system": ("system", "系统提示"),
    "chat.system_placeholder": ("the run's own", "沿用运行的设置"),
    "chat.bad_number": ("{name}: '{value}' is not a number", "{name}：“{value}”不是数字"),
    "chat.tab_chat": ("Chat", "对话"),
    "chat.tab_eval": ("Evaluate", "评估"),
    "chat.prompt_placeholder": ("Type a message; enter sends", "输入消息，回车发送"),
    "chat.you": ("you", "你"),
    "chat.model": ("model", "模型"),
    "chat.base": ("base", "基础模型"),
    "chat.tuned": ("tuned", "微调后"),
    "chat.stopped": (" [stopped]", " [已停止]"),
    "chat.busy": ("Still answering: ctrl+s stops it", "仍在生成：按 ctrl+s 停止"),
    "chat.load_first": ("Load a run or a model first (enter in the top field)", "请先载入运行或模型（在顶部输入框按回车）"),
    "chat.compare_on": ("Side by side on one seed: base and tuned answer each prompt. {note} ctrl+t: tuned alone.", "并排对比（同一随机种子）：基础模型和微调模型回答每个提示。{note}ctrl+t：只用微调模型。"),
    "chat.compare_off": ("Chat with the tuned model (ctrl+t: side by side with the base)", "与微调后的模型对话（ctrl+t：与基础模型并排对比）"),
    "chat.note_adapter": ("The base answer is the same loaded model with its adapter switched off.", "基础模型的回答来自同一个已载入的模型（关闭适配器）。"),
    "chat.note_full": (
        "A full copy was tuned: the base model is loaded separately for the comparison (a second copy in memory).",
        "该运行微调了完整模型：对比时会另外载入基础模型（内存中多一份）。",
    ),
    "chat.note_plain": ("Comparison needs a run: this is a plain model.", "对比需要一个运行：这是一个普通模型。"),
    "chat.cannot_compare": ("Side by side needs a run: {note}", "并排对比需要一个运行：{note}"),
    "chat.load": ("Load", "载入"),
    "chat.compare": ("Compare", "对比"),
    "chat.stop": ("Stop", "停止"),
    "chat.new": ("New chat", "新对话"),
    "chat.evaluate": ("Evaluate", "评估"),
    "chat.switch": ("Chat/Eval", "对话/评估"),
    "chat.load_help": ("Load the run or model named in the top field", "载入顶部输入框中的运行或模型"),
    "chat.compare_help": ("Answer each prompt with the base and the tuned model side by side", "用基础模型和微调模型并排回答每个提示"),
    "chat.stop_help": ("Stop the answer being generated", "停止正在生成的回答"),
    "chat.new_help": ("Forget the conversation and start again", "清空对话重新开始"),
    "chat.evaluate_help": ("Run `tuitune eval` on the run in the background", "在后台对该运行执行 `tuitune eval`"),
    # export screen
    "export.run": ("Run", "运行"),
    "export.run_placeholder": ("a finished run's name or folder; enter checks it", "已完成运行的名称或目录；回车检查"),
    "export.kind": ("Export", "导出方式"),
    "export.kind_adapter": ("save the adapter (small; loads with peft on the base)", "保存适配器（体积小；需配合基础模型用 peft 载入）"),
    "export.kind_merge": ("merge into a full model (loads with plain transformers)", "合并为完整模型（可直接用 transformers 载入）"),
    "export.qlora_base": ("QLoRA base", "QLoRA 基座"),
    "export.qlora_quantized": ("quantized, as trained", "量化版（与训练一致）"),
    "export.qlora_original": ("original weights", "原始权重"),
    "export.out": ("To folder", "目标目录"),
    "export.check_none": ("Choose a run.", "请选择一个运行。"),
    "export.no_runs": ("No runs in {folder}/: train one first (F4).", "{folder}/ 中没有运行：请先训练（F4）。"),
    "export.checking": ("Checking {run}…", "正在检查 {run}…"),
    "export.can_adapter": ("✓ {run} ({method}): its adapter can be saved to the folder below.", "✓ {run}（{method}）：可以将适配器保存到下面的目录。"),
    "export.can_merge": ("✓ {run} ({method}): can be merged into {model} and saved as safetensors.", "✓ {run}（{method}）：可以合并进 {model} 并保存为 safetensors。"),
    "export.cannot": ("✗ {error}", "✗ {error}"),
    "export.warning": ("⚠ {warning}", "⚠ {warning}"),
    "export.start": ("Export", "导出"),
    "export.start_help": ("Write the adapter or the merged model to the folder", "将适配器或合并后的模型写入目标目录"),
    "export.running": ("{stage}: {message}", "{stage}：{message}"),
    "export.done": ("Wrote {kind} to {path}: {files} files, {size} in {seconds:.1f} s", "已写入 {kind}：{path}，{files} 个文件，{size}，用时 {seconds:.1f} 秒"),
    "export.failed": ("✗ {error}", "✗ {error}"),
    "export.replace_title": ("Replace folder", "替换目录"),
    "export.replace_ask": ("{path} exists and is not empty. Replace it?", "{path} 已存在且不为空。要替换吗？"),
    "export.busy": ("An export is running", "正在导出"),
    "export.need_out": ("Give a folder to write to", "请填写目标目录"),
    "export.kind_gguf": ("GGUF for llama.cpp / Ollama (checked against the merged model)", "GGUF（llama.cpp / Ollama，与合并模型对照检查）"),
    "export.kind_vllm": ("vLLM serve command (serve.sh)", "vLLM 启动命令（serve.sh）"),
    "export.quant": ("Quant", "量化"),
    "export.quant_here": ("available here", "本机可用"),
    "export.quant_missing": ("needs llama-cpp-python", "需要 llama-cpp-python"),
    "export.ollama": ("Ollama Modelfile", "Ollama Modelfile"),
    "export.quants_here": ("Here: {quants} (converter)", "本机可写：{quants}（转换器）"),
    "export.quants_k_here": ("{quants} (llama.cpp's quantizer)", "{quants}（llama.cpp 量化器）"),
    "export.quants_missing": ("Not here: {quants}: k-quants need llama.cpp's quantizer: {install}", "本机不可写：{quants}：k 量化需要 llama.cpp 的量化器：{install}"),
    "export.can_gguf": ("✓ {run} ({method}): merge, convert to GGUF {quant}, then check it answers like the merged model.", "✓ {run}（{method}）：合并、转换为 GGUF {quant}，再检查其回答与合并模型一致。"),
    "export.can_vllm": ("✓ {run} ({method}): writes serve.sh with the vllm serve command.", "✓ {run}（{method}）：写出含 vllm serve 命令的 serve.sh。"),
    "export.vllm_done": ("Wrote {path}:\n  {command}", "已写入 {path}：\n  {command}"),
    "export.gguf_done": ("Wrote {path} ({size}, {quant})", "已写入 {path}（{size}，{quant}）"),
    "export.parity_head": ("Parity check, {prompts} prompts ({source}):", "一致性检查，{prompts} 个提示（{source}）："),
    "export.parity_engine": ("  {engine}: {share} of the first {n} tokens identical (expected ≥ {expected}), {stopped}/{total} stop at end-of-turn: {verdict}",
                             "  {engine}：前 {n} 个词元相同 {share}（应 ≥ {expected}），{stopped}/{total} 在轮次结束处停止：{verdict}"),
    "export.parity_pass": ("pass", "通过"),
    "export.parity_fail": ("FAIL (files kept)", "未通过（文件已保留）"),
    "export.modelfile": ("Wrote {path}", "已写入 {path}"),
    "export.commands": ("Run it:", "运行："),
    # recipe screen
    "recipe.load": ("Load", "载入"),
    "recipe.save": ("Save", "保存"),
    "recipe.save_as": ("Save as", "另存为"),
    "recipe.new": ("New", "新建"),
    "recipe.problems_key": ("Problems", "问题"),
    "recipe.load_help": ("Open a recipe from recipes/ or any path", "从 recipes/ 或任意路径打开配方"),
    "recipe.save_help": ("Write the recipe as TOML", "将配方保存为 TOML"),
    "recipe.save_as_help": ("Write the recipe under a new file name", "以新文件名保存配方"),
    "recipe.new_help": ("Start from the defaults of a new recipe", "从新配方的默认值开始"),
    "recipe.field_cmd": ("Edit {label}  ({key})", "编辑 {label}（{key}）"),
    "recipe.unsaved": ("new recipe (not saved)", "新配方（未保存）"),
    "recipe.from": ("{path}", "{path}"),
    "recipe.changes": ("{n} changed", "{n} 项修改"),
    "recipe.no_changes": ("no changes", "无修改"),
    "recipe.problems": ("{n} problems", "{n} 个问题"),
    "recipe.problem_one": ("1 problem", "1 个问题"),
    "recipe.no_problems": ("valid", "有效"),
    "recipe.loaded": ("Loaded {path}", "已载入 {path}"),
    "recipe.saved": ("Saved {path}", "已保存 {path}"),
    "recipe.renamed": ("Run name set to {name}, like the file", "运行名称已改为 {name}，与文件名一致"),
    "recipe.load_problems": (
        "{path} has {n} problems; their fields kept the defaults (see Problems)",
        "{path} 有 {n} 个问题，相应字段保留默认值（见问题列表）",
    ),
    "recipe.open_title": ("Open a recipe", "打开配方"),
    "recipe.open_path": ("…or type a path to a .toml file:", "……或输入 .toml 文件路径："),
    "recipe.not_found": ("{path}: no such file", "{path}：文件不存在"),
    "recipe.open_none": ("(no .toml files in {dir})", "（{dir} 中没有 .toml 文件）"),
    "recipe.save_title": ("Save recipe as", "配方另存为"),
    "recipe.save_prompt": (
        "File name under {dir}/ (or a path ending in .toml):",
        "保存到 {dir}/ 下的文件名（或以 .toml 结尾的路径）：",
    ),
    "recipe.overwrite_title": ("Overwrite?", "覆盖？"),
    "recipe.overwrite": ("{path} exists. Replace it?", "{path} 已存在，要替换吗？"),
    "recipe.save_bad_title": ("Save with problems?", "有问题仍要保存？"),
    "recipe.save_bad": (
        "The recipe has {n} problems; `tuitune train` will refuse it until they are fixed:\n\n{list}\n\nSave anyway?",
        "配方有 {n} 个问题，修正前 `tuitune train` 会拒绝它：\n\n{list}\n\n仍要保存吗？",
    ),
    "recipe.bad_name": ("A file name must end in .toml", "文件名必须以 .toml 结尾"),
    "recipe.discard_title": ("Discard changes?", "放弃修改？"),
    "recipe.discard": ("{n} unsaved changes will be lost.", "{n} 项未保存的修改将丢失。"),
    # hardware & memory screen
    "hw.use": ("Use in recipe", "用于配方"),
    "hw.fit": ("Make it fit", "让它放得下"),
    "hw.fit_help": ("Go to the planner's suggestions; enter on one applies it", "转到估算器的建议；回车即采用"),
    "hw.use_help": (
        "Write the model, method, batch and the other settings shown here into the current recipe",
        "把这里的模型、方法、批大小等设置写入当前配方",
    ),
    "hw.probing": ("Reading the GPUs…", "正在读取 GPU……"),
    "hw.no_gpu": (
        "No NVIDIA GPU here (CPU only): plan for a card size with \"Plan for\".",
        "本机没有 NVIDIA GPU（仅 CPU）：在“目标显卡”中选择显卡容量来估算。",
    ),
    "hw.util": ("util", "占用"),
    "hw.processes": ("other processes: {list}", "其他进程：{list}"),
    "hw.more": ("and {n} more", "等 {n} 个"),
    "hw.cores": ("{n} cores", "{n} 核"),
    "hw.free_of": ("{free} free of {total}", "可用 {free} / 共 {total}"),
    "hw.disk": ("Disk", "磁盘"),
    "hw.free_at": ("{free} free at {path}", "{path} 可用 {free}"),
    "hw.fake": ("(fake GPUs from TUITUNE_FAKE_GPU)", "（TUITUNE_FAKE_GPU 模拟的 GPU）"),
    "hw.driver": ("Driver", "驱动"),
    "hw.cpu_build": ("none (CPU build)", "无（CPU 版）"),
    "hw.fa_yes": ("usable: {reason}", "可用：{reason}"),
    "hw.fa_no": ("not usable: {reason}", "不可用：{reason}"),
    "hw.libraries": ("Libraries", "库版本"),
    "hw.note": ("note: {note}", "注意：{note}"),
    "hw.plan_for": ("Plan for", "目标显卡"),
    "hw.card_size": ("Card size", "显存容量"),
    "hw.card_placeholder": ("e.g. 40GB", "例如 40GB"),
    "hw.target_gpu": ("GPU {index} · {size}", "GPU {index} · {size}"),
    "hw.target_all": ("All {n} GPUs, one run", "全部 {n} 块 GPU 一起训练"),
    "hw.target_card": ("A {size} card", "{size} 显卡"),
    "hw.target_custom": ("Another size…", "其他容量……"),
    "hw.where_gpu": ("free on GPU {index}", "GPU {index} 可用"),
    "hw.where_all": ("free per GPU (the fullest of {n})", "每块 GPU 可用（{n} 块中最满的一块）"),
    "hw.where_card": ("on a {size} card", "{size} 显卡"),
    "hw.params": ("parameters", "参数"),
    "hw.needs": ("Training needs {need}", "训练需要 {need}"),
    "hw.of": ("of {available} {where}", "（{where} {available}）"),
    "hw.inference": (
        "Inference {inference} · trainable {trainable} ({share}%)",
        "推理 {inference} · 可训练参数 {trainable}（{share}%）",
    ),
    "hw.limits": (
        "Largest batch {batch} at {seq} tokens · longest sequence {max_seq} at batch {at}",
        "{seq} token 时最大批大小 {batch} · 批大小 {at} 时最长序列 {max_seq}",
    ),
    "hw.limits_none": (
        "Not even batch 1 at {seq} tokens fits: see the suggestions below.",
        "{seq} token 时连批大小 1 都放不下：请看下方建议。",
    ),
    "hw.per_gpu": ("Per GPU, with {n} GPUs in one run (distributed.strategy)", "每块 GPU 的需求，{n} 块一起训练（见 distributed.strategy）"),
    "hw.breakdown": ("Memory at the training peak", "训练峰值显存构成"),
    "hw.methods": ("Methods  (enter: use this one)", "各方法对比（回车：使用该方法）"),
    "hw.suggestions": ("To make it fit  (ctrl+f, then enter: use)", "让它放得下（ctrl+f，回车：采用）"),
    "hw.nothing_to_change": ("It fits as it is.", "现在就放得下。"),
    "hw.no_suggestions": ("No suggestions.", "没有建议。"),
    "hw.machine": ("This machine", "本机"),
    "hw.col_method": ("method", "方法"),
    "hw.col_trainable": ("trainable", "可训练"),
    "hw.col_peak": ("peak", "峰值"),
    "hw.col_verdict": ("verdict", "结论"),
    "hw.pending_one": ("1 setting differs from the current recipe: ctrl+r uses it", "1 项设置与当前配方不同：ctrl+r 写入配方"),
    "hw.pending": (
        "{n} settings differ from the current recipe: ctrl+r uses them",
        "{n} 项设置与当前配方不同：ctrl+r 写入配方",
    ),
    "hw.same": ("Same as the current recipe.", "与当前配方一致。"),
    "hw.used": ("Recipe updated: {changes}", "配方已更新：{changes}"),
    # dataset screen (its strings: i18n_dataset.py)
    **DATASET_STRINGS,
    # side panels
    "panel.guidance": ("Guidance", "说明"),
    "panel.memory": ("Memory", "显存"),
    "panel.problems": ("Problems", "问题"),
    "panel.diff": ("Changes from file", "与文件相比的修改"),
    "panel.diff_new": ("Changes from defaults", "与默认值相比的修改"),
    "guidance.allowed": ("Allowed", "取值范围"),
    "guidance.default": ("Default", "默认"),
    "guidance.key": ("Key", "键名"),
    "guidance.none": ("Move to a field to see what it does.", "移动到某个字段即可查看说明。"),
    "memory.unavailable": (
        "Estimator not available in this build.",
        "此版本尚未提供显存估算。",
    ),
    "memory.working": ("estimating…", "估算中……"),
    "memory.failed": ("Cannot estimate: {error}", "无法估算：{error}"),
    "memory.train_peak": ("Training", "训练"),
    "memory.inference": ("Inference", "推理"),
    "memory.free": ("{free} free", "可用 {free}"),
    "memory.no_gpu": ("No GPU here. On a card of:", "本机没有 GPU。若显卡为："),
    "memory.largest": ("Largest parts", "占用最多"),
    "verdict.fits": ("fits", "放得下"),
    "verdict.tight": ("tight", "勉强"),
    "verdict.does not fit": ("does not fit", "放不下"),
    "verdict.unknown": ("unknown", "未知"),
    "problems.none": ("No problems.", "没有问题。"),
    "diff.none": ("Nothing changed.", "没有修改。"),
    "field.invalid": ("✗ {message}", "✗ {message}"),
    "field.on": ("on", "开"),
    "field.off": ("off", "关"),
    "field.list_placeholder": ("q_proj, v_proj", "q_proj, v_proj"),
    "field.table_placeholder": ("instruction=question, output=answer", "instruction=question, output=answer"),
    # dialogs
    "dialog.yes": ("Yes", "是"),
    "dialog.no": ("No", "否"),
    "dialog.ok": ("OK", "确定"),
    "dialog.cancel": ("Cancel", "取消"),
    "dialog.error": ("Error", "错误"),
    "dialog.details": ("Details", "详情"),
    "dialog.hint": ("Hint: {hint}", "提示：{hint}"),
}
# Chat & Eval's Evaluate tab and the answers sampled during training have their own table.
STRINGS.update(EVAL_STRINGS)

from tuitune.tui.i18n_faults import STRINGS_FAULTS  # noqa: E402 - a feature's strings, kept beside
from tuitune.tui.i18n_together import STRINGS_TOGETHER  # noqa: E402 - a feature's strings, kept beside

STRINGS.update(STRINGS_TOGETHER)
STRINGS.update(STRINGS_FAULTS)

# Memory components in Chinese; in English the estimator's own COMPONENT_LABELS are shown.
MEMORY_PARTS_ZH = {
    "weights": "基础权重",
    "adapter": "适配器",
    "gradients": "梯度",
    "optimizer": "优化器状态",
    "master_weights": "fp32 主权重",
    "activations": "激活",
    "logits": "logits 与损失",
    "workspace": "临时张量",
    "cuda_context": "CUDA 上下文",
    "allocator_margin": "分配器余量",
}

# Words for "what is allowed" in Chinese. English uses FieldSpec.allowed() from the schema itself.
_ALLOWED_ZH = {
    "int": "整数",
    "float": "数字",
    "bool": "开或关",
    "list": "字符串列表",
    "indices": "GPU 编号列表，如 [0, 2]",
    "table": "键=值 表",
    "str": "文本",
}


STRINGS.update(HUB_STRINGS)
STRINGS.update(GPU_STRINGS)


def t(key: str, lang: str = "en", /, **values: Any) -> str:
    """The string for `key` in `lang`, with `{name}` placeholders filled from `values`."""
    en, zh = STRINGS[key]
    text = zh if lang == "zh" and zh else en
    return text.format(**values) if values else text


class Translated:
    """For screens and dialogs: `self.lang`, the app's language, and `self.t(key, **values)`."""

    app: Any

    @property
    def lang(self) -> str:
        return getattr(self.app, "lang", "en")

    def t(self, key: str, /, **values: Any) -> str:
        return t(key, self.lang, **values)


def allowed_text(spec: Any, lang: str = "en") -> str:
    """What a field accepts, in the interface language. Built from the schema's own range and choices."""
    if lang != "zh":
        return spec.allowed()
    from tuitune.core.recipe import _fmt

    if spec.kind == "choice":
        return "可选：" + "、".join(_fmt(c).strip('"') for c in spec.choices or ())
    if spec.kind in ("int", "float"):
        word = _ALLOWED_ZH[spec.kind]
        if spec.min is not None and spec.max is not None:
            return f"{word} {_fmt(spec.min)}..{_fmt(spec.max)}"
        if spec.min is not None:
            return f"{word} ≥ {_fmt(spec.min)}"
        return word
    if spec.kind in ("list", "indices") and spec.list_or:
        return _ALLOWED_ZH[spec.kind] + "，或 " + " / ".join(f'"{s}"' for s in spec.list_or)
    if spec.kind == "str" and spec.pattern_text:
        return spec.pattern_text  # the schema states it in English only
    return _ALLOWED_ZH.get(spec.kind, spec.allowed())


def localize_bindings(node: Any, lang: str) -> None:
    """Translate the footer labels of `node`'s key bindings.

    Convention: a Binding's description is an i18n key (e.g. "recipe.save"). Textual keeps each
    node's bindings in `_bindings` (a per-instance copy), so replacing them here affects this
    node only; Textual has no public hook for per-instance binding labels.
    """
    import dataclasses

    table = node._bindings.key_to_bindings
    for key, bindings in table.items():
        table[key] = [
            dataclasses.replace(b, description=t(b.description, lang)) if b.description in STRINGS else b
            for b in bindings
        ]
