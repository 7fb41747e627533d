"""analysis.tables by hand: the last and first evaluation of each run, and matched-proxy edge cases."""

import pandas as pd
import pytest

from analysis.tables import base_metrics, final_rows, formatted, matched_proxy, summarise, write_table

EVALS = pd.DataFrame({
    "variant": ["a", "a", "a", "a", "b", "b"], "seed": [0, 0, 1, 1, 0, 0], "iteration": [0, 20, 0, 10, 0, 20],
    "proxy": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "g": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
})


def test_final_rows_are_the_last_evaluation_of_each_run():
    final = final_rows(EVALS)
    assert list(final.index) == [0, 1, 2] and list(final.columns) == list(EVALS.columns)
    assert list(zip(final.variant, final.seed, final.iteration)) == [("a", 0, 20), ("a", 1, 10), ("b", 0, 20)]


def test_base_metrics_average_every_runs_iteration_zero():
    assert base_metrics(EVALS, ["g"]) == {"proxy": pytest.approx(3.0), "g": pytest.approx(0.7)}


def test_matched_proxy_with_an_offset_base_a_late_crossing_and_unreached_levels():
    evals = pd.DataFrame({
        "variant": ["a"] * 4 + ["a"] * 4 + ["b"] * 3, "seed": [0] * 4 + [1] * 4 + [0] * 3,
        "iteration": [0, 10, 20, 30] * 2 + [0, 10, 20],
        "proxy": [1.0, 1.2, 2.0, 3.0,   1.6, 1.8, 2.0, 2.2,   1.0, 2.0, 4.0],
        "g": [2.0, 1.5, 1.0, 0.5,   2.0, 1.9, 1.8, 1.7,   2.0, 1.6, 1.2],
    })
    base = {"proxy": 1.0, "g": 2.0}
    m = matched_proxy(evals, ["g"], base, fractions=(0.25, 0.5, 1.0))
    # reachable = min(mean(3.0, 2.2), 4.0) = 2.6; levels 1.4, 1.8, 2.6
    assert list(m.columns) == ["variant", "seed", "fraction", "proxy_level", "iteration", "g", "avg_gold"]
    rows = {(r.variant, r.seed, r.fraction): r for r in m.itertuples()}
    a0 = rows[("a", 0, 0.25)]  # between iterations 10 (1.2) and 20 (2.0): w = 0.25
    assert a0.proxy_level == pytest.approx(1.4) and a0.iteration == pytest.approx(12.5)
    assert a0.g == pytest.approx(0.75 * 1.5 + 0.25 * 1.0) and a0.avg_gold == pytest.approx(a0.g / 2.0)
    assert rows[("a", 0, 1.0)].iteration == pytest.approx(26.0)
    # seed 1 starts above the first level (skipped, not the end of its levels) and never reaches 2.6
    assert ("a", 1, 0.25) not in rows and ("a", 1, 1.0) not in rows
    assert rows[("a", 1, 0.5)].iteration == pytest.approx(10.0)
    assert rows[("b", 0, 0.5)].iteration == pytest.approx(8.0)
    never = matched_proxy(evals[evals.iteration == 0], ["g"], base)  # no run moves: an empty table, same columns
    assert never.empty and list(never.columns) == list(m.columns)


def test_summary_keeps_the_configured_order_and_formats_mean_and_std(tmp_path):
    rows = pd.DataFrame({"variant": ["grpo_guard", "flowgrpo", "grpo_guard"], "avg_gold": [1.0, 0.5, 2.0]})
    summary = summarise(rows, ["avg_gold"])
    assert list(summary.index) == ["grpo_guard", "flowgrpo"] and list(summary.columns)[0] == "seeds"
    table = formatted(summary, ["avg_gold"])
    assert list(table.index) == ["grpo_guard", "flowgrpo"] and list(table.columns) == ["seeds", "avg_gold"]
    assert table.loc["grpo_guard", "avg_gold"] == "1.500 ± 0.500" and table.loc["flowgrpo", "seeds"] == 1
    write_table(table, str(tmp_path / "t"), "Final rows.")
    assert (tmp_path / "t.md").read_text().startswith("Final rows.\n\n|")
    tex = (tmp_path / "t.tex").read_text()
    assert "\\caption{Final rows.}" in tex and "avg\\_gold" in tex and "grpo\\_guard" in tex
    assert pd.read_csv(tmp_path / "t.csv", index_col=0).loc["flowgrpo", "avg_gold"] == "0.500 ± 0.000"
