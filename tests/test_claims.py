"""The paper's claims as checks (analysis.claims) on synthetic run folders whose verdicts are known."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.__main__ import main
from analysis.claims import claims_table
from analysis.evidence import NO_UNITS
from analysis.stats import judge, seeds_needed, t_interval
from guard.schedule import flowgrpo_schedule

STEPS = range(9)
ITERATIONS = [0, 10, 20, 30]
H = flowgrpo_schedule(10, 3.0, 0.7).h.double().numpy()
NOISE = {0: 1.0, 1: 1.05, 2: 0.95}  # a small, fixed spread over seeds


def shifted(k, seed):
    """A baseline-like ratio: mean -b below 0 and growing toward low noise, b predicted within 5%."""
    m = -0.001 * (k + 1) ** 2 * NOISE[seed]
    return {"log_ratio_mean": m, "log_ratio_std": 0.01 + 0.001 * k, "bias_mean": -m * 1.05,
            "norm_log_ratio_mean": 0.0, "norm_log_ratio_std": 0.01, "clip_pos_upper": 0.05, "clip_neg_lower": 0.5,
            "clip_pos_lower": 0.0, "clip_neg_upper": 0.0, "step_grad_norm": 1.5 ** k * NOISE[seed]}


def normalised(k, seed):
    """A RatioNorm-like ratio: normalised mean ~0, symmetric clipping, gradient norm within 1.8x over steps."""
    return {**shifted(k, seed), "norm_log_ratio_mean": 1e-5 * (-1) ** (k + seed), "clip_pos_upper": 0.5 * NOISE[seed],
            "clip_neg_lower": 0.5, "step_grad_norm": (1 + 0.1 * k) * NOISE[seed]}


def curve(speed, decline):
    """proxy = -0.3 + speed * iteration, accuracy = 1 - decline * iteration (Average(gold) of one metric)."""
    return lambda it, seed: {"proxy": -0.3 + speed * it * NOISE[seed], "accuracy": 1 - decline * it * NOISE[seed]}


def healthy():
    """A setting on which every claim holds: variant -> (method, steps(k, seed), evals(iteration, seed), extra config)."""
    rationorm = lambda k, seed: {**normalised(k, seed), "step_grad_norm": H[k] * NOISE[seed]}  # noqa: E731
    return {
        "flowgrpo": ("flowgrpo", shifted, curve(0.01, 0.02), {}),
        "temp_reweight": ("temp_reweight", shifted, curve(0.015, 0.03), {}),
        "mean_revised": ("mean_revised", shifted, curve(0.01, 0.008), {}),
        "rationorm": ("rationorm", rationorm, curve(0.008, 0.005), {}),
        "grpo_guard": ("grpo_guard", normalised, curve(0.01, 0.005), {}),
        "grpo_guard_public": ("grpo_guard", normalised, curve(0.01, 0.005), {"bias_reduction": "batch"}),
    }


def write_setting(root, spec, seeds=(0, 1, 2), backbone="nano", reward="composition"):
    """results/<exp>/<backbone>/<task>/<variant>/seed<n>/ with what the trainer and the score rule write."""
    for variant, (method, steps, evals, extra) in spec.items():
        for seed in seeds:
            run = root / variant / f"seed{seed}"
            (run / "scores").mkdir(parents=True)
            config = {"variant": method, "seed": seed, "sampler": "flowgrpo", "num_steps": 10, "shift": 3.0,
                      "noise_level": 0.7, "backbone": {"name": backbone}, "task": {"reward": reward}, **extra}
            (run / "config.yaml").write_text(yaml.safe_dump(config))
            rows = [{"iteration": i, "update": u, "step": k, "n": 8, **steps(k, seed)}
                    for i in range(2) for u in range(3) for k in STEPS]
            (run / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            (run / "eval.jsonl").write_text("".join(json.dumps({"iteration": i, **evals(i, seed)}) + "\n" for i in ITERATIONS))
            (run / "scores" / "summary.jsonl").write_text(json.dumps(evals(ITERATIONS[-1], seed)) + "\n")
            (run / "final.json").write_text("{}")
    (root / "base" / "scores").mkdir(parents=True, exist_ok=True)
    (root / "base" / "scores" / "summary.jsonl").write_text(json.dumps({"proxy": -0.3, "accuracy": 1.0}) + "\n")
    return {"gold": ["accuracy"], "baseline": "flowgrpo", "normalised": "rationorm", "variants": list(spec),
            "comparisons": {"ablation": [v for v in spec if v != "grpo_guard_public"]}}


def table(tmp_path, spec, **kw):
    root = tmp_path / "results" / "x" / kw.get("backbone", "nano") / kw.get("reward", "composition")
    return claims_table(root, write_setting(root, spec, **kw))


def verdicts(claims, claim_id, text="", variant=""):
    rows = claims[(claims.id == claim_id) & claims.check.str.contains(text, regex=False)
                  & (claims.variants.str.split(", ").str[0] == variant if variant else True)]
    assert len(rows), f"no {claim_id} row with {text!r}"
    return list(rows.verdict)


def test_t_interval_and_seeds_needed():
    low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    assert (low, high) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-3)
    # mean 1, sd 1, threshold 0: t_{n-1} / sqrt(n) < 1 first at n = 7 (2.447 / 2.646 = 0.925; n = 6: 2.571 / 2.449 > 1)
    assert seeds_needed(1.0, 1.0, 0.0, math.inf) == 7
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, 0.0).verdict == "reproduced"
    assert judge({0: 1.0, 1: 1.1, 2: 0.9}, -math.inf, 0.0).verdict == "not reproduced"
    assert judge({0: 1.0, 1: -1.0, 2: 0.5}, 0.0).verdict == "inconclusive"
    assert judge({0: 1.0}, 0.0).reason == "one seed: no interval over seeds"


def test_every_claim_holds_on_a_setting_built_to_hold_it(tmp_path):
    claims = table(tmp_path, healthy())
    assert sorted(set(claims.id), key=lambda c: int(c[1:])) == [f"C{i}" for i in range(1, 13)]
    tested = claims[claims.reason != "no schedule-only prediction"]
    assert (tested.verdict == "reproduced").all(), tested[tested.verdict != "reproduced"][["id", "check", "per_seed"]]
    assert (claims.seeds == 3).all()
    # the runs write no per-image units: outcome claims over seeds only (and say so); step claims over seeds and
    # blocks of iterations
    steps = claims.id.isin(["C1", "C2", "C3", "C4", "C5"])
    assert (claims[~steps].reason == NO_UNITS).all() and (claims[~steps].covers == "seeds").all()
    assert (claims[steps].covers == "seeds x iterations (stationary blocks)").all()
    assert (claims[steps].units == "3 seeds x 2 iterations, mean block 1.0").all()


def reversed_shift(k, seed):
    """Above 0, and largest at high noise."""
    return {**shifted(k, seed), "log_ratio_mean": 0.001 * (9 - k) ** 2 * NOISE[seed]}


def straddling_shift(k, seed):
    """Seeds disagree on the sign of the shift at step 0."""
    row = shifted(k, seed)
    return {**row, "log_ratio_mean": [0.002, -0.003, 0.001][seed] if k == 0 else row["log_ratio_mean"]}


def wrong_prediction(k, seed):
    return {**shifted(k, seed), "bias_mean": -shifted(k, seed)["log_ratio_mean"] * 2}


def symmetric_baseline(k, seed):
    return {**shifted(k, seed), "clip_pos_upper": 0.5}


def off_centre(k, seed):
    return {**normalised(k, seed), "norm_log_ratio_mean": 0.01}


def flat_baseline_grad(k, seed):
    return {**shifted(k, seed), "step_grad_norm": 1.0 + 0.01 * k}


def with_variant(variant, **changes):
    spec = healthy()
    method, steps, evals, extra = spec[variant]
    spec[variant] = (method, changes.get("steps", steps), changes.get("evals", evals), changes.get("extra", extra))
    return spec


@pytest.mark.parametrize("claim_id,text,variant,changes,expected", [
    ("C1", "max over trained steps", "flowgrpo", dict(steps=reversed_shift), "not reproduced"),
    ("C1", "|shift/std|", "flowgrpo", dict(steps=reversed_shift), "not reproduced"),
    ("C1", "max over trained steps", "flowgrpo", dict(steps=straddling_shift), "inconclusive"),
    ("C2", "predicted", "flowgrpo", dict(steps=wrong_prediction), "not reproduced"),
    ("C3", "low-noise", "flowgrpo", dict(steps=symmetric_baseline), "not reproduced"),
    ("C4", "standard error", "grpo_guard", dict(steps=off_centre), "not reproduced"),
    ("C4", "(A>0", "grpo_guard", dict(steps=shifted), "not reproduced"),
    ("C5", "paper's 20x", "flowgrpo", dict(steps=flat_baseline_grad), "not reproduced"),
    ("C5", "schedule's prediction 1.00x", "grpo_guard", dict(steps=shifted), "not reproduced"),
    ("C5", "max h / min h", "rationorm", dict(steps=normalised), "not reproduced"),
    ("C6", "Average(gold)", "flowgrpo", dict(evals=curve(0.01, -0.001)), "not reproduced"),
    ("C6", "proxy", "flowgrpo", dict(evals=curve(-0.001, 0.02)), "not reproduced"),
    ("C7", "GRPO-Guard minus baseline", "grpo_guard", dict(evals=curve(0.01, 0.03)), "not reproduced"),
    ("C8", "Mean-revised", "mean_revised", dict(evals=curve(0.01, 0.018)), "not reproduced"),
    ("C9", "RatioNorm", "rationorm", dict(evals=curve(0.012, 0.005)), "not reproduced"),
    ("C10", "matched proxy level", "temp_reweight", dict(evals=curve(0.008, 0.03)), "not reproduced"),
    ("C10", "first evaluation", "temp_reweight", dict(evals=curve(0.015, 0.01)), "not reproduced"),
    ("C11", "Average(gold)", "grpo_guard", dict(evals=curve(0.01, 0.03)), "not reproduced"),
    ("C11", "final proxy", "grpo_guard", dict(evals=curve(0.005, 0.005)), "not reproduced"),
    ("C12", "Average(gold)", "grpo_guard_public", dict(evals=curve(0.01, 0.01)), "not reproduced"),
])
def test_a_claim_reversed_or_spread_gets_its_verdict(tmp_path, claim_id, text, variant, changes, expected):
    claims = table(tmp_path, with_variant(variant, **changes))
    assert set(verdicts(claims, claim_id, text, variant if claim_id in ("C4", "C5") else "")) == {expected}


def seed_split(good, bad):
    """Seeds 0 and 2 follow ``good``, seed 1 ``bad``: the interval over seeds straddles the threshold."""
    return lambda it, seed: (bad if seed == 1 else good)(it, seed)


@pytest.mark.parametrize("claim_id,text,spec", [
    ("C6", "Average(gold)", with_variant("flowgrpo", evals=seed_split(curve(0.01, 0.02), curve(0.01, -0.03)))),
    ("C7", "GRPO-Guard minus baseline",
     with_variant("grpo_guard", evals=seed_split(curve(0.01, 0.015), curve(0.01, 0.04)))),
    ("C11", "Average(gold)", with_variant("grpo_guard", evals=seed_split(curve(0.01, 0.015), curve(0.01, 0.04)))),
])
def test_seeds_that_disagree_are_inconclusive_with_the_seeds_a_verdict_needs(tmp_path, claim_id, text, spec):
    claims = table(tmp_path, spec)
    rows = claims[(claims.id == claim_id) & claims.check.str.contains(text, regex=False)]
    assert list(rows.verdict) == ["inconclusive"]
    r = rows.iloc[0]
    assert r.ci95_low < 0 < r.ci95_high  # every band here has its edge at 0
    assert r.seeds_needed == seeds_needed(r["mean"], float(np.std([float(x.split(": ")[1]) for x in r.per_seed.split("; ")],
                                                                  ddof=1)), 0.0, math.inf if r["mean"] > 0 else -math.inf)
    assert r.seeds_needed > 3


def test_missing_inputs_are_not_tested_with_the_reason(tmp_path):
    spec = healthy()
    del spec["temp_reweight"], spec["grpo_guard_public"], spec["mean_revised"]
    claims = table(tmp_path, spec)
    assert set(verdicts(claims, "C10")) == {"not tested"}
    assert "Temp-Reweight" in claims[claims.id == "C10"].reason.iloc[0]
    assert "Mean-revised" in claims[claims.id == "C8"].reason.iloc[0]
    assert claims[claims.id == "C12"].reason.iloc[0] == "no public-script preset ran"


def test_one_seed_is_not_tested_but_shows_its_value(tmp_path):
    claims = table(tmp_path, healthy(), seeds=(0,))
    # new: the step claims resample blocks of one run's iterations and are judged on them (they were not tested);
    # the outcome claims, without per-image units, are not tested and say why
    steps = claims.id.isin(["C1", "C2", "C3", "C4", "C5"])
    judged = claims[steps & (claims.reason != "no schedule-only prediction")]
    assert (judged.verdict == "reproduced").all() and (judged.seeds == 1).all()
    assert judged.covers.str.contains("one seed").all()
    assert (claims[~steps].verdict == "not tested").all() and (claims[~steps].reason == f"one seed and {NO_UNITS}").all()
    first = claims[claims.id == "C1"].iloc[0]
    assert first.reason == "" and first["mean"] == pytest.approx(-0.001)
    c6 = claims[claims.id == "C6"].iloc[0]
    assert c6.seeds == 1 and c6["mean"] == pytest.approx(0.3)  # the value is shown


def test_the_public_preset_names_its_deviation(tmp_path):
    claims = table(tmp_path, healthy())
    assert claims[claims.id == "C12"].check.str.startswith("bias_reduction: batch").all()
    assert set(claims[claims.id == "C12"].variants) == {"grpo_guard_public, grpo_guard"}


def test_roles_come_from_the_run_config_not_the_variant_name(tmp_path):
    spec = healthy()
    spec = {("guard_renamed" if v == "grpo_guard" else v): e for v, e in spec.items()}  # config.yaml: grpo_guard
    claims = table(tmp_path, spec)
    assert "guard_renamed, flowgrpo" in set(claims[claims.id == "C7"].variants)
    assert claims[claims.id == "C12"].variants.iloc[0] == "grpo_guard_public, guard_renamed"


def test_the_claims_command_writes_every_claim_id(tmp_path):
    root = tmp_path / "results" / "x" / "nano" / "composition"
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump(write_setting(root, healthy())))
    assert main(["claims", "--runs", str(root), "--settings", str(tmp_path / "analysis.yaml"), "--out", str(root / "tables")]) == 0
    text = (root / "tables" / "claims.md").read_text()
    assert all(f"| C{i} " in text for i in range(1, 13)) and "reproduced" in text
    assert (root / "tables" / "claims.tex").is_file()
    other = tmp_path / "results" / "x" / "other" / "composition" / "tables"
    other.mkdir(parents=True)
    (other / "claims.csv").write_text((root / "tables" / "claims.csv").read_text())
    out = tmp_path / "results" / "x" / "tables"
    assert main(["claims_summary", "--tables", str(root / "tables" / "claims.csv"), str(other / "claims.csv"),
                 "--out", str(out)]) == 0
    both = pd.read_csv(out / "claims.csv")
    assert set(both.backbone) == {"nano", "other"} and len(both) == 2 * len(pd.read_csv(root / "tables" / "claims.csv"))


def main_raw(path, rows):
    """A setting's main_raw.csv: mean and std per metric, and the keys that match a row to the paper's."""
    path.parent.mkdir(parents=True)
    metrics = ["proxy", "hpsv2", "imagereward", "unifiedreward", "avg_gold"]
    frame = pd.DataFrame([{"variant": v, "seeds": 1, **dict(zip(metrics, values)), **{f"{m}_std": 0.0 for m in metrics},
                           "method": method, "backbone_name": backbone, "reward": reward}
                          for v, method, backbone, reward, values in rows])
    frame.set_index("variant").to_csv(path)


def test_the_paper_beside_ours_on_a_setting_named_like_the_paper(tmp_path):
    exp = tmp_path / "results" / "paper"
    geneval = exp / "sd35" / "geneval" / "tables" / "main_raw.csv"
    main_raw(geneval, [("base", "base", "sd35", "geneval", (0.6, 0.29, 1.0, 0.66, 1.0)),
                       ("flowgrpo", "flowgrpo", "sd35", "geneval", (0.9, 0.24, 0.8, 0.60, 0.85)),
                       ("grpo_guard", "grpo_guard", "sd35", "geneval", (0.95, 0.26, 0.9, 0.64, 0.9)),
                       ("grpo_guard_public", "", "sd35", "geneval", (0.95, 0.26, 0.9, 0.64, 0.9))])
    pick = exp / "sd35" / "pickscore" / "tables" / "main_raw.csv"  # SD3.5-M PickScore is not in the paper's table
    main_raw(pick, [("grpo_guard", "grpo_guard", "sd35", "pickscore", (0.9, 0.26, 0.9, 0.64, 0.9))])
    assert main(["summary", "--tables", str(geneval), str(pick), "--out", str(exp / "tables")]) == 0
    beside = pd.read_csv(exp / "tables" / "main_vs_paper.csv", index_col=[0, 1, 2])
    assert list(beside.index.get_level_values("variant")) == ["base", "flowgrpo", "grpo_guard"]
    guard = beside.xs("grpo_guard", level="variant").iloc[0]
    # paper: GRPO-Guard (FG) on GenEval: proxy 0.95, HPSv2 0.254, ImageReward 0.87, UnifiedReward 3.22, Avg 0.89
    assert guard["UnifiedReward measured"] == pytest.approx(0.64 * 5) and guard["UnifiedReward paper"] == 3.22
    assert guard["UnifiedReward diff"] == pytest.approx(0.64 * 5 - 3.22)
    assert guard["HPSv2 diff"] == pytest.approx(0.26 - 0.254) and guard["Avg(gold) measured"] == 0.9
    assert guard["Avg(gold) paper"] == 0.89 and guard["proxy paper"] == 0.95
    assert beside.xs("base", level="variant").iloc[0]["UnifiedReward paper"] == 3.31


def test_readme_quotes_the_claims_table_between_its_markers(tmp_path):
    from analysis.__main__ import README_BEGIN, README_END

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\ntext before\n{README_BEGIN}\nstale table\n{README_END}\ntext after\n")
    table = tmp_path / "claims.md"
    table.write_text("caption\n\n| id | verdict |\n|---|---|\n| C1 | reproduced |\n")
    assert main(["readme", "--tables", str(table), "--out", str(readme)]) == 0
    text = readme.read_text()
    assert "stale table" not in text and "| C1 | reproduced |" in text
    assert text.startswith("# x\n\ntext before\n") and text.endswith(f"{README_END}\ntext after\n")
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="claims table: BEGIN"):
        main(["readme", "--tables", str(table), "--out", str(readme)])


def test_main_table_claim_shows_the_papers_gap_on_a_setting_named_like_the_paper(tmp_path):
    claims = table(tmp_path, healthy(), backbone="sd35", reward="ocr")
    c11 = claims[claims.id == "C11"].set_index("check").paper
    # paper, SD3.5-M OCR: Avg(gold) GRPO-Guard 0.99 vs FlowGRPO 0.88; proxy 0.93 vs 0.94
    assert list(c11) == ["0.99 - 0.88 = +0.11", "0.93 - 0.94 = -0.01"]
    assert set(table(tmp_path / "nano", healthy())[lambda c: c.id == "C11"].paper) == {""}


def test_the_formatted_table_read_back_from_csv_has_no_nan_text(tmp_path):
    from analysis.claims import formatted

    claims = table(tmp_path, healthy(), seeds=(0,))
    claims.to_csv(tmp_path / "c.csv", index=False)
    text = formatted(pd.read_csv(tmp_path / "c.csv")).to_markdown()
    assert "nan" not in text.lower().replace("nano", "") and f"one seed and {NO_UNITS}" in text
