"""Chat & Eval against a real tuned run (the tiny model trained by `tuitune train`): streamed replies,
base and tuned side by side on one seed, stopping, and the eval panel filled by `tuitune eval`."""

from __future__ import annotations

import json
import math

import pytest
from conftest import wait_for
from trained_runs import copy_runs, pin_for_pictures, script_replies, trained_runs

from tuitune.core.chat import GenerationSettings
from tuitune.tui.screens.chat import ChatScreen
from tuitune.tui.widgets.chat_log import Reply

SIZE = (100, 30)
PROMPT = "What is the capital of France?"  # the pre-trained tiny model answers this in several words


@pytest.fixture
def runs_dir(tiny_model_dir, tmp_path_factory, tmp_path):
    return copy_runs(trained_runs(tiny_model_dir, tmp_path_factory), tmp_path / "runs")


async def ask_to_load(pilot, target: str) -> ChatScreen:
    """Type the target and press enter (the load runs in a worker)."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.listed, what="the runs")
    field = screen.query_one("#chat-target")
    field.value = target
    field.focus()
    await pilot.press("enter")
    return screen


async def load(pilot, target: str = "alpha") -> ChatScreen:
    screen = await ask_to_load(pilot, target)
    await wait_for(pilot, lambda: screen.session is not None, timeout=120, what="the model")
    return screen


async def send(pilot, text: str) -> None:
    screen = pilot.app.screen
    screen.query_one("#chat-prompt").focus()
    screen.query_one("#chat-prompt").value = text
    replies = len(screen.query(Reply))
    await pilot.press("enter")
    await wait_for(pilot, lambda: len(screen.query(Reply)) > replies, what="the reply to begin")


def settings_fields(screen, **values) -> None:
    screen.query_one("#chat-settings").set_values(**values)


async def test_a_reply_streams_in_as_it_is_generated(make_app, runs_dir):
    seen: list[str] = []

    def hook(message) -> None:
        if isinstance(message, ChatScreen.Streamed):
            seen.append(message.text)

    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await load(pilot)
        assert "alpha" in str(screen.query_one("#chat-state").render())
        assert screen.compare_mode  # a tuned run opens side by side with its base
        await pilot.press("ctrl+t")  # the tuned model alone: a conversation
        assert not screen.compare_mode and "ctrl+t: side by side" in str(screen.query_one("#chat-mode").render())
        screen.stream_interval_s = 0  # every piece as its own message, to watch the text grow
        settings_fields(screen, temperature=0, max_new_tokens=40)
        await send(pilot, PROMPT)
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="the reply")
        (reply,) = screen.query(Reply)
        assert reply.finished and reply.text.strip()
        assert len(seen) >= 3 and all(b.startswith(a) and len(b) >= len(a) for a, b in zip(seen, seen[1:], strict=False))
        assert len(seen[0]) < len(seen[-1]) == len(reply.text)
        # The conversation carries on: the reply is remembered and the same greedy answer is core's.
        assert screen.messages == [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": reply.text}]
        direct = screen.session.reply([{"role": "user", "content": PROMPT}], GenerationSettings(temperature=0, max_new_tokens=40))
        assert reply.text == direct


async def test_side_by_side_answers_with_base_and_tuned_from_one_load(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(pilot)
        model = screen.session.loaded.model
        # Side by side from the start: a tuned run is compared with its base without asking.
        assert screen.compare_mode and "adapter switched off" in str(screen.query_one("#chat-mode").render())
        settings_fields(screen, temperature=0, max_new_tokens=24)
        await send(pilot, "Who made you?")
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="both answers")
        base, tuned = screen.query(Reply)
        assert (base.who, tuned.who) == ("base", "tuned") and base.text.strip() and tuned.text.strip()
        session = screen.session
        assert session.loaded.model is model and session.loaded.kind == "adapter"  # no second model
        messages = [{"role": "user", "content": "Who made you?"}]
        greedy = GenerationSettings(temperature=0, max_new_tokens=24)
        assert base.text == session.reply(messages, greedy, use_adapter=False)
        assert tuned.text == session.reply(messages, greedy, use_adapter=True)
        assert base.text != tuned.text


async def test_stop_ends_a_long_reply(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(pilot)
        await pilot.press("ctrl+t")  # one reply at a time
        settings_fields(screen, temperature=5, top_p=1.0, max_new_tokens=4000, seed=3)
        # The tiny model writes a whole reply in a fraction of a second, faster than a key press:
        # hold the session's one-reply-at-a-time lock so the key surely lands while it answers.
        with screen.session._lock:
            await send(pilot, PROMPT)
            await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not screen.generating, timeout=30, what="the stop")
        reply = screen.query(Reply).first()
        assert reply.finished and "[stopped]" in str(reply.render())
        assert len(screen.session.loaded.tokenizer(reply.text)["input_ids"]) <= 5  # ended at its first token (of 4000 allowed)
        await send(pilot, "Who made you?")  # and the chat goes on
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="the next reply")
        assert "[stopped]" not in str(screen.query(Reply).last().render())


async def test_a_bad_setting_is_named_and_nothing_is_sent(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(pilot)
        settings_fields(screen, top_p="1.5")
        screen.query_one("#chat-prompt").value = PROMPT
        screen.query_one("#chat-prompt").focus()
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert not screen.generating and not screen.query(Reply)
        assert any("top-p 1.5" in n.message for n in app._notifications)


async def test_an_unknown_target_says_so_in_place(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        assert screen.query_one("#chat-target").value == "beta"  # the newest finished run is offered
        screen.query_one("#chat-target").value = "no-such-run"
        screen.query_one("#chat-target").focus()
        await pilot.press("enter")
        state = screen.query_one("#chat-state")
        await wait_for(pilot, lambda: state.has_class("-error"), timeout=60, what="the message")
        assert "no-such-run" in str(state.render()) and "alpha" in str(state.render())


async def test_eval_panel_fills_from_the_real_evaluation(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        screen.query_one("#chat-target").value = "alpha"
        await pilot.press("ctrl+r")
        assert screen.query_one("#chat-tabs").active == "eval-pane" and screen.evaluating
        await wait_for(pilot, lambda: not screen.evaluating, timeout=180, what="the evaluation")
        panel = screen.query_one("#eval-panel")
        report = panel.report
        assert report is not None, str(panel.query_one("#eval-status").render())
        written = json.loads((runs_dir / "alpha" / "eval" / "report.json").read_text())
        assert report["tuned"] == written["tuned"] and report["base"] == written["base"]
        for who in ("base", "tuned"):
            assert math.isfinite(report[who]["perplexity"]) and report[who]["perplexity"] > 1
            assert 0 <= report[who]["exact_match"] <= 1 and 0 <= report[who]["f1"] <= 1
        assert report["base"]["perplexity"] != report["tuned"]["perplexity"]
        scores = panel.query_one("#eval-scores")
        cells = [[str(getattr(c, "plain", c)) for c in scores.get_row(r)] for r in scores.rows]
        assert cells[0][1] == f"{report['base']['perplexity']:.3f}" and cells[1][1] == f"{report['tuned']['perplexity']:.3f}"
        samples = panel.query_one("#eval-samples")
        assert samples.row_count == len(report["samples"]) > 0
        assert "examples" in str(panel.query_one("#eval-status").render())


def test_snapshot_chat_side_by_side(snap_compare, make_app, runs_dir, monkeypatch):
    pin_for_pictures(runs_dir)
    script_replies(monkeypatch.setattr)  # the run loads for real; its replies are the pictured ones
    monkeypatch.chdir(runs_dir.parent)

    async def chat(pilot):
        screen = await load(pilot)
        settings_fields(screen, temperature=0, max_new_tokens=24, seed=1)
        await send(pilot, "Who made you?")
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="both answers")
        await pilot.pause(0.2)

    assert snap_compare(make_app(start_mode="chat", runs_dir="runs"), terminal_size=SIZE, run_before=chat)


async def test_a_plain_model_chats_but_cannot_compare(make_app, runs_dir, tiny_model_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = await load(pilot, str(tiny_model_dir))
        assert screen.session.loaded.kind == "plain"
        await pilot.press("ctrl+t")
        assert not screen.compare_mode
        assert any("needs a run" in n.message for n in app._notifications)
        settings_fields(screen, temperature=0, max_new_tokens=8)
        await send(pilot, PROMPT)
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="the reply")
        assert screen.query(Reply).first().finished and len(screen.messages) == 2


async def test_benchmarks_run_for_real_and_fill_the_bars(make_app, runs_dir, tmp_path):
    """ctrl+b runs `tuitune eval RUN --tasks ... --json` (lm-eval) in a child process; task YAML files
    can be named by path. The bars show the report lm-eval's figures were written to."""
    from benchmark_tasks import write_tasks

    tasks = write_tasks(tmp_path / "tasks")
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        screen.query_one("#chat-target").value = "alpha"
        panel = screen.query_one("#bench-panel")
        panel.query_one("#bench-tasks").value = f"{tasks / 'tally_mc.yaml'}, {tasks / 'tally_gen.yaml'}"
        panel.query_one("#bench-limit").value = "3"
        await pilot.press("ctrl+b")
        assert screen.query_one("#chat-tabs").active == "eval-pane" and screen.evaluating
        await wait_for(pilot, lambda: not screen.evaluating, timeout=240, what="the benchmarks")
        status = str(panel.query_one("#bench-status").render())
        assert panel.report is not None, status
        written = json.loads((runs_dir / "alpha" / "eval" / "benchmarks.json").read_text())
        assert panel.report["tasks"] == written["tasks"] and "2 task(s)" in status
        assert [t["task"] for t in written["tasks"]] == ["tally_mc", "tally_gen"]
        assert all(t["samples"] == 3 for t in written["tasks"])
        bars = panel.query_one("#bench-bars")
        lines = str(bars.render()).splitlines()
        assert len(lines) == 3 and lines[1].startswith("tally_mc") and "acc" in lines[1]
        gen = written["tasks"][1]["metrics"][0]
        assert lines[2].startswith("tally_gen") and f"{100 * gen['base']:.1f}" in lines[2] and f"{100 * gen['tuned']:.1f}" in lines[2]
        # Two bars of one width per row: base and tuned.
        assert all(line.count("█") + line.count("░") == lines[2].count("█") + lines[2].count("░") > 0 for line in lines[1:])


async def test_benchmark_fields_say_what_is_wrong(make_app, runs_dir):
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        panel = screen.query_one("#bench-panel")
        status = panel.query_one("#bench-status")
        await pilot.press("ctrl+b")
        assert "at least one lm-eval task" in str(status.render()) and status.has_class("-error")
        panel.query_one("#bench-tasks").value = "mmlu"
        panel.query_one("#bench-limit").value = "lots"
        await pilot.press("ctrl+b")
        assert 'limit "lots"' in str(status.render()) and not screen.evaluating
        screen.query_one("#chat-target").value = ""
        panel.query_one("#bench-limit").value = ""
        await pilot.press("ctrl+b")
        assert "needs a run" in str(status.render())


async def test_task_picker_ticks_popular_tasks_and_keeps_typed_ones(make_app, runs_dir):
    from textual.widgets import SelectionList

    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        field = screen.query_one("#bench-tasks")
        field.value = "mmlu, my_task"
        field.focus()
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen.focused, SelectionList), what="the picker")
        picker = app.screen.query_one(SelectionList)
        assert picker.selected == ["mmlu"]
        await pilot.press("down", "space", "down", "space", "enter")  # tick cmmlu and ceval-valid
        await wait_for(pilot, lambda: app.screen is screen, what="the picker to close")
        assert field.value == "mmlu, cmmlu, ceval-valid, my_task"


@pytest.mark.parametrize("lang, size", [("en", SIZE), ("zh", (80, 24))])
def test_snapshot_evaluate_tab(snap_compare, make_app, runs_dir, repo_root, monkeypatch, lang, size):
    """The Evaluate tab with written reports (tests/data/eval, made by hand for pictures: training's
    numbers differ per CPU): answer metrics with ROUGE/BLEU, benchmarks with a bar per task."""
    reports = repo_root / "tests" / "data" / "eval"
    pin_for_pictures(runs_dir)
    monkeypatch.chdir(runs_dir.parent)

    async def show(pilot):
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.listed, what="the runs")
        await pilot.press("ctrl+y")
        screen.query_one("#eval-panel").show_report(json.loads((reports / "answers.json").read_text()))
        screen.query_one("#bench-panel").set_tasks(["mmlu", "cmmlu", "ceval-valid", "gsm8k"])
        screen.query_one("#bench-panel").show_report(json.loads((reports / "benchmarks.json").read_text()))
        await pilot.pause(0.2)

    app = make_app(start_mode="chat", runs_dir="runs", lang=lang)
    assert snap_compare(app, terminal_size=size, run_before=show)



async def test_a_long_side_by_side_pair_shows_both_beginnings_once_done(make_app, runs_dir, monkeypatch):
    """At 80x24 a rambling base answer is taller than the log: when both are in, the view goes back to
    the pair's first lines, where the tuned answer starts, instead of staying at the base answer's end.
    The model step is scripted (a long base answer, a short tuned one); loading and the screen are real."""
    from tuitune.core.chat import ChatSession

    def generate(self, target, ids, settings, cancel, *, disable_adapter):
        words = ["on and on"] * 200 if disable_adapter or target is not self.loaded else ["I am Tally."]
        yield from (w + " " for w in words)

    monkeypatch.setattr(ChatSession, "_generate", generate)
    app = make_app(start_mode="chat", runs_dir=runs_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await load(pilot)
        assert screen.compare_mode
        await send(pilot, "Who made you?")
        await wait_for(pilot, lambda: not screen.generating, timeout=60, what="both answers")
        log, pair = screen.query_one("#chat-log"), screen.query_one(".pair")
        assert pair.outer_size.height > log.scrollable_content_region.height
        await wait_for(pilot, lambda: log.scroll_y == pair.virtual_region.y, timeout=10, what="the pair's first lines")
        assert log.scroll_y < log.max_scroll_y
