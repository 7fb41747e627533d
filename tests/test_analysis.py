"""Tables: the paper's Average(gold) from its raw metrics, matched-proxy interpolation, summaries."""

import pandas as pd
import pytest

from analysis.tables import PAPER_MAIN, average_gold, matched_proxy, paper_average_gold, summarise


def test_paper_average_gold_matches_every_printed_row():
    recomputed = paper_average_gold(PAPER_MAIN).round(2)
    assert list(recomputed) == list(PAPER_MAIN.avg_gold_printed)


def test_average_gold_uses_likelihood_ratio_for_loglik():
    base = {"loglik": 1.0, "accuracy": 0.8, "diversity": 0.1}
    assert average_gold(base, base, list(base)) == pytest.approx(1.0)
    worse = {"loglik": 0.0, "accuracy": 0.4, "diversity": 0.1}
    assert average_gold(worse, base, list(base)) == pytest.approx((0.36787944 + 0.5 + 1) / 3)


def test_matched_proxy_interpolates_at_the_first_crossing():
    evals = pd.DataFrame({
        "variant": ["a"] * 3 + ["b"] * 3, "seed": 0, "iteration": [0, 10, 20] * 2,
        "proxy": [0.0, 0.5, 1.0, 0.0, 1.0, 2.0], "g": [1.0, 0.5, 0.0, 1.0, 0.8, 0.6],
    })
    base = {"proxy": 0.0, "g": 1.0}
    m = matched_proxy(evals, ["g"], base, fractions=(0.5, 1.0))
    # reachable = min over variants of the best proxy = 1.0; levels 0.5 and 1.0
    a = m[m.variant == "a"].set_index("fraction")
    b = m[m.variant == "b"].set_index("fraction")
    assert a.loc[0.5, "g"] == pytest.approx(0.5) and a.loc[1.0, "g"] == pytest.approx(0.0)
    assert b.loc[0.5, "g"] == pytest.approx(0.9) and b.loc[0.5, "iteration"] == pytest.approx(5.0)
    assert b.loc[1.0, "avg_gold"] == pytest.approx(0.8)


def test_summarise_gives_population_std_over_seeds():
    rows = pd.DataFrame({"variant": ["a", "a", "b"], "x": [1.0, 3.0, 5.0]})
    s = summarise(rows, ["x"])
    assert s.loc["a", "x"] == 2.0 and s.loc["a", "x_std"] == 1.0 and s.loc["b", "seeds"] == 1


def test_main_table_keeps_a_proxy_breakdown_and_the_summary_drops_it(tmp_path):
    """GenEval's per-tag accuracies (extra keys of summary.jsonl) become columns of that setting's table only."""
    import json

    from analysis.__main__ import summary, tables

    def write(folder, row):
        (folder / "scores").mkdir(parents=True)
        (folder / "scores" / "summary.jsonl").write_text(json.dumps(row) + "\n")

    for task, extra in (("geneval", {"geneval_counting": 0.5}), ("ocr", {})):
        runs = tmp_path / "sd35" / task
        write(runs / "base", {"proxy": 0.5, **extra, "hpsv2": 0.3})
        write(runs / "grpo_guard" / "seed0", {"proxy": 0.9, **{k: 0.75 for k in extra}, "hpsv2": 0.27})
        (runs / "grpo_guard" / "seed0" / "final.json").write_text("{}")
        (runs / "grpo_guard" / "seed0" / "config.yaml").write_text(
            f"variant: grpo_guard\nsampler: flowgrpo\nbackbone: {{name: sd35}}\ntask: {{reward: {task}}}\n")
        tables(runs, {"gold": ["hpsv2"], "variants": ["grpo_guard"]}, runs / "tables")
    main = pd.read_csv(tmp_path / "sd35" / "geneval" / "tables" / "main_raw.csv", index_col=0)
    assert main.loc["grpo_guard", "geneval_counting"] == 0.75 and main.loc["base", "geneval_counting"] == 0.5
    assert main.loc["grpo_guard", "avg_gold"] == pytest.approx(0.9)
    assert main.loc["grpo_guard", "method"] == "grpo_guard" and main.loc["base", "reward"] == "geneval"  # paper's keys
    summary([tmp_path / "sd35" / t / "tables" / "main_raw.csv" for t in ("geneval", "ocr")], tmp_path / "all")
    header = (tmp_path / "all" / "main.csv").read_text().splitlines()[0]
    assert "geneval_counting" not in header and "hpsv2" in header and "avg_gold" in header
