"""Interface strings of "did it work?": Chat & Eval's Evaluate tab (answer metrics, benchmarks) and
the answers sampled while a run trains (Train screen). English and Simplified Chinese; merged into
`tuitune.tui.i18n.STRINGS`, where `t()` finds them."""

from __future__ import annotations

EVAL_STRINGS: dict[str, tuple[str, str]] = {
    # answer evaluation (ctrl+r)
    "eval.idle": (
        "ctrl+r evaluates the run in the background (`tuitune eval RUN --json`): perplexity before and after, "
        "and exact match, token F1, ROUGE and BLEU of the answers on its eval split.",
        "ctrl+r 在后台评估该运行（`tuitune eval RUN --json`）：微调前后的困惑度，以及验证集上回答的精确匹配、token F1、ROUGE 和 BLEU。",
    ),
    "eval.need_run": ("Evaluation needs a run: load one first", "评估需要一个运行：请先载入"),
    "eval.running": ("Evaluating {run}… {stage}", "正在评估 {run}… {stage}"),
    "eval.done": (
        "{run}: {examples} examples, {tokens} tokens scored, {answered} answered · {seconds:.1f} s · {path}",
        "{run}：{examples} 条样本，{tokens} 个 token 计分，{answered} 条回答 · {seconds:.1f} 秒 · {path}",
    ),
    "eval.failed": ("Evaluation failed: {error}", "评估失败：{error}"),
    "eval.col.who": ("", ""),
    "eval.col.perplexity": ("perplexity", "困惑度"),
    "eval.col.loss": ("loss", "损失"),
    "eval.col.exact_match": ("EM %", "EM %"),
    "eval.col.f1": ("F1 %", "F1 %"),
    "eval.col.rouge1": ("ROUGE-1", "ROUGE-1"),
    "eval.col.rouge2": ("ROUGE-2", "ROUGE-2"),
    "eval.col.rougeL": ("ROUGE-L", "ROUGE-L"),
    "eval.col.bleu4": ("BLEU-4", "BLEU-4"),
    "eval.col.line": ("line", "行"),
    "eval.col.prompt": ("prompt", "提示"),
    "eval.col.reference": ("reference", "参考答案"),
    "eval.col.base": ("base", "基础模型"),
    "eval.col.tuned": ("tuned", "微调后"),
    "eval.metrics_note": (
        "answers in %: exact match and token F1 (normalized), ROUGE-1/2/L over words (Chinese cut by jieba), "
        "BLEU-4 (sacrebleu; Chinese per character)",
        "回答得分（%）：精确匹配与 token F1（先归一化）；ROUGE-1/2/L 按词计（中文用 jieba 分词）；BLEU-4（sacrebleu，中文按字）",
    ),
    # benchmarks (ctrl+b)
    "bench.title": ("Benchmarks ^b", "基准测试 ^b"),
    "bench.tasks_placeholder": (
        "lm-eval tasks, e.g. mmlu, cmmlu, ceval-valid, gsm8k (ctrl+o picks)",
        "lm-eval 任务，如 mmlu, cmmlu, ceval-valid, gsm8k（ctrl+o 选择）",
    ),
    "bench.limit": ("limit", "每项上限"),
    "bench.limit_all": ("all", "全部"),
    "bench.idle": (
        "ctrl+b scores the base and the tuned model on these lm-eval tasks (`tuitune eval RUN --tasks …`): "
        "MMLU, CMMLU and C-Eval show whether general knowledge survived the fine-tuning. "
        "lm-eval downloads each task's data on first use.",
        "ctrl+b 用这些 lm-eval 任务给基础模型和微调后的模型打分（`tuitune eval RUN --tasks …`）："
        "MMLU、CMMLU 和 C-Eval 可看出微调后通用知识是否保留。lm-eval 首次使用某任务时会下载其数据。",
    ),
    "bench.no_tasks": ("Name at least one lm-eval task (ctrl+o picks popular ones)", "请至少填写一个 lm-eval 任务（ctrl+o 可选择常用任务）"),
    "bench.bad_limit": ("limit \"{value}\": use a whole number of examples per task, or leave it empty for all",
                        "上限“{value}”无效：请填写每个任务的样本数（整数），留空表示全部"),
    "bench.running": ("Benchmarking {run} on {tasks}… {stage}", "正在对 {run} 运行基准测试 {tasks}… {stage}"),
    "bench.done": ("{run}: {tasks} task(s), base vs tuned · {seconds:.1f} s · {path}",
                   "{run}：{tasks} 个任务，基础模型对比微调后 · {seconds:.1f} 秒 · {path}"),
    "bench.chat_prompts": ("Prompts through the run's chat template and system prompt, as in training.",
                           "提示词经由该运行的对话模板和系统提示词渲染，与训练时一致。"),
    "bench.plain_prompts": ("Plain prompts without the chat template (lm-eval's default for base models).",
                            "提示词未经对话模板（lm-eval 对基础模型的默认做法）。"),
    "bench.failed": ("Benchmarks failed: {error}", "基准测试失败：{error}"),
    "bench.col.task": ("task", "任务"),
    "bench.col.metric": ("metric", "指标"),
    "bench.col.change": ("change", "变化"),
    "bench.run": ("Benchmarks", "基准测试"),
    "bench.run_help": ("Score the base and the tuned model on lm-eval tasks (MMLU, CMMLU, C-Eval, GSM8K…)",
                       "用 lm-eval 任务（MMLU、CMMLU、C-Eval、GSM8K…）给基础模型和微调后的模型打分"),
    "bench.pick": ("Pick tasks", "选择任务"),
    "bench.take": ("Take", "确定"),
    "bench.pick_title": ("Benchmark tasks (lm-eval)", "基准测试任务（lm-eval）"),
    "bench.pick_help": (
        "space ticks a task, enter takes the ticked ones, escape cancels. Any other lm-eval task can be typed "
        "(lm-eval ls tasks lists them).",
        "空格勾选任务，回车确定，Esc 取消。其他 lm-eval 任务可直接输入名称（`lm-eval ls tasks` 可列出全部）。",
    ),
    # answers sampled while training (Train screen)
    "train.samples_title": ("Answers now (greedy, eval.sample_prompts)", "当前回答（贪心解码，eval.sample_prompts）"),
    "train.sample_step": ("step {step}", "第 {step} 步"),
    "train.sample_empty": ("(empty)", "（空）"),
}
