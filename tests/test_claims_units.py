"""The claims' formulas and rules (analysis.claims, analysis.stats) on a few rows built in memory.

tests/test_claims.py checks whole settings read from run folders (seconds each); these pin every band edge
(a value just inside and just outside), per-seed formula, verdict and row field on hand-made frames in
milliseconds, so that ``make mutate`` can run them for each mutant.
"""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.claims import CAPTION, COLUMNS, claims_of, claims_table, formatted, write_claims
from analysis.claims_outcomes import (C6, C7, C8, C11, C12, SRC_CURVES, SRC_MAIN, SRC_MATCHED, c6_baseline_hacking,
                                      c7_guard_at_matched_proxy, c8_mean_revised, c11_main_table, c12_public_presets,
                                      group_of, level_gap, matched, missing)
from analysis.claims_steps import (C1, C2, C3, C4, C5, SRC_CLIP, SRC_GRAD, SRC_STEPS, RunSteps, about, bonferroni_z,
                                   c1_baseline_shift, c2_predicted_shift, c3_clip_asymmetry, c4_normalised,
                                   c5_gradient_spread, clip_ratio, has_steps, low_noise, run_steps, spread, values)
from analysis.claims_timing import C9, C10, c9_rationorm_slower, c10_temp_reweight, collapse_iteration
from analysis.evidence import (NO_UNITS, Setting, Values, config_of, curves, faithful_variants, finals, first_configs,
                               read_base, read_or_empty, row, untested)
from analysis.stats import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, Verdict, judge, seeds_needed,
                            t_interval, t_quantile)
from analysis.tables import beside_paper
from guard.schedule import SCHEDULES

INF = math.inf
SEEDS = (0, 1, 2)
STEPS = range(5)  # an odd count: the median step (2) belongs to the low-noise half {2, 3, 4}
EMPTY = pd.DataFrame(columns=["variant", "seed"])


# --- analysis.stats ------------------------------------------------------------------------------------------

def test_t_quantile_is_students_at_the_two_sided_level():
    assert t_quantile(3) == pytest.approx(4.302652729749462, rel=1e-12)  # t_{0.975, 2}
    assert t_quantile(2) == pytest.approx(12.706204736174694, rel=1e-12)  # t_{0.975, 1}
    assert t_quantile(5, 0.9) == pytest.approx(2.1318467863266495, rel=1e-12)  # t_{0.95, 4}


def test_t_interval_uses_the_sample_std_and_the_level():
    assert t_interval(np.array([1.0, 2.0, 3.0])) == pytest.approx((2 - 4.302652729749462 / math.sqrt(3),
                                                                    2 + 4.302652729749462 / math.sqrt(3)), rel=1e-12)
    # values 0, 4 (n 2): mean 2, sd sqrt(8)
    assert t_interval(np.array([0.0, 4.0]), 0.9) == pytest.approx(
        (2 - 6.313751514675041 * math.sqrt(8) / math.sqrt(2), 2 + 6.313751514675041 * math.sqrt(8) / math.sqrt(2)))


def test_seeds_needed_is_the_first_n_whose_half_width_is_below_the_distance_to_the_nearest_edge():
    # mean 1, sd 1, edge 0: t_{n-1} / sqrt(n) < 1 first at n = 7 (n = 6: 2.571 / 2.449 > 1)
    assert seeds_needed(1.0, 1.0, 0.0, INF) == 7
    assert seeds_needed(-1.0, 1.0, -INF, 0.0) == 7
    assert seeds_needed(9.0, 1.0, 0.0, 10.0) == 7  # the nearer edge (10) counts
    assert seeds_needed(1.0, 1.0, 0.0, 10.0) == 7
    assert seeds_needed(1.0, 1.0, 0.0, INF, level=0.9) == 5  # t_{0.95, 4} / sqrt(5) = 0.953
    assert seeds_needed(1.0, 0.01, 0.0, INF) == 2
    assert seeds_needed(1.0, 1.0, 0.0, INF, most=6) is None
    assert seeds_needed(1.0, 1.0, 0.0, INF, most=7) == 7
    assert seeds_needed(0.0, 1.0, 0.0, INF) is None  # the mean sits on the edge
    assert seeds_needed(1.0, 0.0, 0.0, INF) is None  # no spread
    assert seeds_needed(5.0, 1.0, 2.0, 5.0) is None  # the mean sits on the upper edge


def test_seeds_needed_stops_strictly_below_the_distance_and_at_most_1000_seeds():
    # a distance equal to the half-width at n = 5 needs n = 6
    assert seeds_needed(t_quantile(5) / math.sqrt(5), 1.0, 0.0, INF) == 6
    # distance between the half-widths at 1000 and 1001 seeds: 1001 would decide, but the search stops at 1000
    at = {n: t_quantile(n) / math.sqrt(n) for n in (1000, 1001)}
    assert seeds_needed((at[1000] + at[1001]) / 2, 1.0, 0.0, INF) is None
    assert seeds_needed((at[1000] + at[1001]) / 2, 1.0, 0.0, INF, most=1001) == 1001


def test_judge_verdicts_and_fields():
    low, high = t_interval(np.array([1.0, 1.1, 0.9]))
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, 0.0) == Verdict(3, pytest.approx(1.0), low, high, REPRODUCED, "", None)
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, -INF, 0.0).verdict == NOT_REPRODUCED
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, 2.0).verdict == NOT_REPRODUCED
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, 0.0, 1.0).verdict == INCONCLUSIVE
    assert (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED) == ("reproduced", "not reproduced", "inconclusive",
                                                                      "not tested")


def test_judge_band_edges_are_inclusive_for_reproduced_and_strict_for_not_reproduced():
    values = {0: 1.0, 1: 2.0, 2: 4.0}
    low, high = t_interval(np.array(list(values.values())))
    assert judge(values, low, high).verdict == REPRODUCED
    assert judge(values, low, INF).verdict == REPRODUCED
    assert judge(values, -INF, high).verdict == REPRODUCED
    assert judge(values, np.nextafter(low, INF), INF).verdict == INCONCLUSIVE
    assert judge(values, -INF, np.nextafter(high, -INF)).verdict == INCONCLUSIVE
    assert judge(values, high, INF).verdict == INCONCLUSIVE  # touching the edge from outside
    assert judge(values, -INF, low).verdict == INCONCLUSIVE
    assert judge(values, np.nextafter(high, INF), INF).verdict == NOT_REPRODUCED
    assert judge(values, -INF, np.nextafter(low, -INF)).verdict == NOT_REPRODUCED


def test_judge_strict_band_excludes_its_edges():
    """A strict check ("< hi", "> lo"): seeds that all tie on the edge fail it; an interval touching it is inconclusive."""
    assert judge({0: 0.0, 1: 0.0, 2: 0.0}, -INF, 0.0).verdict == REPRODUCED
    assert judge({0: 0.0, 1: 0.0, 2: 0.0}, -INF, 0.0, strict=True).verdict == NOT_REPRODUCED
    assert judge({0: 0.0, 1: 0.0, 2: 0.0}, 0.0, INF, strict=True).verdict == NOT_REPRODUCED
    assert judge({0: 1.0, 1: 1.0}, 0.0, 1.0, strict=True).verdict == NOT_REPRODUCED
    values = {0: 1.0, 1: 1.1, 2: 0.9}
    low, high = judge(values).low, judge(values).high
    assert judge(values, np.nextafter(low, -INF), np.nextafter(high, INF), strict=True).verdict == REPRODUCED
    assert judge(values, low, INF, strict=True).verdict == INCONCLUSIVE
    assert judge(values, -INF, high, strict=True).verdict == INCONCLUSIVE
    assert judge(values, high, INF, strict=True).verdict == NOT_REPRODUCED
    assert judge(values, -INF, low, strict=True).verdict == NOT_REPRODUCED
    assert judge(values, np.nextafter(high, -INF), INF, strict=True).verdict == INCONCLUSIVE
    assert judge(values, -INF, np.nextafter(low, INF), strict=True).verdict == INCONCLUSIVE


def test_judge_inconclusive_says_how_many_seeds_would_decide():
    values = {0: 1.0, 1: -1.0, 2: 3.0}
    v = judge(values, 0.0)
    assert (v.verdict, v.reason) == (INCONCLUSIVE, "")
    assert v.seeds_needed == seeds_needed(1.0, 2.0, 0.0, INF) == 18
    assert judge(values, -INF, 0.0).seeds_needed == 18
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, -INF, 0.0).seeds_needed is None
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, 0.0).seeds_needed is None


def test_judge_drops_missing_values_and_needs_two_seeds():
    assert judge({0: 1.0, 1: None, 2: math.nan, 3: INF, 4: 3.0}, 0.0) == judge({0: 1.0, 4: 3.0}, 0.0)
    assert judge({0: 1.0, 4: 3.0}, 0.0).seeds == 2
    one = judge({0: 2.0, 1: math.nan}, 0.0)
    assert (one.seeds, one.mean, one.verdict, one.reason, one.seeds_needed) == (1, 2.0, NOT_TESTED,
                                                                                "one seed: no interval over seeds", None)
    assert math.isnan(one.low) and math.isnan(one.high)
    none = judge({0: math.nan}, 0.0)
    assert (none.seeds, none.verdict, none.reason) == (0, NOT_TESTED, "no seed has this value")
    assert math.isnan(none.mean) and math.isnan(none.low) and math.isnan(none.high)
    assert none.seeds_needed is None


def test_judge_of_integer_values_is_the_float_verdict():
    assert judge({0: 1, 1: 2, 2: 4}, 0.0) == judge({0: 1.0, 1: 2.0, 2: 4.0}, 0.0)


# --- rows ------------------------------------------------------------------------------------------------------

def same(a: dict, b: dict) -> None:
    """Two rows with the keys of COLUMNS and the same values (NaN equal to NaN). (The key order of a row is not
    pinned: claims_of puts the rows in COLUMNS order.)"""
    assert sorted(a) == sorted(COLUMNS) and list(b) == COLUMNS
    for k in COLUMNS:
        if isinstance(b[k], float) and math.isnan(b[k]):
            assert isinstance(a[k], float) and math.isnan(a[k]), k
        else:
            assert a[k] == (pytest.approx(b[k]) if isinstance(b[k], float) else b[k]), k


def test_row_quotes_the_values_and_the_verdict():
    # seed-only evidence (Values without replicates): the t-interval over seeds, as judge gives it, and NO_UNITS
    low, high = t_interval(np.array([1.0, 1.1, 1.2]))
    same(row("C0", "words", "what is measured", ["a", "b"], Values({2: 1.2, 0: 1.0, 1: 1.1}), 0.0, INF, "src",
             "paper says"),
         {"id": "C0", "claim": "words", "check": "what is measured", "variants": "a, b",
          "per_seed": "s0: 1; s1: 1.1; s2: 1.2", "seeds": 3, "mean": 1.1, "ci95_low": low, "ci95_high": high,
          "band_low": 0.0, "band_high": INF, "strict": False, "verdict": REPRODUCED, "reason": NO_UNITS,
          "covers": "seeds", "units": "3 seeds", "seed_sd": 0.1, "seeds_needed": None, "p_improvement": math.nan,
          "p_improvement_low": math.nan, "p_improvement_high": math.nan, "paper": "paper says", "source": "src"})
    r = row("C0", "words", "check", ["a"], Values({0: 0.123456, 1: -1.0, 2: 3.0}), 0.0, INF, "src")
    assert (r["per_seed"], r["paper"], r["verdict"], r["seeds_needed"]) == ("s0: 0.1235; s1: -1; s2: 3", "", INCONCLUSIVE,
                                                                            judge({0: 0.123456, 1: -1.0, 2: 3.0}, 0.0).seeds_needed)
    v = judge({0: 0.123456, 1: -1.0, 2: 3.0})
    assert (r["ci95_low"], r["ci95_high"]) == (v.low, v.high)
    strict = row("C0", "w", "c", ["a"], Values({0: 0.0, 1: 0.0}), -INF, 0.0, "s", strict=True)
    assert (strict["verdict"], strict["strict"], strict["band_low"], strict["band_high"]) == (NOT_REPRODUCED, True, -INF, 0.0)
    # new: one seed without within-run resamples is not tested, and says why (it was "one seed: no interval over seeds")
    one = row("C0", "w", "c", ["a"], Values({0: 1.0, 1: math.nan}), 0.0, INF, "s")
    assert (one["reason"], one["verdict"], one["seeds"], one["mean"], one["per_seed"]) == (
        f"one seed and {NO_UNITS}", NOT_TESTED, 1, 1.0, "s0: 1")
    assert math.isnan(one["ci95_low"]) and math.isnan(one["ci95_high"]) and one["seeds_needed"] is None
    none = row("C0", "w", "c", ["a"], Values({0: math.nan}), 0.0, INF, "s")
    assert (none["reason"], none["verdict"], none["seeds"], none["per_seed"]) == ("no seed has this value", NOT_TESTED, 0, "")


def test_row_with_within_run_resamples():
    """Replicates: several seeds give the two-stage interval widened to the t-interval; one seed, the percentile
    interval of its resamples, with covers saying that it is one seed's noise only."""
    reps = {0: np.linspace(0.5, 1.5, 41), 1: np.linspace(1.5, 2.5, 41)}
    r = row("C0", "w", "c", ["a"], Values({0: 1.0, 1: 2.0}, reps, "images within 3 prompts", "9 images", "a note"),
            0.0, INF, "s")
    low, high = t_interval(np.array([1.0, 2.0]))
    assert r["ci95_low"] <= low and r["ci95_high"] >= high and r["verdict"] == INCONCLUSIVE
    assert (r["covers"], r["units"], r["reason"], r["seeds"], r["mean"]) == (
        "seeds x images within 3 prompts", "2 seeds x 9 images", "a note", 2, 1.5)
    one = row("C0", "w", "c", ["a"], Values({0: 1.0}, {0: reps[0]}, "images within 3 prompts", "9 images"), 0.0, INF, "s")
    assert (one["verdict"], one["reason"], one["seeds"], one["units"]) == (REPRODUCED, "", 1, "9 images")
    assert one["covers"] == "images within 3 prompts (one seed: evaluation or iteration noise only)"
    assert (one["ci95_low"], one["ci95_high"]) == pytest.approx(tuple(np.quantile(reps[0], [0.025, 0.975])))
    assert row("C0", "w", "c", ["a"], Values({0: 1.0}, {0: reps[0]}), 1.0, INF, "s")["verdict"] == INCONCLUSIVE
    assert row("C0", "w", "c", ["a"], Values({0: 1.0}, {0: reps[0]}), 1.6, INF, "s")["verdict"] == NOT_REPRODUCED
    bad = row("C0", "w", "c", ["a"], Values({0: 1.0}, {0: np.array([1.0, math.nan, 2.0])}), 0.0, INF, "s")
    assert bad["reason"] == "1 of 3 resamples undefined and left out" and bad["verdict"] == REPRODUCED


def test_untested_row_has_every_key_and_no_values():
    same(untested("C0", "words", "what would be measured", "why not", "src", ["a", "b"]),
         {"id": "C0", "claim": "words", "check": "what would be measured", "variants": "a, b", "per_seed": "",
          "seeds": 0, "mean": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "band_low": math.nan,
          "band_high": math.nan, "strict": False, "verdict": NOT_TESTED, "reason": "why not", "covers": "", "units": "",
          "seed_sd": math.nan, "seeds_needed": None, "p_improvement": math.nan, "p_improvement_low": math.nan,
          "p_improvement_high": math.nan, "paper": "", "source": "src"})
    assert untested("C0", "w", "c", "r", "s")["variants"] == ""


def not_tested(rows, id_, check, reason, source, variants=""):
    """The claim gave exactly one row: not tested, with this check, reason, source and variants."""
    assert [{k: r[k] for k in ("id", "check", "reason", "source", "variants", "verdict", "seeds")} for r in rows] == [
        {"id": id_, "check": check, "reason": reason, "source": source, "variants": variants, "verdict": NOT_TESTED,
         "seeds": 0}]


# --- a setting built in memory -----------------------------------------------------------------------------------

def config(method, sampler="flowgrpo", **extra):
    return {"variant": method, "seed": 0, "sampler": sampler, "num_steps": 10, "shift": 3.0, "noise_level": 0.7,
            "backbone": {"name": "nano"}, "task": {"reward": "composition"}, **extra}


def setting(configs, steps=EMPTY, evals=EMPTY, scores=EMPTY, base=None, eval_units=EMPTY, final_units=EMPTY,
            base_units=None, **settings):
    """configs: variant -> method (or a whole config); the baseline is flowgrpo, the gold metric accuracy; ``base``:
    the base model's final scores (a dict, as base/scores/summary.jsonl's one row); no per-image units unless given."""
    settings = {"gold": ["accuracy"], "baseline": "flowgrpo", "variants": list(configs), **settings}
    return Setting(settings, {v: c if isinstance(c, dict) else config(c) for v, c in configs.items()}, steps, evals,
                   scores, None if base is None else pd.DataFrame([base]), eval_units, final_units, base_units)


def steps(*per_variant):
    """steps.jsonl rows: (variant, values(k, seed) -> diagnostics); update 0 (on-policy, dropped) carries junk."""
    return pd.DataFrame([{"variant": v, "seed": seed, "iteration": 0, "update": u, "step": k, "n": 4,
                          **{c: (x if u else 99.0) for c, x in values(k, seed).items()}}
                         for v, values in per_variant for seed in SEEDS for u in (0, 1) for k in STEPS])


def by_step(**columns):
    """The same per-step columns for every seed: name -> list over STEPS."""
    return lambda k, seed: {c: x[k] for c, x in columns.items()}


def low_high(low, high):
    """high at the high-noise steps 0, 1; low at the low-noise steps 2, 3, 4."""
    return [high, high, low, low, low]


def only(rows, text=""):
    found = [r for r in rows if text in r["check"]]
    assert len(found) == 1, [r["check"] for r in rows]
    return found[0]


def values_of(r):
    """Per-seed values of a row back from its text."""
    return [float(x.split(": ")[1]) for x in r["per_seed"].split("; ")]


def test_roles_come_from_the_configs_in_the_settings_order():
    configs = {"p": config("grpo_guard", bias_reduction="batch"), "f": config("flowgrpo"), "g": config("grpo_guard"),
               "d": config("dancegrpo", "dancegrpo"), "dg": config("grpo_guard", "dancegrpo")}
    assert faithful_variants(configs) == {("grpo_guard", "flowgrpo"): "p", ("flowgrpo", "flowgrpo"): "f",
                                          ("dancegrpo", "dancegrpo"): "d", ("grpo_guard", "dancegrpo"): "dg"}
    s = setting(configs, baseline="d")
    assert (s.baseline, s.sampler, s.role("grpo_guard"), s.role("grpo_guard", "flowgrpo")) == ("d", "dancegrpo", "dg", "p")
    assert s.pairs == [("f", "p"), ("d", "dg")]
    assert setting(configs, baseline="absent").baseline is None
    assert setting(configs, baseline="absent").sampler == "flowgrpo"  # the first variant's
    assert setting({}).sampler is None and setting({}).role("grpo_guard") is None


def test_has_steps_needs_the_variant_and_a_logged_value():
    s = setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"},
                steps(("flowgrpo", by_step(a=[1.0] * 5, b=[math.nan] * 5)), ("g", by_step(a=[1.0] * 5, b=[1.0] * 5))))
    assert has_steps(s, "flowgrpo", "a") and has_steps(s, "g", "b")
    assert not has_steps(s, "flowgrpo", "b") and not has_steps(s, "flowgrpo", "c") and not has_steps(s, None, "a")
    assert not has_steps(setting({"flowgrpo": "flowgrpo"}), "flowgrpo", "a")


def test_low_noise_is_the_upper_half_of_the_steps_median_included():
    assert list(low_noise(pd.Index([0, 1, 2, 3, 4]))) == [False, False, True, True, True]
    assert list(low_noise(pd.Index([3, 4, 5, 6]))) == [False, False, True, True]


def test_run_steps_are_each_seed_of_one_variant_where_the_block_column_is_logged():
    # (was per_seed(frame, variant, fn)): seed 2's only row is on-policy (update 0) and is dropped
    raw = pd.DataFrame({"variant": ["a", "a", "a", "b", "a", "a"], "seed": [0, 0, 1, 0, 2, 1],
                        "iteration": [0, 1, 0, 0, 0, 3], "update": [1, 1, 1, 1, 0, 1], "step": [0, 0, 0, 0, 0, 1],
                        "n": [1] * 6, "x": [1.0, 2.0, 5.0, 7.0, 9.0, math.nan], "y": [1.0, math.nan, 1.0, 1.0, 1.0, 2.0]})
    s = setting({"a": "flowgrpo", "b": "grpo_guard"}, raw)
    runs = run_steps(s, "a", "x")
    assert sorted(runs) == [0, 1] and list(runs[0].rows.x) == [1.0, 2.0] and list(runs[1].rows.x) == [5.0]
    assert list(runs[0].iterations) == [0, 1] and list(runs[0].steps) == [0] and runs[0].block_column == "x"
    v = values(runs, lambda r: r.mean("x")[:, 0])
    assert v.per_seed == {0: 1.5, 1: 5.0} and v.covers == "iterations (stationary blocks)"
    assert v.units == "2 iterations, mean block 1.0" and set(v.replicates) == {0, 1}
    assert list(run_steps(s, "a", "y")[1].rows.step) == [0, 1]  # the rows where y is logged
    assert list(run_steps(s, "a", "y")[0].rows.iteration) == [0]
    assert values(run_steps(s, "b", "x"), lambda r: r.mean("x").max(axis=1)).per_seed == {0: 7.0}


# --- C1-C5 -----------------------------------------------------------------------------------------------------

BASELINE_ONLY = {"flowgrpo": "flowgrpo"}


def c1_setting(mean, std):
    return setting(BASELINE_ONLY, steps(("flowgrpo", lambda k, seed: {"log_ratio_mean": mean(k, seed),
                                                                       "log_ratio_std": std(k, seed)})))


def test_c1_per_seed_values():
    # |m/s| per step: 2(1+s), 1, 3, 2, 5/(1+s): high half mean (2(1+s) + 1)/2, low half (5 + 5/(1+s))/3
    s = c1_setting(lambda k, seed: [0.02 * (1 + seed), -0.01, -0.03, -0.04, -0.05][k],
                   lambda k, seed: 0.01 * [1, 1, 1, 2, 1 + seed][k])
    top, growth = c1_baseline_shift(s)
    assert values_of(top) == [0.02, 0.04, 0.06]
    assert values_of(growth) == pytest.approx([(10 / 3) / 1.5, 2.5 / 2.5, (5 + 5 / 3) / 3 / 3.5], abs=1e-3)
    assert (top["check"], top["variants"], top["source"], top["claim"], top["id"]) == (
        "max over trained steps of the off-policy log-ratio mean < 0", "flowgrpo", SRC_STEPS, C1, "C1")
    assert (growth["check"], growth["variants"], growth["source"], growth["claim"], growth["id"]) == (
        "|shift/std| at the low-noise half of the steps over the high-noise half > 1", "flowgrpo", SRC_STEPS, C1, "C1")
    assert top["verdict"] == growth["verdict"] == INCONCLUSIVE


@pytest.mark.parametrize("value,verdict", [(0.0, NOT_REPRODUCED), (-1e-6, REPRODUCED), (1e-6, NOT_REPRODUCED)])
def test_c1_shift_edge(value, verdict):
    s = c1_setting(lambda k, seed: [value, value - 1, value - 1, value - 1, value - 1][k], lambda k, seed: 1.0)
    assert c1_baseline_shift(s)[0]["verdict"] == verdict


@pytest.mark.parametrize("value,verdict", [(1.0, NOT_REPRODUCED), (1.001, REPRODUCED), (0.999, NOT_REPRODUCED)])
def test_c1_growth_edge(value, verdict):
    s = c1_setting(lambda k, seed: -low_high(value, 1.0)[k], lambda k, seed: 1.0)
    assert c1_baseline_shift(s)[1]["verdict"] == verdict


def test_c1_to_c3_not_tested_without_a_baseline_that_logged_steps():
    others = steps(("g", by_step(log_ratio_mean=[1.0] * 5, bias_mean=[1.0] * 5, clip_pos_upper=[1.0] * 5)))
    for s in (setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"}, others), setting({"g": "grpo_guard"}, others)):
        not_tested(c1_baseline_shift(s), "C1", "baseline log-ratio mean per step", "no baseline run with steps.jsonl",
                   SRC_STEPS)
        not_tested(c2_predicted_shift(s), "C2", "measured vs predicted mean", "no baseline run with steps.jsonl",
                   SRC_STEPS)
        not_tested(c3_clip_asymmetry(s), "C3", "clip fractions by advantage sign", "no baseline run with steps.jsonl",
                   SRC_CLIP)
        assert {r["claim"] for r in c1_baseline_shift(s) + c2_predicted_shift(s) + c3_clip_asymmetry(s)} == {C1, C2, C3}


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")  # draws missing a step
def test_max_z_pools_the_minibatches_of_a_step():
    # step 0: n 2 and 6, values 1 and 3, stds 1 and 2: mean 20/8, SE sqrt(2 + 24)/8; step 1: -1 over 4, std 4: z 0.5
    raw = pd.DataFrame({"iteration": [0, 0, 0], "step": [0, 0, 1], "n": [2, 6, 4], "v": [1.0, 3.0, -1.0],
                        "sd": [1.0, 2.0, 4.0]})
    r = RunSteps(raw, "v")
    assert r.max_z(raw.v, raw.sd)[0] == pytest.approx(20 / math.sqrt(26))
    raw = raw.assign(v=[0.1, 0.1, -8.0])  # step 1: |-8 * 4| / 4 / (sqrt(4 * 16) / 4) = 4
    assert RunSteps(raw, "v").max_z(raw.v, raw.sd)[0] == pytest.approx(4.0)
    # minibatches of one step in two iterations pool as in one (draw 0); one iteration: every draw is the data
    two = raw.assign(iteration=[0, 1, 1])
    assert RunSteps(two, "v").max_z(two.v, two.sd)[0] == pytest.approx(4.0)
    assert np.allclose(r.max_z(r.rows.v, r.rows.sd), 20 / math.sqrt(26))


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide")  # draws missing a step
def test_run_steps_mean_leaves_out_nan_rows_and_weights_iterations_by_their_draws():
    raw = pd.DataFrame({"iteration": [0, 0, 1, 1], "step": [0, 0, 0, 1], "v": [1.0, math.nan, 4.0, 2.0]})
    r = RunSteps(raw, "v")
    means = r.mean("v")
    assert list(means[0]) == [2.5, 2.0] and means.shape == (r.draws[0].shape[0], 2)
    # every draw is a mean of the drawn iterations' rows: iteration 0 alone gives step 0 the value 1, step 1 none
    counts = r.draws[0]
    only0 = (counts[:, 0] > 0) & (counts[:, 1] == 0)
    assert only0.any() and np.all(means[only0, 0] == 1.0) and np.all(np.isnan(means[only0, 1]))


def test_bonferroni_z():
    assert bonferroni_z(1) == pytest.approx(1.959963984540054, rel=1e-12)
    assert bonferroni_z(4) == pytest.approx(2.497705474412374, rel=1e-12)  # z_{1 - 0.05/8}
    assert bonferroni_z(4, 0.9) == pytest.approx(2.241402727604947, rel=1e-12)  # z_{1 - 0.1/8}


def c2_setting(values):
    return setting(BASELINE_ONLY, steps(("flowgrpo", values)))


def test_c2_rows():
    # one minibatch of n 4 per step: z = |m + b| / (std / 2)
    top, relative = c2_predicted_shift(c2_setting(lambda k, seed: {
        "log_ratio_mean": -1.0 - [0.5, 0.1, 0.1 * seed, 0.1, 0.1][k], "bias_mean": 1.0, "log_ratio_std": 1.0}))
    z5 = bonferroni_z(5)
    assert (top["check"], top["source"], top["variants"], top["claim"], top["id"]) == (
        f"max over steps of |measured mean - predicted (-b)| / its standard error < {z5:.2f} (Bonferroni 95%)",
        SRC_STEPS + " (predicted_mean)", "flowgrpo", C2, "C2")
    assert "< 2.58 (Bonferroni 95%)" in top["check"]
    assert values_of(top) == pytest.approx([1.0, 1.0, 1.0], abs=1e-4)  # step 0: 0.5 / 0.5
    assert values_of(relative) == pytest.approx([0.1, 0.1, 0.2], abs=1e-4)  # the low half only
    assert (relative["check"], relative["source"], relative["variants"], relative["claim"], relative["id"]) == (
        "low-noise half of the steps: max of |measured mean - predicted (-b)| / b < 0.2",
        SRC_STEPS + " (predicted_mean)", "flowgrpo", C2, "C2")


@pytest.mark.parametrize("scale,verdict", [(0.999, REPRODUCED), (1.0, NOT_REPRODUCED), (1.001, NOT_REPRODUCED)])
def test_c2_z_edge_is_bonferroni_over_the_steps(scale, verdict):
    d = scale * bonferroni_z(5) / 2
    top = c2_predicted_shift(c2_setting(lambda k, seed: {"log_ratio_mean": d - 1.0, "bias_mean": 1.0,
                                                         "log_ratio_std": 1.0}))[0]
    assert top["verdict"] == verdict


@pytest.mark.parametrize("value,verdict", [(0.19, REPRODUCED), (0.21, NOT_REPRODUCED)])
def test_c2_relative_error_edge(value, verdict):
    # a negative bias: the error is relative to |b|
    s = c2_setting(lambda k, seed: {"log_ratio_mean": 2.0 * (1 + low_high(value, 5.0)[k]), "bias_mean": -2.0,
                                    "log_ratio_std": 1.0})
    assert c2_predicted_shift(s)[1]["verdict"] == verdict


def test_c2_relative_error_exactly_on_its_strict_edge_fails():
    # |6 - 5| / 5 = 0.2 on two seeds (seed 2 has no value): their mean is 0.2 exactly, the interval [0.2, 0.2]
    s = c2_setting(lambda k, seed: {"log_ratio_mean": math.nan if seed == 2 else 6.0, "bias_mean": -5.0,
                                    "log_ratio_std": 1.0})
    r = c2_predicted_shift(s)[1]
    assert (r["seeds"], r["ci95_low"], r["ci95_high"], r["verdict"]) == (2, 0.2, 0.2, NOT_REPRODUCED)


def per_step_run(**columns):
    """One iteration's rows, one per step, as run_steps selects them (rows where the first column is logged)."""
    frame = pd.DataFrame({"variant": "v", "seed": 0, "iteration": 0, "step": list(STEPS), "n": 4, **columns})
    return run_steps(setting({"v": "flowgrpo"}, frame), "v", next(iter(columns)))[0]


def test_clip_ratio_over_the_low_noise_half():
    columns = dict(clip_pos_upper=[9.0, 9.0, 0.1, 0.2, 0.3], clip_neg_lower=[0.0, 0.0, 0.4, 0.4, 0.4])
    assert clip_ratio(per_step_run(**columns))[0] == pytest.approx(0.5)
    assert math.isnan(clip_ratio(per_step_run(**{**columns, "clip_neg_lower": [1.0, 1.0, 0.0, 0.0, 0.0]}))[0])


def c3_setting(ratio):
    # log_ratio_mean: C3 takes the rows (and their iteration blocks) where it is logged, as the trainer logs it beside
    # the clip fractions
    return setting(BASELINE_ONLY, steps(("flowgrpo", by_step(clip_pos_upper=low_high(ratio * 0.4, 9.0),
                                                             clip_neg_lower=low_high(0.4, 0.01),
                                                             log_ratio_mean=[-1.0] * 5))))


@pytest.mark.parametrize("ratio,verdict", [(0.5, REPRODUCED), (0.49, REPRODUCED), (0.51, NOT_REPRODUCED)])
def test_c3_edge(ratio, verdict):
    r = only(c3_clip_asymmetry(c3_setting(ratio)))
    assert r["verdict"] == verdict and values_of(r) == pytest.approx([ratio] * 3)
    assert (r["check"], r["source"], r["variants"], r["claim"], r["id"]) == (
        "low-noise half of the steps: (A>0 above 1+eps) / (A<0 below 1-eps) <= 0.5 ('far less often': at most half)",
        SRC_CLIP, "flowgrpo", C3, "C3")


def c4_setting(z=0.0, ratio=1.0, method="grpo_guard"):
    """One normalised variant g (n 4 per step: z = 2 |mean| / std) and a baseline on the same sampler."""
    return setting({"flowgrpo": "flowgrpo", "g": method},
                   steps(("g", by_step(norm_log_ratio_mean=[z / 2, -z / 4, 0.0, 0.0, z / 2], norm_log_ratio_std=[1.0] * 5,
                                       clip_pos_upper=low_high(ratio * 0.4, 9.0), clip_neg_lower=[0.4] * 5))))


def test_c4_rows_per_normalised_method():
    rows = c4_normalised(c4_setting(1.0, 1.0))
    not_tested(rows[:1], "C4", "rationorm: normalised mean and clip symmetry",
               "no rationorm run on the baseline's sampler with steps.jsonl", SRC_STEPS, "rationorm")
    assert rows[0]["claim"] == C4
    z, sym = rows[1:]
    assert (z["check"], z["source"], z["variants"], z["claim"], z["id"]) == (
        "max over steps of |normalised mean| / its standard error < 2.58 (Bonferroni 95%)", SRC_STEPS, "g", C4, "C4")
    assert (sym["check"], sym["source"], sym["variants"], sym["claim"], sym["id"]) == (
        "low-noise half: (A>0 above 1+eps) / (A<0 below 1-eps) in [0.67, 1.50]", SRC_CLIP, "g", C4, "C4")
    assert values_of(z) == pytest.approx([1.0] * 3) and values_of(sym) == pytest.approx([1.0] * 3)
    rows = c4_normalised(c4_setting(method="rationorm"))
    assert [r["variants"] for r in rows] == ["g", "g", "grpo_guard"]
    assert rows[2]["reason"] == "no grpo_guard run on the baseline's sampler with steps.jsonl"


@pytest.mark.parametrize("scale,verdict", [(0.999, REPRODUCED), (1.0, NOT_REPRODUCED), (1.001, NOT_REPRODUCED)])
def test_c4_z_edge(scale, verdict):
    assert c4_normalised(c4_setting(z=scale * bonferroni_z(5)))[1]["verdict"] == verdict


@pytest.mark.parametrize("ratio,verdict", [(0.67, REPRODUCED), (0.66, NOT_REPRODUCED), (1.49, REPRODUCED),
                                           (1.51, NOT_REPRODUCED)])
def test_c4_symmetry_edges(ratio, verdict):
    assert c4_normalised(c4_setting(ratio=ratio))[2]["verdict"] == verdict


def test_spread_is_max_over_min_of_the_logged_steps():
    assert spread(per_step_run(step_grad_norm=[2.0, math.nan, 8.0, 4.0, 3.0]))[0] == 4.0
    assert math.isnan(spread(per_step_run(step_grad_norm=[2.0] + [math.nan] * 4))[0])
    assert spread(per_step_run(step_grad_norm=[2.0, 3.0] + [math.nan] * 3))[0] == 1.5


def test_about_is_within_a_factor_2():
    assert about(3.0) == (1.5, 6.0)


def grad(*variants, first=1.0, last=1.0, logged=STEPS):
    """step_grad_norm of each variant: ``first`` at the first logged step, ``last`` at the others; NaN elsewhere."""
    norms = [first if k == logged[0] else last if k in logged else math.nan for k in STEPS]
    return steps(*[(v, by_step(step_grad_norm=norms)) for v in variants])


def h_ratio(steps_, **c):
    h = SCHEDULES[c.get("sampler", "flowgrpo")](c.get("num_steps", 10), c.get("shift", 3.0), c.get("noise_level", 0.7)).h
    h = h.double().numpy()[list(steps_)]
    return h.max() / h.min()


def test_c5_rows_per_variant():
    configs = {"flowgrpo": "flowgrpo", "fp": config("flowgrpo", clip="x"), "tr": "temp_reweight",
               "rn": config("rationorm", num_steps=6, shift=2.0, noise_level=0.5), "g": "grpo_guard", "none": "mean_revised"}
    rows = c5_gradient_spread(setting(configs, grad("flowgrpo", "fp", "tr", "rn", "g", first=1.0, last=3.0,
                                                      logged=(1, 2, 3))))
    assert [(r["variants"], r["paper"], r["verdict"], r["reason"]) for r in rows] == [
        ("flowgrpo", "20x", NOT_REPRODUCED, ""),
        ("fp", "", NOT_TESTED, "no schedule-only prediction"),
        ("tr", "", NOT_TESTED, "no schedule-only prediction"),
        ("rn", f"predicted {h_ratio((1, 2, 3), num_steps=6, shift=2.0, noise_level=0.5):.2f}x", REPRODUCED, ""),
        ("g", "2.5x", REPRODUCED, ""),
        ("g", "predicted 1.00x", NOT_REPRODUCED, ""),
        ("none", "", NOT_TESTED, "no step_grad_norm logged")]
    assert rows[3]["paper"] == "predicted 1.71x"
    assert [r["check"] for r in rows] == [
        "max/min over steps within a factor 2 of the paper's 20x",
        "fp (flowgrpo): max/min over steps; the paper's scale depends on dmu, not on the schedule alone",
        "tr (temp_reweight): max/min over steps; the paper's scale depends on dmu, not on the schedule alone",
        "rn (rationorm): max/min within a factor 2 of the schedule's prediction 1.71x (max h / min h over the "
        "trained steps)",
        "max/min over steps within a factor 2 of the paper's 2.5x",
        "g (grpo_guard): max/min within a factor 2 of the schedule's prediction 1.00x (constant over the trained steps)",
        "none: gradient-norm spread"]
    assert {r["id"] for r in rows} == {"C5"} and {r["claim"] for r in rows} == {C5}
    assert {r["source"] for r in rows} == {SRC_GRAD}
    assert all(values_of(r) == [3.0] * 3 for r in rows[:-1])
    assert [r["seeds"] for r in rows] == [3] * 6 + [0]
    assert rows[1]["mean"] == 3.0 and rows[1]["seeds_needed"] is None and math.isnan(rows[-1]["mean"])
    assert all(sorted(r) == sorted(COLUMNS) for r in rows)


def test_c5_a_variant_without_gradient_norms_does_not_stop_the_others():
    rows = c5_gradient_spread(setting({"none": "mean_revised", "g": "grpo_guard"}, grad("g", last=2.0)))
    assert [r["variants"] for r in rows] == ["none", "g", "g"]


def test_c5_not_tested_row_drops_the_seeds_needed_of_its_infinite_band():
    row_ = c5_gradient_spread(setting({"tr": "temp_reweight"}, steps(("tr", lambda k, seed: {
        "step_grad_norm": [1.0, 2.0, 3.0, 1.0 + seed, 1.0][k]}))))[0]
    assert (row_["verdict"], row_["seeds_needed"], row_["seeds"]) == (NOT_TESTED, None, 3)
    assert values_of(row_) == [3.0, 3.0, 3.0]


@pytest.mark.parametrize("method,spread_,verdict", [
    ("flowgrpo", 10.01, REPRODUCED), ("flowgrpo", 9.99, NOT_REPRODUCED), ("flowgrpo", 39.9, REPRODUCED),
    ("flowgrpo", 40.1, NOT_REPRODUCED), ("dancegrpo", 10.01, REPRODUCED), ("dancegrpo", 40.1, NOT_REPRODUCED),
    ("grpo_guard", 1.26, REPRODUCED), ("grpo_guard", 4.99, REPRODUCED), ("grpo_guard", 5.01, NOT_REPRODUCED)])
def test_c5_paper_edges(method, spread_, verdict):
    rows = c5_gradient_spread(setting({"v": method}, grad("v", last=spread_)))
    assert rows[0]["verdict"] == verdict


@pytest.mark.parametrize("spread_,verdict", [(1.99, REPRODUCED), (2.01, NOT_REPRODUCED)])
def test_c5_constant_prediction_edge(spread_, verdict):
    assert c5_gradient_spread(setting({"v": "grpo_guard"}, grad("v", last=spread_)))[1]["verdict"] == verdict


@pytest.mark.parametrize("factor,verdict", [(0.499, NOT_REPRODUCED), (0.501, REPRODUCED), (1.999, REPRODUCED),
                                            (2.001, NOT_REPRODUCED)])
def test_c5_rationorm_prediction_edges(factor, verdict):
    predicted = h_ratio(STEPS, num_steps=6, shift=2.0, noise_level=0.5)  # 0.3316 / 0.1109 = 2.99 over steps 0-4
    s = setting({"v": config("rationorm", num_steps=6, shift=2.0, noise_level=0.5)}, grad("v", last=factor * predicted))
    assert c5_gradient_spread(s)[0]["verdict"] == verdict


def test_schedule_h_is_the_variants_own_schedule():
    s = setting({"a": config("rationorm", "dancegrpo", num_steps=6, shift=2.0, noise_level=0.5)})
    expected = SCHEDULES["dancegrpo"](6, 2.0, 0.5).h.double().numpy()
    assert list(s.schedule_h("a")) == list(expected) and list(s.schedule_h("a").index) == list(range(6))


# --- C6-C10 ----------------------------------------------------------------------------------------------------

def line(proxy_end, gold_end, iterations=10):
    """proxy 0 -> proxy_end and accuracy 1 -> gold_end, linear over ``iterations``."""
    return lambda it, seed: {"proxy": proxy_end * it / iterations, "accuracy": 1 + (gold_end - 1) * it / iterations}


def evals(curves, iterations=(0, 10)):
    return pd.DataFrame([{"variant": v, "seed": seed, "iteration": it, **f(it, seed)}
                         for v, f in curves.items() for seed in SEEDS for it in iterations])


def c6_setting(proxy_end, gold_end):
    return setting(BASELINE_ONLY, evals=evals({"flowgrpo": line(proxy_end, gold_end)}))


def test_change_is_last_minus_first_evaluation_per_seed():
    # (was change(s, variant, column)): C6's per-seed values, evaluations in iteration order whatever the file order
    frame = pd.DataFrame({"variant": ["b", "b", "b", "b", "x"], "seed": [0, 0, 0, 1, 0], "iteration": [20, 0, 10, 0, 0],
                          "proxy": [5.0, 1.0, 9.0, 2.0, 7.0], "accuracy": [1.0, 2.0, 1.0, 1.0, 1.0]})
    proxy, gold = c6_baseline_hacking(setting({"b": "flowgrpo", "x": "grpo_guard"}, evals=frame, baseline="b"))
    # Average(gold) relative to the mean iteration-0 accuracy of every run (2, 1, 1): seed 0 (1 - 2) x 3/4
    assert values_of(proxy) == [4.0, 0.0] and values_of(gold) == [-0.75, 0.0]


def test_c6_rows():
    proxy, gold = c6_baseline_hacking(c6_setting(0.3, 0.8))
    assert values_of(proxy) == [0.3] * 3 and values_of(gold) == pytest.approx([-0.2] * 3)
    assert (proxy["check"], proxy["source"], proxy["variants"], proxy["claim"], proxy["id"]) == (
        "proxy: last minus first evaluation > 0", SRC_CURVES, "flowgrpo", C6, "C6")
    assert (gold["check"], gold["source"], gold["variants"], gold["claim"], gold["id"]) == (
        "Average(gold): last minus first evaluation < 0", SRC_CURVES, "flowgrpo", C6, "C6")


@pytest.mark.parametrize("proxy,gold,verdicts", [(0.0, 0.0, [NOT_REPRODUCED, NOT_REPRODUCED]),
                                                 (1e-6, -1e-6, [REPRODUCED, REPRODUCED]),
                                                 (-1e-6, 1e-6, [NOT_REPRODUCED, NOT_REPRODUCED])])
def test_c6_edges(proxy, gold, verdicts):
    # a proxy gain of 0 and a gold change of 0 sit on the edges of strict checks ("> 0", "< 0"): they fail them
    assert [r["verdict"] for r in c6_baseline_hacking(c6_setting(proxy, 1.0 + gold))] == verdicts


def test_c6_not_tested_without_baseline_evaluations():
    for s in (setting({"g": "grpo_guard"}, evals=evals({"g": line(1, 1)})),
              setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"}, evals=evals({"g": line(1, 1)})),
              setting(BASELINE_ONLY)):
        not_tested(c6_baseline_hacking(s), "C6", "baseline proxy and gold over training",
                   "no baseline run with eval.jsonl", SRC_CURVES)
        assert c6_baseline_hacking(s)[0]["claim"] == C6


def test_evals_gold_is_relative_to_the_iteration_0_evaluation():
    s = setting(BASELINE_ONLY, evals=evals({"flowgrpo": lambda it, seed: {"proxy": 0.0, "accuracy": 2.0 + it / 10,
                                                                         "late": 1.0}}), gold=["accuracy", "hps"])
    assert s.gold == ["accuracy"]
    assert list(s.evals.avg_gold) == pytest.approx([1.0, 1.5] * 3)
    assert setting(BASELINE_ONLY).evals.empty


def two(a_curve, b_curve, a="grpo_guard", b="flowgrpo", seeds_differ=None, **settings):
    return setting({b: b, a: a}, evals=evals({a: a_curve, b: b_curve}), **settings)


def test_level_gap_gives_each_seed_both_runs_have_at_the_matched_levels():
    # (was paired / by_seed) the levels: f x 5/6 (guard's seed 1 reaches 0.5 only, so its mean best proxy is 5/6)
    s = two(lambda it, seed: line(0.5 if seed == 1 else 1.0, 0.9)(it, seed), line(1.0, 0.5))
    guard, base = level_gap(s, curves(s), "grpo_guard", "flowgrpo", "iteration")
    assert sorted(guard) == sorted(base) == [0, 1, 2]
    assert guard[0][0] == pytest.approx([10 * f * 5 / 6 for f in (0.25, 0.5, 0.75, 1.0)])
    assert base[1][0] == pytest.approx(guard[0][0]) and guard[1][0][:2] == pytest.approx(2 * guard[0][0][:2])
    assert np.isnan(guard[1][0][2:]).all()  # seed 1 of GRPO-Guard misses the upper two levels
    assert level_gap(s, curves(s), "grpo_guard", "absent", "iteration") == ({}, {})
    # C7 takes the minimum over the levels both reach, L = 5/24 and 5/12 for seed 1: Average(gold) 1 - 0.1 L (guard,
    # seeds 0, 2), 1 - 0.2 L (guard, seed 1: it gets to L at iteration 20 L), 1 - 0.5 L (baseline)
    assert values_of(only(c7_guard_at_matched_proxy(s))) == pytest.approx([0.4 * 5 / 24, 0.3 * 5 / 24, 0.4 * 5 / 24],
                                                                            abs=1e-4)


def test_c7_is_the_minimum_over_the_matched_levels():
    # levels 0.25 .. 1 of the proxy: gold 1 + (g - 1) f, so guard - baseline = (g_g - g_b) f
    rows = c7_guard_at_matched_proxy(two(line(1.0, 0.9), line(1.0, 0.5)))
    assert values_of(only(rows)) == pytest.approx([0.1] * 3)  # 0.25 x 0.4
    r = only(c7_guard_at_matched_proxy(two(line(1.0, 0.5), line(1.0, 0.9))))
    assert values_of(r) == pytest.approx([-0.4] * 3)  # 1 x -0.4
    assert (r["check"], r["source"], r["variants"], r["claim"], r["id"]) == (
        "GRPO-Guard minus baseline Average(gold), its minimum over the matched proxy levels both runs reach, > 0",
        SRC_MATCHED, "grpo_guard, flowgrpo", C7, "C7")


@pytest.mark.parametrize("gap,verdict", [(0.0, NOT_REPRODUCED), (0.004, REPRODUCED), (-0.004, NOT_REPRODUCED)])
def test_c7_edge(gap, verdict):
    assert c7_guard_at_matched_proxy(two(line(1.0, 0.5 + gap), line(1.0, 0.5)))[0]["verdict"] == verdict


def test_c7_per_pair_and_not_tested():
    s = setting({"flowgrpo": "flowgrpo", "g": "grpo_guard", "d": config("dancegrpo", "dancegrpo"),
                 "dg": config("grpo_guard", "dancegrpo")},
                evals=evals({"flowgrpo": line(1, 0.5), "g": line(1, 0.9), "d": line(1, 0.5), "dg": line(1, 0.4)}))
    assert [(r["variants"], r["verdict"]) for r in c7_guard_at_matched_proxy(s)] == [
        ("g, flowgrpo", REPRODUCED), ("dg, d", NOT_REPRODUCED)]
    for s in (setting(BASELINE_ONLY, evals=evals({"flowgrpo": line(1, 1)})),
              setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"})):
        not_tested(c7_guard_at_matched_proxy(s), "C7", "Average(gold) at matched proxy",
                   "no baseline and GRPO-Guard pair with eval.jsonl", SRC_MATCHED)
        assert c7_guard_at_matched_proxy(s)[0]["claim"] == C7


def levels(s, variants):
    """The matched proxy levels of ``variants`` (as the baseline's seed 0 reaches them: its proxy is iteration / 10)
    and the variants whose levels were matched."""
    m = matched(s, curves(s), variants)
    return list(m[("flowgrpo", 0)]["iteration"][0] / 10), {v for v, _ in m}


def test_matched_takes_the_levels_of_the_first_comparison_holding_the_variants():
    runs = {"flowgrpo": line(1.0, 0.5), "grpo_guard": line(1.0, 0.9), "slow": line(0.5, 1.0)}
    configs = {"flowgrpo": "flowgrpo", "grpo_guard": "grpo_guard", "slow": "mean_revised"}
    alone = setting(configs, evals=evals(runs))
    grouped = setting(configs, evals=evals(runs), comparisons={"x": ["flowgrpo"], "y": list(configs), "z": []})
    assert levels(alone, ["flowgrpo", "grpo_guard"]) == (pytest.approx([0.25, 0.5, 0.75, 1.0]), {"flowgrpo", "grpo_guard"})
    # the slow run reaches 0.5 only
    assert levels(grouped, ["flowgrpo", "grpo_guard"]) == (pytest.approx([0.125, 0.25, 0.375, 0.5]), set(configs))
    assert group_of(grouped, ["flowgrpo", "grpo_guard"]) == list(configs)
    assert values_of(c7_guard_at_matched_proxy(grouped)[0]) == pytest.approx([0.05] * 3)
    assert max(levels(setting(configs, evals=evals(runs), comparisons=None), ["flowgrpo"])[0]) == pytest.approx(1.0)
    assert group_of(setting(configs, comparisons=None), ["flowgrpo"]) == ["flowgrpo"]
    exact = setting(configs, evals=evals(runs), comparisons={"y": list(configs), "x": ["grpo_guard", "flowgrpo"]})
    assert levels(exact, ["flowgrpo", "grpo_guard"])[1] == set(configs)  # the first comparison holding both
    exact = setting(configs, evals=evals(runs), comparisons={"x": ["grpo_guard", "flowgrpo"], "y": list(configs)})
    assert levels(exact, ["flowgrpo", "grpo_guard"])[1] == {"flowgrpo", "grpo_guard"}
    assert group_of(exact, ["flowgrpo", "grpo_guard"]) == ["grpo_guard", "flowgrpo"]


def three(mr_gold, curves=None, **configs):
    configs = {"flowgrpo": "flowgrpo", "mr": "mean_revised", "g": "grpo_guard", **configs}
    curves = curves or {"flowgrpo": line(1.0, 0.5), "mr": line(1.0, mr_gold), "g": line(1.0, 0.9)}
    return setting(configs, evals=evals(curves))


def test_c8_is_the_mean_over_levels_above_the_midpoint():
    # midpoint 1 - 0.3 f; Mean-revised 1 + (m - 1) f: mean over f of (m - 0.7) f = (m - 0.7) x 0.625
    r = only(c8_mean_revised(three(0.9)))
    assert values_of(r) == pytest.approx([0.125] * 3)
    assert (r["check"], r["source"], r["variants"], r["claim"], r["id"]) == (
        "Mean-revised minus the midpoint of baseline and GRPO-Guard Average(gold), mean over the matched proxy levels "
        "all three reach, > 0 (closer to GRPO-Guard)", SRC_MATCHED, "mr, flowgrpo, g", C8, "C8")


@pytest.mark.parametrize("gold,verdict", [(0.7001, REPRODUCED), (0.6999, NOT_REPRODUCED)])
def test_c8_edge(gold, verdict):
    assert c8_mean_revised(three(gold))[0]["verdict"] == verdict


def test_c8_exactly_at_the_midpoint_fails():
    r = c8_mean_revised(three(0.75, {"flowgrpo": line(1.0, 0.5), "mr": line(1.0, 0.75), "g": line(1.0, 1.0)}))[0]
    assert values_of(r) == [0.0] * 3 and r["verdict"] == NOT_REPRODUCED


def test_c8_levels_all_three_reach():
    # GRPO-Guard's seed 0 never raises the proxy: no level of seed 0 is reached by all three
    curves = {"flowgrpo": line(1.0, 0.5), "mr": line(1.0, 0.9), "g": lambda it, seed: line(1.0 if seed else 0.0, 0.9)(it, seed)}
    r = c8_mean_revised(three(0.9, curves))[0]
    assert r["per_seed"].startswith("s1: ") and r["seeds"] == 2
    # a fourth variant of the comparison that misses seed 0's levels leaves the three's levels as they are
    fourth = {"flowgrpo": line(1.0, 0.5), "mr": line(1.0, 0.9), "g": line(1.0, 0.9),
              "x": lambda it, seed: line(1.5 if seed else 0.0, 1.0)(it, seed)}
    s = setting({"flowgrpo": "flowgrpo", "mr": "mean_revised", "g": "grpo_guard", "x": "rationorm"},
                evals=evals(fourth), comparisons={"all": ["flowgrpo", "mr", "g", "x"]})
    assert values_of(c8_mean_revised(s)[0]) == pytest.approx([0.125] * 3)
    flat = {"flowgrpo": line(1.0, 0.5), "mr": line(1.0, 0.9), "g": line(0.0, 0.9)}  # no level above the base
    assert c8_mean_revised(three(0.9, flat))[0]["reason"] == "no seed has this value"


def test_c8_to_c10_not_tested_name_what_is_missing():
    s = setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"}, evals=evals({"flowgrpo": line(1, 1), "g": line(1, 1)}))
    not_tested(c8_mean_revised(s), "C8", "Mean-revised at matched proxy",
               "no Mean-revised run on the baseline's sampler with eval.jsonl", SRC_MATCHED)
    not_tested(c9_rationorm_slower(s), "C9", "iterations to reach the proxy levels",
               "no RatioNorm run on the baseline's sampler with eval.jsonl", SRC_MATCHED)
    not_tested(c10_temp_reweight(s), "C10", "Temp-Reweight speed and collapse",
               "no Temp-Reweight run on the baseline's sampler with eval.jsonl", SRC_MATCHED)
    assert [c(s)[0]["claim"] for c in (c8_mean_revised, c9_rationorm_slower, c10_temp_reweight)] == [C8, C9, C10]
    s = setting({"mr": "mean_revised", "rn": "rationorm", "tr": "temp_reweight"},
                evals=evals({"mr": line(1, 1), "rn": line(1, 1), "tr": line(1, 1)}))
    assert c8_mean_revised(s)[0]["reason"] == "no baseline, GRPO-Guard run on the baseline's sampler with eval.jsonl"
    assert c9_rationorm_slower(s)[0]["reason"] == "no baseline run on the baseline's sampler with eval.jsonl"
    assert c10_temp_reweight(s)[0]["reason"] == "no baseline run on the baseline's sampler with eval.jsonl"
    assert missing(s, curves(s), [None, "mr", "x"], ["a", "b", "c"]) == \
        "no a, c run on the baseline's sampler with eval.jsonl"
    assert missing(s, curves(s), ["rn"], ["b"]) == ""
    g = setting({"g": "grpo_guard"})
    assert missing(g, curves(g), ["g"], ["b"]) == "no b run on the baseline's sampler with eval.jsonl"


def test_c9_is_the_mean_iteration_gap():
    # RatioNorm's proxy 0.5 by iteration 10: the common level 0.5; levels f x 0.5 at iterations 10 f (RatioNorm) and
    # 5 f (baseline): mean gap 5 x 0.625
    s = setting({"flowgrpo": "flowgrpo", "rn": "rationorm"}, evals=evals({"flowgrpo": line(1.0, 0.5), "rn": line(0.5, 0.5)}))
    r = only(c9_rationorm_slower(s))
    assert values_of(r) == pytest.approx([3.125] * 3)
    assert (r["check"], r["source"], r["variants"], r["claim"], r["id"], r["verdict"]) == (
        "iterations to reach each matched proxy level, RatioNorm minus baseline, mean over levels > 0 "
        "('slightly' is not tested)", SRC_MATCHED, "rn, flowgrpo", C9, "C9", REPRODUCED)


@pytest.mark.parametrize("proxy,verdict", [(1.0, NOT_REPRODUCED), (0.999, REPRODUCED), (1.001, NOT_REPRODUCED)])
def test_c9_edge(proxy, verdict):
    s = setting({"flowgrpo": "flowgrpo", "rn": "rationorm"}, evals=evals({"flowgrpo": line(1.0, 0.5), "rn": line(proxy, 0.5)}))
    assert c9_rationorm_slower(s)[0]["verdict"] == verdict


def test_collapse_iteration():
    # per draw (rows), evaluations in iteration order (Draws.run sorts them)
    iterations = np.array([0, 10, 20, 30])
    gold = np.array([[1.0, 0.5, 0.4, 0.3], [1.0, 0.49, 0.6, 0.3], [0.5] * 4, [0.49, 1.0, 1.0, 1.0]])
    assert list(collapse_iteration(iterations, gold)) == [20.0, 10.0, INF, 0.0]


ITERS = (0, 10, 20, 30)


def c10_setting(tr_gold, b_gold=(1.0, 0.6, 0.4, 0.3), tr_proxy=1.0):
    """Per-iteration accuracy (Average(gold)) of Temp-Reweight and the baseline, proxy linear to 1 (baseline)."""
    def curve(gold, proxy_end):
        return lambda it, seed: {"proxy": proxy_end * it / 30, "accuracy": gold[ITERS.index(it)]}
    return setting({"flowgrpo": "flowgrpo", "tr": "temp_reweight"},
                   evals=evals({"flowgrpo": curve(b_gold, 1.0), "tr": curve(tr_gold, tr_proxy)}, ITERS))


def test_c10_rows():
    speed, collapse = c10_temp_reweight(c10_setting((1.0, 0.4, 0.3, 0.2), tr_proxy=2.0))
    # Temp-Reweight reaches the levels in half the iterations: mean over f of (15 f - 30 f) = -15 x 0.625
    assert values_of(speed) == pytest.approx([-9.375] * 3) and values_of(collapse) == [-10.0] * 3
    assert (speed["check"], speed["source"], speed["variants"], speed["claim"], speed["id"]) == (
        "iterations to reach each matched proxy level, Temp-Reweight minus baseline, mean over levels < 0", SRC_MATCHED,
        "tr, flowgrpo", C10, "C10")
    assert (collapse["check"], collapse["source"], collapse["variants"], collapse["claim"], collapse["id"]) == (
        "first evaluation with Average(gold) < 0.5, Temp-Reweight minus baseline < 0 (a run that never gets there "
        "counts as iteration 31)", SRC_CURVES, "tr, flowgrpo", C10, "C10")


@pytest.mark.parametrize("tr_gold,b_gold,value,verdict", [
    ((1.0, 0.6, 0.4, 0.3), (1.0, 0.6, 0.4, 0.3), 0.0, NOT_REPRODUCED),  # a tie is not "earlier"
    ((1.0, 0.6, 0.6, 0.4), (1.0, 0.6, 0.4, 0.3), 10.0, NOT_REPRODUCED),
    ((1.0, 0.6, 0.6, 0.6), (1.0, 0.6, 0.4, 0.3), 11.0, NOT_REPRODUCED),  # never: iteration 31
    ((1.0, 0.6, 0.6, 0.6), (1.0, 0.6, 0.6, 0.4), 1.0, NOT_REPRODUCED),
    ((1.0, 0.6, 0.4, 0.3), (1.0, 0.6, 0.6, 0.6), -11.0, REPRODUCED)])
def test_c10_collapse_edges(tr_gold, b_gold, value, verdict):
    collapse = c10_temp_reweight(c10_setting(tr_gold, b_gold))[1]
    assert values_of(collapse) == [value] * 3 and collapse["verdict"] == verdict


@pytest.mark.parametrize("proxy,verdict", [(1.0, NOT_REPRODUCED), (1.001, REPRODUCED), (0.999, NOT_REPRODUCED)])
def test_c10_speed_edge(proxy, verdict):
    assert c10_temp_reweight(c10_setting((1.0, 0.4, 0.3, 0.2), tr_proxy=proxy))[0]["verdict"] == verdict


def test_c10_neither_run_collapses():
    speed, collapse = c10_temp_reweight(c10_setting((1.0, 0.9, 0.8, 0.7), (1.0, 0.9, 0.8, 0.7)))
    assert speed["verdict"] == NOT_REPRODUCED  # the same curves: not faster
    not_tested([collapse], "C10", "first evaluation with Average(gold) < 0.5, Temp-Reweight minus baseline < 0 (a run "
               "that never gets there counts as iteration 31)",
               "neither run of any seed falls below Average(gold) 0.5", SRC_CURVES, "tr, flowgrpo")
    assert collapse["claim"] == C10


def test_c10_counts_only_the_seeds_where_a_run_collapses():
    def tr(it, seed):
        return {"proxy": it / 30, "accuracy": ((1.0, 0.4, 0.3, 0.2) if seed else (1.0, 0.9, 0.9, 0.9))[ITERS.index(it)]}
    s = setting({"flowgrpo": "flowgrpo", "tr": "temp_reweight", "other": "mean_revised"},
                evals=evals({"flowgrpo": line(1.0, 0.95, 30), "tr": tr, "other": line(0.1, 0.0, 30)}, ITERS))
    collapse = c10_temp_reweight(s)[1]
    assert collapse["per_seed"] == "s1: -21; s2: -21"  # seed 0: neither collapses; the other variant is not counted


# --- C11-C12 ---------------------------------------------------------------------------------------------------

def scores(**finals):
    """scores/summary.jsonl rows: variant -> (proxy, accuracy), or a function of the seed."""
    return pd.DataFrame([{"variant": v, "seed": seed, **dict(zip(("proxy", "accuracy"), f(seed) if callable(f) else f))}
                         for v, f in finals.items() for seed in SEEDS])


def final(configs, base=None, **finals):
    return setting(configs, scores=scores(**finals), base={"proxy": 0.0, "accuracy": 2.0} if base is None else base)


PAIR = {"flowgrpo": "flowgrpo", "g": "grpo_guard"}


def test_scores_are_relative_to_the_base_model():
    s = final(PAIR, flowgrpo=(1.0, 1.0), g=(1.0, 3.0))
    assert list(s.scores.avg_gold) == [0.5] * 3 + [1.5] * 3
    assert s.base == {"proxy": 0.0, "accuracy": 2.0} and list(finals(s).base["proxy"]) == [0.0]
    assert list(finals(final(PAIR, {"proxy": 0.25, "accuracy": 1.0}, g=(0, 1))).base["proxy"]) == [0.25]
    assert setting(PAIR).base is None and finals(setting(PAIR)) is None
    assert setting(PAIR, scores=scores(g=(1.0, 1.0))).scores.empty  # no base model scores
    assert setting(PAIR, base={"proxy": 0.0, "accuracy": 1.0}).scores.empty


def test_c11_rows():
    s = final(PAIR, {"proxy": 0.5, "accuracy": 2.0}, flowgrpo=(1.5, 1.0), g=lambda seed: (1.4 + 0.1 * seed, 1.2))
    gold, proxy = c11_main_table(s)
    assert values_of(gold) == pytest.approx([0.1] * 3) and values_of(proxy) == pytest.approx([-0.1, 0.0, 0.1])
    assert (gold["check"], gold["source"], gold["variants"], gold["claim"], gold["id"], gold["paper"]) == (
        "final Average(gold), GRPO-Guard minus baseline > 0", SRC_MAIN, "g, flowgrpo", C11, "C11", "")
    # tolerance 0.1 x |1.5 - 0.5|
    assert (proxy["check"], proxy["source"], proxy["variants"], proxy["claim"], proxy["id"], proxy["paper"]) == (
        "final proxy, GRPO-Guard minus baseline >= -0.1 (0.1 x the baseline's proxy gain over the base)", SRC_MAIN,
        "g, flowgrpo", C11, "C11", "")


@pytest.mark.parametrize("gold,proxy,verdicts", [
    (1.0, 1.0 - 0.099, [NOT_REPRODUCED, REPRODUCED]), (1.001, 1.0 - 0.101, [REPRODUCED, NOT_REPRODUCED]),
    (0.999, 1.0, [NOT_REPRODUCED, REPRODUCED])])
def test_c11_edges(gold, proxy, verdicts):
    # baseline proxy 1 over a base of 2: tolerance 0.1 x |1 - 2|
    s = final(PAIR, {"proxy": 2.0, "accuracy": 1.0}, flowgrpo=(1.0, 1.0), g=(proxy, gold))
    assert [r["verdict"] for r in c11_main_table(s)] == verdicts


def test_c11_not_tested():
    for s in (final({"flowgrpo": "flowgrpo", "m": "mean_revised"}, flowgrpo=(1.0, 1.0), m=(1.0, 1.0)),
              setting(PAIR)):
        not_tested(c11_main_table(s), "C11", "final Average(gold) and proxy", "no scored baseline and GRPO-Guard pair",
                   SRC_MAIN)
        assert c11_main_table(s)[0]["claim"] == C11


def test_final_pairs_only_seeds_both_have():
    s = setting(PAIR, scores=scores(flowgrpo=(1.0, 1.0), g=(2.0, 2.0)).iloc[1:], base={"proxy": 0.0, "accuracy": 1.0})
    gold, _ = c11_main_table(s)
    assert gold["per_seed"] == "s1: 1; s2: 1"
    s = setting({"flowgrpo": "flowgrpo", "g": "grpo_guard", "x": "mean_revised"}, scores=scores(x=(1.0, 1.0), flowgrpo=(1.0, 1.0)),
                base={"proxy": 0.0, "accuracy": 1.0})
    assert c11_main_table(s)[0]["seeds"] == 0


@pytest.mark.parametrize("backbone,reward,baseline,sampler,papers", [
    ("sd35", "ocr", "flowgrpo", "flowgrpo", ["0.99 - 0.88 = +0.11", "0.93 - 0.94 = -0.01"]),
    ("sd35", "geneval", "flowgrpo", "flowgrpo", ["0.89 - 0.84 = +0.05", "0.95 - 0.94 = +0.01"]),
    ("flux", "pickscore", "dancegrpo", "dancegrpo", ["1.02 - 0.88 = +0.14", "0.81 - 0.80 = +0.01"]),
    ("flux", "ocr", "dancegrpo", "dancegrpo", ["", ""]),
    ("sd35", "ocr", "dancegrpo", "flowgrpo", ["", ""]),
    ("nano", "composition", "flowgrpo", "flowgrpo", ["", ""])])
def test_c11_quotes_the_papers_gap_where_the_setting_is_in_its_table(backbone, reward, baseline, sampler, papers):
    named = {"backbone": {"name": backbone}, "task": {"reward": reward}}
    s = setting({"b": config(baseline, sampler, **named), "g": config("grpo_guard", sampler, **named)},
                scores=scores(b=(1.0, 1.0), g=(1.0, 1.0)), base={"proxy": 0.0, "accuracy": 2.0}, baseline="b")
    assert [r["paper"] for r in c11_main_table(s)] == papers


def c12_setting(preset, reference=(1.0, 1.0), baseline=(0.5, 1.0), configs=None):
    configs = configs or {"flowgrpo": "flowgrpo", "g": "grpo_guard",
                          "p": config("grpo_guard", bias_reduction="batch", clip=0.2)}
    return final(configs, {"proxy": 0.0, "accuracy": 1.0}, flowgrpo=baseline, g=reference, p=preset)


def test_c12_rows_name_the_deviation():
    gold, proxy = c12_public_presets(c12_setting((1.02, 1.03)))
    assert values_of(gold) == pytest.approx([0.03] * 3) and values_of(proxy) == pytest.approx([0.02] * 3)
    # tolerance 0.1 x the baseline's proxy gain |0.5 - 0|
    assert (gold["check"], gold["source"], gold["variants"], gold["claim"], gold["id"]) == (
        "bias_reduction: batch, clip: 0.2: final Average(gold) minus g's within +-0.05", SRC_MAIN, "p, g", C12, "C12")
    assert (proxy["check"], proxy["source"], proxy["variants"], proxy["claim"], proxy["id"]) == (
        "bias_reduction: batch, clip: 0.2: final proxy minus g's within +-0.05 (0.1 x the baseline's proxy gain)",
        SRC_MAIN, "p, g", C12, "C12")


@pytest.mark.parametrize("preset,verdicts", [
    ((1.049, 1.049), [REPRODUCED, REPRODUCED]), ((0.951, 0.951), [REPRODUCED, REPRODUCED]),
    ((1.051, 1.0), [REPRODUCED, NOT_REPRODUCED]), ((0.949, 1.0), [REPRODUCED, NOT_REPRODUCED]),
    ((1.0, 1.051), [NOT_REPRODUCED, REPRODUCED]), ((1.0, 0.949), [NOT_REPRODUCED, REPRODUCED])])
def test_c12_edges(preset, verdicts):
    assert [r["verdict"] for r in c12_public_presets(c12_setting(preset))] == verdicts


def test_c12_without_a_baseline_has_no_proxy_tolerance():
    s = c12_setting((1.0, 1.0), configs={"g": "grpo_guard", "p": config("grpo_guard", seed=3, extra=None)})
    gold, proxy = c12_public_presets(final({"g": "grpo_guard", "p": config("grpo_guard", extra=1, seed=4)},
                                           g=(1.0, 1.0), p=(1.0, 1.0)))
    assert gold["check"].startswith("extra: 1: ") and gold["verdict"] == REPRODUCED
    not_tested([proxy], "C12", "extra: 1: final proxy minus g's within +-nan (0.1 x the baseline's proxy gain)",
               "no scored baseline run: the tolerance is a share of its proxy gain", SRC_MAIN, "p, g")
    assert proxy["claim"] == C12
    # neither the seed nor a key set to None (absent from the reference) is a deviation
    assert c12_public_presets(s)[0]["check"] == ": final Average(gold) minus g's within +-0.05"
    unscored = c12_setting((1.0, 1.0), baseline=(math.nan, math.nan))  # the baseline ran but has no final scores
    assert c12_public_presets(unscored)[1]["reason"] == "no scored baseline run: the tolerance is a share of its proxy gain"


def test_c12_not_tested():
    not_tested(c12_public_presets(final(PAIR, flowgrpo=(1.0, 1.0), g=(1.0, 1.0))), "C12",
               "preset vs paper-faithful variant", "no public-script preset ran", SRC_MAIN)
    s = setting({"g": "grpo_guard", "p": config("grpo_guard", clip=0.2)})
    not_tested(c12_public_presets(s), "C12", "preset vs paper-faithful variant", "no scored runs", SRC_MAIN)
    assert c12_public_presets(s)[0]["claim"] == C12


# --- within-run resamples: per-image evaluation units and blocks of iterations -----------------------------------

PROMPTS, IMAGES = 3, 12  # 4 images per prompt: fewer than MIN_PROMPTS prompts, so images are resampled within prompts
UNIT_NOISE = (lambda x: (x - x.mean()) / x.std())(np.random.default_rng(0).normal(size=IMAGES))  # mean 0, sd 1
ITERATION_NOISE = (lambda x: (x - x.mean()) / x.std())(np.random.default_rng(1).normal(size=16))
UNITS = {"holds": (1.0, 0.1, REPRODUCED), "fails": (-1.0, 0.1, NOT_REPRODUCED), "straddles": (0.05, 1.0, INCONCLUSIVE)}
"""case -> (shift, spread over images or iterations, the verdict of a '> 0' check)."""


def image_rows(**columns):
    """IMAGES rows of one evaluation: image, prompt and per-image columns (a number or IMAGES values)."""
    return pd.DataFrame({"image": range(IMAGES), "prompt": [f"p{i % PROMPTS}" for i in range(IMAGES)],
                         **{c: np.broadcast_to(v, IMAGES) for c, v in columns.items()}})


def eval_units(runs):
    """eval_units.jsonl rows: (variant, seed) -> {iteration: {column: per-image values}}."""
    return pd.concat([image_rows(**columns).assign(variant=v, seed=seed, iteration=it)
                      for (v, seed), by_it in runs.items() for it, columns in by_it.items()], ignore_index=True)


def set_means(units, keys):
    """What eval.jsonl / scores/summary.jsonl log: each evaluation's mean over its images."""
    return units.groupby(keys)[["proxy", "g1"]].mean().reset_index()


def with_eval_units(configs, runs, logged_only=()):
    """A setting whose evaluations have per-image units (gold g1), except the runs ``logged_only`` (set means only)."""
    units = eval_units(runs)
    logged = set_means(units, ["variant", "seed", "iteration"])
    keep = ~pd.Series(list(zip(units.variant, units.seed))).isin(list(logged_only)).to_numpy()
    return setting(configs, evals=logged, eval_units=units[keep].reset_index(drop=True), gold=["g1"])


def c6_units(proxy_gain, seeds=(0,), **kw):
    """The baseline's per-image proxy rises by ``proxy_gain`` (per image) from iteration 0 to 10; g1 halves."""
    return with_eval_units(BASELINE_ONLY, {("flowgrpo", seed): {0: {"proxy": 0.0, "g1": 1.0},
                                                                10: {"proxy": proxy_gain, "g1": 0.5}}
                                           for seed in seeds}, **kw)


@pytest.mark.parametrize("case", UNITS)
def test_c6_with_one_seed_of_per_image_units_is_judged_on_its_images(case):
    shift, spread_, verdict = UNITS[case]
    proxy, gold = c6_baseline_hacking(c6_units(shift + spread_ * UNIT_NOISE))
    assert (proxy["verdict"], gold["verdict"]) == (verdict, REPRODUCED)
    assert values_of(proxy) == pytest.approx([shift]) and values_of(gold) == pytest.approx([-0.5])
    assert proxy["seeds"] == 1 and proxy["reason"] == "" and proxy["units"] == "12 images"
    assert proxy["covers"] == "images within 3 prompts (one seed: evaluation or iteration noise only)"
    assert proxy["ci95_low"] < shift < proxy["ci95_high"] and (proxy["ci95_low"] < 0 < proxy["ci95_high"]) == (
        verdict == INCONCLUSIVE)
    assert gold["ci95_low"] == gold["ci95_high"] == pytest.approx(-0.5)  # every image halves: no spread


def final_units(**runs):
    """scores/units.jsonl rows of seed 0: variant -> (proxy, g1) per image."""
    return pd.concat([image_rows(proxy=p, g1=g).assign(variant=v, seed=0) for v, (p, g) in runs.items()],
                     ignore_index=True)


def with_final_units(base_units=True, **runs):
    units = final_units(**runs)
    return setting(PAIR, scores=set_means(units, ["variant", "seed"]), base={"proxy": 0.0, "g1": 1.0},
                   final_units=units, base_units=image_rows(proxy=0.0, g1=1.0) if base_units else None, gold=["g1"])


@pytest.mark.parametrize("case", UNITS)
def test_c11_with_one_seed_of_per_image_units_is_judged_on_its_images(case):
    # the same images of both variants and the base model in every draw: the gap is paired image by image
    shift, spread_, verdict = UNITS[case]
    gold, proxy = c11_main_table(with_final_units(flowgrpo=(1.0, 1.0), g=(1.0, 1.0 + shift + spread_ * UNIT_NOISE)))
    assert (gold["verdict"], proxy["verdict"]) == (verdict, REPRODUCED)  # proxy: 0 within -0.1 x |1 - 0|
    assert values_of(gold) == pytest.approx([shift]) and values_of(proxy) == pytest.approx([0.0], abs=1e-12)
    assert gold["covers"] == "images within 3 prompts (one seed: evaluation or iteration noise only)"
    assert (gold["seeds"], gold["reason"], gold["units"]) == (1, "", "12 images")
    # P(GRPO-Guard > baseline): the share of the resamples in which its Average(gold) is higher
    assert gold["p_improvement"] == {"holds": 1.0, "fails": 0.0}.get(case, pytest.approx(0.5, abs=0.3))
    assert math.isnan(gold["p_improvement_low"]) and math.isnan(gold["p_improvement_high"])


def c1_iterations(step0, seeds=(0,), spread_=0.0):
    """16 iterations of the baseline: log-ratio mean -1 at steps 1-4, ``step0(seed)`` + ``spread_`` x noise over the
    iterations at step 0."""
    return setting(BASELINE_ONLY, pd.DataFrame([
        {"variant": "flowgrpo", "seed": seed, "iteration": it, "update": 1, "step": k, "n": 4, "log_ratio_std": 1.0,
         "log_ratio_mean": step0(seed) + spread_ * ITERATION_NOISE[it] if k == 0 else -1.0}
        for seed in seeds for it in range(16) for k in STEPS]))


@pytest.mark.parametrize("case", UNITS)
def test_c1_with_one_seed_is_judged_on_blocks_of_its_iterations(case):
    # new: a one-seed step row gets a verdict (it was 'not tested'): the check is "< 0", so the shift is negated
    shift, spread_, verdict = UNITS[case]
    top = c1_baseline_shift(c1_iterations(lambda seed: -shift, spread_=spread_))[0]
    assert top["verdict"] == verdict and values_of(top) == pytest.approx([-shift])
    assert top["covers"] == "iterations (stationary blocks) (one seed: evaluation or iteration noise only)"
    assert top["units"].startswith("16 iterations, mean block ") and top["seeds"] == 1 and top["reason"] == ""


def test_step_interval_over_seeds_is_at_least_the_t_interval():
    # three seeds at -0.5, -0.55, -0.6: the t-interval is inside "< 0"; identical iterations leave it as it is
    step0 = {0: -0.5, 1: -0.55, 2: -0.6}.get
    calm = c1_baseline_shift(c1_iterations(step0, SEEDS))[0]
    assert (calm["ci95_low"], calm["ci95_high"]) == pytest.approx(t_interval(np.array([-0.5, -0.55, -0.6])))
    assert calm["verdict"] == REPRODUCED and calm["covers"] == "seeds x iterations (stationary blocks)"
    assert calm["units"].startswith("3 seeds x 16 iterations")
    # a large spread over each run's iterations widens it across 0: new, the t-interval alone would reproduce it
    noisy = c1_baseline_shift(c1_iterations(step0, SEEDS, spread_=4.0))[0]
    assert values_of(noisy) == pytest.approx([-0.5, -0.55, -0.6]) and noisy["verdict"] == INCONCLUSIVE
    assert noisy["ci95_low"] < calm["ci95_low"] and noisy["ci95_high"] > 0


def test_outcome_claims_with_units_for_every_run_cover_seeds_and_images():
    s = c6_units(0.5 + 0.1 * UNIT_NOISE, seeds=SEEDS)
    proxy = c6_baseline_hacking(s)[0]
    assert (proxy["covers"], proxy["units"], proxy["reason"]) == ("seeds x images within 3 prompts",
                                                                  "3 seeds x 12 images", "")
    assert proxy["verdict"] == REPRODUCED and values_of(proxy) == pytest.approx([0.5] * 3)


def test_a_run_without_units_among_runs_with_them_falls_back_to_seed_only():
    s = c6_units(0.5 + 0.1 * UNIT_NOISE, seeds=SEEDS, logged_only=[("flowgrpo", 1)])
    assert s.eval_draws is None
    proxy, gold = c6_baseline_hacking(s)
    with_units = c6_baseline_hacking(c6_units(0.5 + 0.1 * UNIT_NOISE, seeds=SEEDS))[0]
    assert proxy["per_seed"] == with_units["per_seed"] and proxy["reason"] == gold["reason"] == NO_UNITS
    assert (proxy["covers"], proxy["units"]) == ("seeds", "3 seeds")
    assert (proxy["ci95_low"], proxy["ci95_high"]) == pytest.approx(t_interval(np.array([0.5] * 3)))
    # the same on the final scores: a run without scores/units.jsonl, or no base model units
    full = dict(flowgrpo=(1.0, 1.0), g=(1.0, 1.2 + 0.1 * UNIT_NOISE))
    gold, _ = c11_main_table(with_final_units(base_units=False, **full))
    assert (gold["reason"], gold["verdict"], gold["per_seed"]) == (f"one seed and {NO_UNITS}", NOT_TESTED, "s0: 0.2")
    s = with_final_units(**full)
    s.final_units = s.final_units[s.final_units.variant == "g"]
    assert s.final_draws is None and c11_main_table(s)[0]["reason"] == f"one seed and {NO_UNITS}"


def test_outcome_values_with_units_are_the_logged_ones():
    """Draw 0 of the per-image units is the evaluation itself: every outcome claim's per-seed values are the ones
    computed from eval.jsonl / scores/summary.jsonl alone."""
    runs = {"flowgrpo": ("flowgrpo", 1.0, 0.4), "tr": ("temp_reweight", 1.5, 0.2), "mr": ("mean_revised", 1.0, 0.8),
            "rn": ("rationorm", 0.8, 0.9), "g": ("grpo_guard", 1.0, 0.9)}
    its = (0, 10, 20)
    units = pd.concat([image_rows(proxy=proxy * it / 20 * (1 + 0.1 * seed) + 0.01 * UNIT_NOISE,
                                  g1=(1 + (gold - 1) * it / 20 * (1 + 0.1 * seed)) * (1 + 0.01 * UNIT_NOISE))
                       .assign(variant=v, seed=seed, iteration=it)
                       for v, (_, proxy, gold) in runs.items() for seed in SEEDS for it in its], ignore_index=True)
    last = units[units.iteration == its[-1]].drop(columns="iteration")
    frames = dict(evals=set_means(units, ["variant", "seed", "iteration"]), scores=set_means(last, ["variant", "seed"]),
                  base={"proxy": 0.0, "g1": 1.0}, gold=["g1"])
    configs = {v: m for v, (m, _, _) in runs.items()}
    resampled = claims_of(setting(configs, eval_units=units, final_units=last, base_units=image_rows(proxy=0.0, g1=1.0),
                                  **frames))
    logged = claims_of(setting(configs, **frames))
    outcome = ~resampled.id.isin(["C1", "C2", "C3", "C4", "C5", "C12"])
    assert set(resampled[outcome].id) == {"C6", "C7", "C8", "C9", "C10", "C11"}
    assert (resampled[outcome].seeds == 3).all() and (resampled[outcome].covers == "seeds x images within 3 prompts").all()
    assert list(resampled[outcome].per_seed) == list(logged[outcome].per_seed)
    assert np.allclose(resampled[outcome]["mean"], logged[outcome]["mean"])
    assert (logged[outcome].reason == NO_UNITS).all()


def units_setting():
    """Every kind of evidence with its resamples: three seeds of iterations, evaluation units and final units."""
    s = c6_units(0.5 + 0.1 * UNIT_NOISE, seeds=SEEDS)
    steps_ = c1_iterations({0: -0.5, 1: -0.55, 2: -0.6}.get, SEEDS, spread_=0.5)
    units = pd.concat([final_units(flowgrpo=(1.0, 1.0), g=(1.0, 1.2 + 0.1 * UNIT_NOISE)).assign(seed=seed)
                       for seed in SEEDS], ignore_index=True)
    s = setting({"flowgrpo": "flowgrpo", "g": "grpo_guard"}, steps_.raw_steps, s.raw_evals,
                set_means(units, ["variant", "seed"]), {"proxy": 0.0, "g1": 1.0}, s.eval_units, units,
                image_rows(proxy=0.0, g1=1.0), gold=["g1"])
    return s


def test_the_table_is_the_same_in_two_computations():
    first, second = claims_of(units_setting()), claims_of(units_setting())
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == COLUMNS
    judged = first[first.verdict != NOT_TESTED]
    assert {"C1", "C6", "C11"} <= set(judged.id) and (judged.seeds == 3).all()
    assert judged.covers.str.startswith("seeds x ").all()
    assert judged[judged.id == "C11"].p_improvement_low.notna().any()


# --- reading run folders, the whole table and its formatting -----------------------------------------------------

def write_run(root, variant, seed, method, finished=True, **files):
    run = root / variant / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config(method, seed=seed)))
    for name, text in files.items():
        (run / name).write_text(text)
    if finished:
        (run / "final.json").write_text("{}")


def test_setting_read_takes_finished_runs_of_the_settings_variants(tmp_path):
    write_run(tmp_path, "b", 1, "flowgrpo", **{"eval.jsonl": '{"iteration": 0, "proxy": 1.0}\n'})
    write_run(tmp_path, "b", 0, "dancegrpo", **{"eval.jsonl": '{"iteration": 0, "proxy": 2.0}\n', "steps.jsonl": ""})
    write_run(tmp_path, "a", 0, "grpo_guard", **{"steps.jsonl": '{"step": 0, "update": 1}\n'})
    write_run(tmp_path, "a", 1, "grpo_guard", finished=False, **{"steps.jsonl": '{"step": 5, "update": 1}\n'})
    write_run(tmp_path, "other", 0, "rationorm", **{"eval.jsonl": '{"iteration": 0, "proxy": 3.0}\n'})
    s = Setting.read(str(tmp_path), {"variants": ["b", "a", "absent"], "gold": []})
    assert list(s.configs) == ["b", "a"] and s.configs["b"]["variant"] == "dancegrpo"  # seed 0 is the first
    assert first_configs(tmp_path, ["a"]) == {"a": config("grpo_guard", seed=0)}
    assert s.raw_evals[["variant", "seed", "proxy"]].values.tolist() == [["b", 0, 2.0], ["b", 1, 1.0]]
    assert s.raw_steps[["variant", "seed", "step"]].values.tolist() == [["a", 0, 0]]
    assert s.raw_scores.empty and list(s.raw_scores.columns) == ["variant", "seed"] and s.base is None
    assert s.base_row is None and s.base_units is None and s.eval_units.empty and s.final_units.empty
    assert list(read_or_empty(tmp_path, "eval.jsonl", ["other"]).proxy) == [3.0]
    only1 = Setting.read(tmp_path, {"variants": ["b", "a"], "gold": []}, seeds=[1])
    assert only1.raw_evals[["variant", "seed", "proxy"]].values.tolist() == [["b", 1, 1.0]] and only1.raw_steps.empty
    assert list(read_or_empty(tmp_path, "eval.jsonl", ["b"], seeds=[0]).proxy) == [2.0]
    (tmp_path / "base" / "scores").mkdir(parents=True)
    (tmp_path / "base" / "scores" / "summary.jsonl").write_text('{"proxy": 0.5, "accuracy": 1.0}\n')
    (tmp_path / "a" / "seed0" / "scores").mkdir()
    (tmp_path / "a" / "seed0" / "scores" / "summary.jsonl").write_text('{"proxy": 0.75}\n')
    s = Setting.read(tmp_path, {"variants": ["b", "a"], "gold": []})
    assert s.base == read_base(tmp_path, "summary.jsonl").iloc[0].to_dict() == {"proxy": 0.5, "accuracy": 1.0}
    assert read_base(tmp_path, "units.jsonl") is None
    assert s.raw_scores[["variant", "seed", "proxy"]].values.tolist() == [["a", 0, 0.75]]


def test_a_run_without_its_config_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.yaml is missing: the trainer writes it"):
        config_of(tmp_path)


def test_claims_table_of_a_setting_without_runs_lists_every_claim_not_tested(tmp_path):
    table = claims_table(tmp_path, {"variants": ["flowgrpo"], "gold": ["accuracy"], "baseline": "flowgrpo"})
    assert list(table.columns) == COLUMNS
    assert list(table.id) == ["C1", "C2", "C3", "C4", "C4", "C6", "C7", "C8", "C9", "C10", "C11", "C12"]
    assert set(table.verdict) == {NOT_TESTED}


NAN3 = {"p_improvement": math.nan, "p_improvement_low": math.nan, "p_improvement_high": math.nan}
CLAIMS = pd.DataFrame([
    {"id": "C1", "claim": "words", "check": "a", "variants": "b", "per_seed": "s0: 1; s1: 2", "seeds": 2,
     "mean": 1.5, "ci95_low": -4.8531, "ci95_high": 7.8531, "verdict": INCONCLUSIVE, "reason": "",
     "covers": "seeds x iterations", "units": "2 seeds x 9 iterations", "seeds_needed": 7.0, "p_improvement": 0.75,
     "p_improvement_low": 0.25, "p_improvement_high": 1.0, "paper": "20x", "source": "src"},
    {"id": "C1", "claim": "words", "check": "c", "variants": "b", "per_seed": "s0: 1", "seeds": 1, "mean": 1.0,
     "ci95_low": math.nan, "ci95_high": math.nan, "verdict": NOT_TESTED, "reason": "one seed", "covers": "",
     "units": "", "seeds_needed": None, "p_improvement": 0.5, "p_improvement_low": math.nan,
     "p_improvement_high": math.nan, "paper": "", "source": "src"},
    {"id": "C2", "claim": "other", "check": "d", "variants": "", "per_seed": "", "seeds": 0, "mean": math.nan,
     "ci95_low": math.nan, "ci95_high": math.nan, "verdict": NOT_TESTED, "reason": "", "covers": "seeds",
     "units": None, "seeds_needed": None, **NAN3, "paper": None, "source": "src"}]).reindex(columns=COLUMNS)


def test_formatted_claims():
    table = formatted(CLAIMS)
    assert list(table.columns) == ["id", "verdict", "claim (paper)", "check (holds inside the stated band)", "variants",
                                   "mean [95% interval]", "interval covers", "P(X > Y) [95%]", "per seed", "paper",
                                   "from"]
    assert table.values.tolist() == [
        ["C1", "inconclusive; about 7 seeds would decide", "words", "a", "b", "1.5 [-4.85, 7.85]",
         "seeds x iterations (2 seeds x 9 iterations)", "0.75 [0.25, 1.00]", "s0: 1; s1: 2", "20x", "src"],
        ["C1", "not tested (one seed)", '"', "c", "b", "1", "", "0.50", "s0: 1", "", "src"],
        ["C2", "not tested", "other", "d", "", "", "seeds", "", "", "", "src"]]
    keyed = formatted(CLAIMS.assign(backbone=["x", "y", "x"], task="t"))
    assert list(keyed.columns[:3]) == ["backbone", "task", "id"] and list(keyed["claim (paper)"]) == ["words", "words",
                                                                                                       "other"]


def test_write_claims(tmp_path):
    write_claims(CLAIMS, tmp_path / "claims")
    back = pd.read_csv(tmp_path / "claims.csv")
    assert list(back.columns) == COLUMNS and list(back.check) == ["a", "c", "d"]
    md = (tmp_path / "claims.md").read_text()
    assert md == f"{CAPTION}\n\n{formatted(CLAIMS).to_markdown(index=False)}\n"
    tex = (tmp_path / "claims.tex").read_text()
    assert tex == formatted(CLAIMS).to_latex(index=False, caption=CAPTION, escape=True, longtable=True)
    assert "\\begin{longtable}" in tex and "t-interval over seeds" in tex and "two-stage bootstrap" in tex


# --- the paper's main table beside ours (analysis.tables.beside_paper) -------------------------------------------

METRICS = ["proxy", "hpsv2", "imagereward", "unifiedreward", "avg_gold"]


def main_rows(*rows):
    """Rows of the summary's main table: (variant, method, backbone_name, reward, metric values)."""
    return pd.DataFrame([{"backbone": "bb", "task": "tk", "variant": v, "method": m, "backbone_name": b, "reward": r,
                          **dict(zip(METRICS, values))} for v, m, b, r, values in rows])


def test_beside_paper_puts_each_matched_row_beside_the_papers():
    beside = beside_paper(main_rows(("base", "base", "sd35", "geneval", (0.5, 0.29, 1.0, 0.6, 1.0)),
                                    ("g", "grpo_guard", "sd35", "geneval", (0.9, 0.25, 0.8, 0.64, 0.9)),
                                    ("d", "dancegrpo", "flux", "pickscore", (0.8, 0.27, 0.7, 0.62, math.nan))))
    assert list(beside.index) == [("bb", "tk", "base"), ("bb", "tk", "g"), ("bb", "tk", "d")]
    assert list(beside.index.names) == ["backbone", "task", "variant"]
    assert list(beside.columns) == ["paper row"] + [f"{n} {k}" for n in ("proxy", "HPSv2", "ImageReward",
                                                                         "UnifiedReward", "Avg(gold)")
                                                    for k in ("paper", "measured", "diff")]
    assert list(beside["paper row"]) == ["SD3.5-M base", "SD3.5-M grpo_guard", "FLUX.1-dev dancegrpo"]
    g = beside.loc[("bb", "tk", "g")]
    # paper, SD3.5-M GRPO-Guard on GenEval: proxy 0.95, HPSv2 0.254, ImageReward 0.87, UnifiedReward 3.22, Avg 0.89
    assert list(g.iloc[1:]) == pytest.approx([0.95, 0.9, -0.05, 0.254, 0.25, -0.004, 0.87, 0.8, -0.07,
                                              3.22, 3.2, -0.02, 0.89, 0.9, 0.01])
    base = beside.loc[("bb", "tk", "base")]
    assert math.isnan(base["proxy paper"]) and base["proxy measured"] == 0.5 and math.isnan(base["proxy diff"])
    assert base["UnifiedReward paper"] == 3.31 and base["Avg(gold) paper"] == 1.0
    d = beside.loc[("bb", "tk", "d")]
    assert d["proxy paper"] == 0.80 and d["HPSv2 paper"] == 0.269 and d["UnifiedReward measured"] == pytest.approx(3.1)
    assert math.isnan(d["Avg(gold) measured"]) and math.isnan(d["Avg(gold) diff"]) and d["Avg(gold) paper"] == 0.88


def test_beside_paper_leaves_out_rows_not_in_the_papers_table():
    rows = main_rows(("a", "grpo_guard", "nano", "geneval", (1.0,) * 5),  # backbone not in the paper
                     ("b", "grpo_guard", "sd35", "pickscore", (1.0,) * 5),  # SD3.5-M PickScore is not in the table
                     ("c", "base", "flux", "geneval", (1.0,) * 5),  # FLUX's tasks: PickScore only
                     ("d", "", "sd35", "geneval", (1.0,) * 5),  # a public-script preset
                     ("e", "rationorm", "sd35", "ocr", (1.0,) * 5),  # an ablation
                     ("f", "dancegrpo", "sd35", "ocr", (1.0,) * 5),  # the baseline of the other backbone
                     ("g", "flowgrpo", "sd35", "ocr", (1.0,) * 5))
    assert list(beside_paper(rows).index.get_level_values("variant")) == ["g"]
    assert beside_paper(rows.drop(columns=["backbone_name"])).empty
    assert beside_paper(rows.drop(columns=["reward"])).empty
    assert beside_paper(rows.drop(columns=["method"])).empty


def test_beside_paper_a_missing_metric_is_nan():
    beside = beside_paper(main_rows(("g", "flowgrpo", "sd35", "ocr", (0.9, 0.3, 1.0, 0.6, 0.9))).drop(columns=["hpsv2"]))
    r = beside.iloc[0]
    assert math.isnan(r["HPSv2 measured"]) and math.isnan(r["HPSv2 diff"]) and r["HPSv2 paper"] == 0.274
    assert r["proxy diff"] == pytest.approx(0.9 - 0.94)


def test_units_missing_one_evaluation_of_a_run_fall_back_to_the_logged_means():
    """A run resumed from before eval_units.jsonl existed has units of its later evaluations only: the per-image
    path would move C6's first evaluation and the iteration-0 base, so the claims use eval.jsonl (seed-only)."""
    runs = {("flowgrpo", s): {0: {"proxy": 0.0, "g1": 1.0}, 10: {"proxy": 0.5 + 0.1 * UNIT_NOISE, "g1": 0.5},
                              20: {"proxy": 1.0, "g1": 0.4}} for s in SEEDS}
    units = eval_units(runs)
    logged = set_means(units, ["variant", "seed", "iteration"])
    partial = units[~((units.seed == 1) & (units.iteration == 0))]
    proxy, gold = c6_baseline_hacking(setting(BASELINE_ONLY, evals=logged, eval_units=partial, gold=["g1"]))
    assert proxy["per_seed"] == "s0: 1; s1: 1; s2: 1" and gold["per_seed"] == "s0: -0.6; s1: -0.6; s2: -0.6"
    assert NO_UNITS in proxy["reason"] and proxy["covers"] == "seeds"


def test_seeds_needed_of_a_band_without_a_finite_edge_is_none():
    assert seeds_needed(1.0, 1.0, -INF, INF) is None


def test_calibration_counts_one_seed_verdicts_against_all_seeds():
    from analysis.calibration import calibration, keyed, summary

    def table(verdicts, means, widths):
        return keyed(pd.DataFrame({"id": ["C1", "C2", "C3"], "variants": ["a", "a", "a"], "check": ["x", "y", "z"],
                                   "verdict": verdicts, "mean": means, "ci95_low": [m - w / 2 for m, w in zip(means, widths)],
                                   "ci95_high": [m + w / 2 for m, w in zip(means, widths)]}))

    full = table(["reproduced", "inconclusive", "not tested"], [1.0, 0.0, math.nan], [0.5, 1.0, math.nan])
    single = {0: table(["reproduced", "reproduced", "not tested"], [1.0, 0.5, math.nan], [0.2, 0.2, math.nan]),
              1: table(["not reproduced", "inconclusive", "not tested"], [3.0, -0.5, math.nan], [0.2, 2.0, math.nan])}
    out = calibration(full, single).set_index("id")
    assert list(out.index) == ["C1", "C2"]  # a check all seeds cannot test is left out
    assert out.loc["C1", ["agree", "contradict"]].tolist() == [1, 1] and math.isnan(out.loc["C1", "decisive where all seeds are not"])
    assert out.loc["C2", "decisive where all seeds are not"] == 1 and math.isnan(out.loc["C2", "agree"])
    assert out.loc["C1", "one-seed verdicts"] == "reproduced 1, not reproduced 1"
    # median one-seed width 0.2 over 2 x 1.96 x the sd of the one-seed values (1 and 3: sd sqrt 2)
    assert out.loc["C1", "one-seed width / seed spread"] == pytest.approx(0.2 / (2 * 1.96 * math.sqrt(2)))
    totals = summary(out.reset_index())
    assert (totals["agree"], totals["contradict"], totals["decisive there"]) == (1, 1, 1)
