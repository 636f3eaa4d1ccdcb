"""The benchmark bars: which metric a row shows, how scores are scaled, and bars that fit the width."""

from __future__ import annotations

import json

from tuitune.tui.widgets.benchmark_bars import BenchmarkBars, as_shown, score_rows


def _report(repo_root) -> dict:
    return json.loads((repo_root / "tests" / "data" / "eval" / "benchmarks.json").read_text())


def test_rows_show_each_tasks_first_metric_with_its_filter(repo_root):
    rows = score_rows(_report(repo_root))
    assert [(r["task"], r["metric"]) for r in rows] == [
        ("mmlu", "acc"), ("cmmlu", "acc"), ("ceval-valid", "acc"), ("gsm8k", "exact_match (strict-match)")
    ]
    assert rows[0]["base"] == 0.7181 and rows[0]["samples"] == 14042


def test_fractions_are_percentages_other_scores_stay():
    assert as_shown([0.25, 1.0]) == (100.0, ".1f")
    assert as_shown([3.2, 0.5]) == (1.0, ".3g")  # a perplexity is not a fraction
    assert as_shown([None, 0.5]) == (100.0, ".1f")


async def test_bars_fit_the_width_and_say_which_way_it_went(repo_root):
    from textual.app import App

    class Host(App):
        def compose(self):
            yield BenchmarkBars("en", id="bars")

    app = Host()
    async with app.run_test(size=(80, 10)):
        bars = app.query_one(BenchmarkBars)
        bars.show(_report(repo_root))
        await app.workers.wait_for_complete()
        lines = str(bars.render()).splitlines()
        assert len(lines) == 5 and all(len(line) <= 80 for line in lines)
        mmlu = lines[1]
        assert "71.8 ±0.4" in mmlu and "71.3 ±0.4" in mmlu and mmlu.rstrip().endswith("-0.5")
        assert lines[2].rstrip().endswith("+0.2")
        # The bar of 71.8% is longer than none and shorter than the whole width.
        filled = mmlu.count("█")
        assert 0 < filled < filled + mmlu.count("░")
