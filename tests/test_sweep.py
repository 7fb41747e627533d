"""A sweep of trainer keys (jobs/sweep.py) and the verdict map across it (analysis/sensitivity.py): the expansion
into variant entries and run folders, its errors at load, the summary per claim row on synthetic claims tables.
The tiny two-point sweep end to end is in tests/test_workflow.py (its tiny experiment has one)."""

import copy
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config

from analysis.sensitivity import point_settings, sensitivity_table, summary, write_sensitivity
from bench.plan import plan
from jobs.config import ConfigError, config_from_dict, load_config, resolve_run
from jobs.sweep import sweep_points, swept_entries, with_sweep

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "workflow" / "config"


def experiment(*names):
    """An experiment YAML merged with its overlays as snakemake --configfile does."""
    out = {}
    for name in names:
        update_config(out, yaml.safe_load((CONFIG / name).read_text()))
    return out


@pytest.fixture(scope="module")
def nano_sweep():
    return experiment("nano.yaml", "nano_sweep.yaml")


def test_the_nano_sweep_adds_eight_points_per_ablation_after_the_declared_variants(nano_sweep):
    declared = experiment("nano.yaml")["grid"]["nano"]["composition"]["variants"]
    variants = with_sweep(nano_sweep)["grid"]["nano"]["composition"]["variants"]
    # the declared entries first, unchanged and in their order; then 3 ablations x (3 x 3 - 1) points
    assert list(variants)[:len(declared)] == list(declared)
    assert all(variants[v] == declared[v] for v in declared)
    added = list(variants)[len(declared):]
    assert len(added) == 3 * 8 == len(set(added))
    assert added == swept_entries(nano_sweep, "nano", "composition")
    assert added[:3] == ["temp_reweight@clip_eps=x0.25+lr=x0.333", "temp_reweight@clip_eps=x0.25+lr=x1",
                         "temp_reweight@clip_eps=x0.25+lr=x3"]
    assert "temp_reweight@clip_eps=x1+lr=x1" not in variants  # the default point is temp_reweight itself
    # a point's entry: the variant's own keys, the swept ones scaled (1/3 exact), its method named
    assert variants["mean_revised@clip_eps=x4+lr=x0.333"] == {"variant": "mean_revised", "clip_eps": 0.034, "lr": 1e-4}
    assert variants["rationorm@clip_eps=x0.25+lr=x3"] == {"variant": "rationorm", "clip_eps": 4.25e-5, "lr": 3e-4}
    run = config_from_dict(resolve_run(with_sweep(nano_sweep), "temp_reweight@clip_eps=x1+lr=x3", "nano/composition"))
    assert (run.variant, run.clip_eps, run.lr, run.iterations) == ("temp_reweight", 8.5e-3, 9e-4, 80)
    # baseline and GRPO-Guard untouched; the input is not changed
    assert not any(v.startswith(("flowgrpo@", "grpo_guard@", "dancegrpo@")) for v in variants)
    assert nano_sweep["grid"]["nano"]["composition"]["variants"] == declared
    points = sweep_points(nano_sweep)["nano/composition"]["rationorm"]
    assert [p.default for p in points] == [False] * 4 + [True] + [False] * 4 and points[4].name == "rationorm"
    assert points[0].labels == {"clip_eps": "x0.25", "lr": "x0.333"}


def test_a_point_runs_by_hand_from_an_experiment_file_with_a_sweep(nano_sweep, tmp_path):
    path = tmp_path / "nano_with_sweep.yaml"
    path.write_text(yaml.safe_dump(nano_sweep))
    run = load_config(path, {"variant": "rationorm@clip_eps=x4+lr=x3"})  # python -m guard.train --variant ...
    assert (run.variant, run.clip_eps, run.lr) == ("rationorm", 6.8e-4, 3e-4)


def test_values_mode_and_a_sweep_that_names_the_default_value(nano_sweep):
    e = copy.deepcopy(nano_sweep)
    e["sweep"] = {"nano/composition": {"grpo_guard_dance": {"bias_reduction": {"values": ["sample", "batch"]},
                                                            "iterations": [0.5, 1]}}}
    variants = with_sweep(e)["grid"]["nano"]["composition"]["variants"]
    point = variants["grpo_guard_dance@bias_reduction=batch+iterations=x0.5"]
    assert point["variant"] == "grpo_guard" and point["sampler"] == "dancegrpo"  # its preset's keys and method
    assert point["bias_reduction"] == "batch" and point["iterations"] == 40  # an int key stays an int
    assert len(swept_entries(e, "nano", "composition")) == 3
    assert with_sweep(experiment("nano.yaml")) == experiment("nano.yaml")  # no sweep: the same experiment


@pytest.mark.parametrize("sweep, named", [
    ({"nano/composition": {"temp_reweight": {"clip_epsilon": [1, 2]}}}, "clip_epsilon"),
    ({"nano/composition": {"temp_reweigth": {"clip_eps": [1, 2]}}}, "temp_reweigth"),
    ({"nano/compositon": {"temp_reweight": {"clip_eps": [1, 2]}}}, "nano/compositon"),
    ({"nano/composition": {"temp_reweight": {"variant": {"values": ["rationorm"]}}}}, "variant"),
    ({"nano/composition": {"temp_reweight": {"sampler": [1, 2]}}}, "a factor needs a number"),
    ({"nano/composition": {"temp_reweight": {"clip_eps": [0.3331, 0.3332]}}}, "share the label"),
])
def test_a_bad_sweep_fails_at_load_naming_it(nano_sweep, sweep, named):
    e = {**nano_sweep, "sweep": sweep}
    with pytest.raises(ConfigError, match=named):
        with_sweep(e)


def snakemake(*args, cwd):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_workflow_runs_every_point_in_its_own_folder_and_fails_on_a_misspelt_key(tmp_path):
    done = snakemake("-n", "--cores", "2", "--configfile", str(CONFIG / "nano.yaml"), str(CONFIG / "nano_sweep.yaml"),
                     cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    stats = text.split("Job stats:")[1].split("Reasons:")[0]
    counts = {l.split()[0]: int(l.split()[1]) for l in stats.splitlines() if len(l.split()) == 2 and l.split()[1].isdigit()}
    assert counts["train"] == (7 + 24) * 3 and counts["claims_sensitivity"] == 1 and counts["tables"] == 1
    for seed in (0, 1, 2):
        assert f"results/nano/nano/composition/temp_reweight@clip_eps=x4+lr=x0.333/seed{seed}/final.json" in text
        assert f"results/nano/nano/composition/rationorm@clip_eps=x0.25+lr=x3/seed{seed}/scores/summary.jsonl" in text
    assert "results/nano/nano/composition/temp_reweight@clip_eps=x1+lr=x1/" not in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("sweep:\n  nano/composition:\n    rationorm: {clip_epsilon: [1, 4]}\n")
    done = snakemake("-n", "--configfile", str(CONFIG / "nano.yaml"), str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "sweep.nano/composition.rationorm.clip_epsilon" in done.stdout + done.stderr
    bad.write_text("sweep:\n  nano/composition:\n    rationorm: {clip_eps: [-1, 4]}\n")  # the schema
    done = snakemake("-n", "--configfile", str(CONFIG / "nano.yaml"), str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "sweep" in done.stdout + done.stderr


def test_the_planner_prices_the_points_of_a_paper_sweep(monkeypatch):
    e = experiment("paper.yaml")
    e["sweep"] = {"sd35/geneval": {"temp_reweight": {"clip_eps": [0.5, 1], "lr": [0.5, 1]}}}
    priced = []  # (run, clip_eps, lr) of every training job the planner prices (FLOP counting stubbed: seconds each)
    monkeypatch.setattr("bench.plan.train_job", lambda experiment, run, config, *_: priced.append(
        (run, config.clip_eps, config.lr)) or {"rule": "train", "run": run, "gpus": 8, "wall_hours": 1.0, "gpu_hours": 8.0})
    monkeypatch.setattr("bench.plan.sample_job", lambda experiment, run, *_: {"rule": "sample", "run": run, "gpus": 1,
                                                                              "wall_hours": 0.0, "gpu_hours": 0.0})
    result = plan(e, {}, 80)
    assert [p for p in priced if "@" in p[0]] == [
        ("sd35/geneval/temp_reweight@clip_eps=x0.5+lr=x0.5/seed0", 5e-5, 5e-5),
        ("sd35/geneval/temp_reweight@clip_eps=x0.5+lr=x1/seed0", 5e-5, 1e-4),
        ("sd35/geneval/temp_reweight@clip_eps=x1+lr=x0.5/seed0", 1e-4, 5e-5)]
    assert result["total"]["train_gpu_hours"] == 8.0 * (20 + 3)  # the paper grid's 20 runs and the 3 points


# ----------------------------------------------------------------------------------------------
# The verdict map on synthetic claims tables

SETTINGS = {"gold": ["loglik"], "baseline": "flowgrpo", "normalised": "rationorm",
            "variants": ["flowgrpo", "temp_reweight", "rationorm", "grpo_guard"],
            "comparisons": {"ablation": ["flowgrpo", "temp_reweight", "rationorm", "grpo_guard"]}}


def grid_sweep(variant, keys):
    """A sweep.yaml (as the workflow writes it) over ``keys`` (key -> labels; label x1 everywhere = the default)."""
    points = []
    for combo in pd.MultiIndex.from_product(list(keys.values())):
        labels = dict(zip(keys, combo))
        default = all(v == "x1" for v in combo)
        name = variant if default else variant + "@" + "+".join(f"{k}={v}" for k, v in labels.items())
        points.append({"name": name, "labels": labels, "values": {}, "default": default})
    return {variant: {"keys": list(keys), "points": points}}


def claims_row(id_, variants, verdict, mean):
    return {"id": id_, "claim": "", "check": f"{variants[0]}: a check", "variants": ", ".join(variants),
            "per_seed": "", "seeds": 3, "mean": mean, "ci95_low": mean - 1, "ci95_high": mean + 1, "band_low": 0.0,
            "band_high": math.inf, "strict": True, "verdict": verdict, "reason": "", "covers": "", "units": ""}


def fake_claims(verdict_of):
    """A claims_table stand-in: the point in Temp-Reweight's role (the first temp_reweight* of ``variants``) gets a
    C10 row with verdict_of(its name) and two more; RatioNorm's a C9 row, the baseline a C1 row."""
    seen = []

    def claims(root, settings, seeds):
        seen.append(settings)
        tr = next(v for v in settings["variants"] if v.startswith("temp_reweight"))
        rn = next(v for v in settings["variants"] if v.startswith("rationorm"))
        return pd.DataFrame([claims_row("C1", ["flowgrpo"], "reproduced", 1.0),
                             claims_row("C9", [rn, "flowgrpo"], "reproduced", 3.0),
                             claims_row("C5", [tr], "reproduced", 2.0),
                             claims_row("C10", [tr, "flowgrpo"], verdict_of(tr), -1.0),
                             claims_row("C10", [tr, "flowgrpo"], "not reproduced", 5.0)])
    return claims, seen


def test_a_point_takes_its_variants_place_in_the_settings():
    moved = point_settings(SETTINGS, "temp_reweight", "temp_reweight@lr=x3")
    assert moved["variants"] == ["flowgrpo", "temp_reweight@lr=x3", "rationorm", "grpo_guard"]
    assert moved["comparisons"]["ablation"][1] == "temp_reweight@lr=x3" and moved["baseline"] == "flowgrpo"
    assert point_settings(SETTINGS, "flowgrpo", "flowgrpo@lr=x3")["baseline"] == "flowgrpo@lr=x3"
    assert SETTINGS["variants"][1] == "temp_reweight"  # not changed


def test_a_verdict_that_changes_along_one_axis_names_that_axis(tmp_path):
    sweep = grid_sweep("temp_reweight", {"clip_eps": ["x0.25", "x1", "x4"], "lr": ["x0.333", "x1", "x3"]})
    claims, seen = fake_claims(lambda name: "not reproduced" if "lr=x3" in name else "reproduced")
    table = sensitivity_table(tmp_path, SETTINGS, sweep, claims=claims)
    assert len(seen) == 9 and seen.count(SETTINGS) == 1  # the default point with the settings unchanged
    both = {**sweep, **grid_sweep("rationorm", {"lr": ["x1", "x3"]})}
    claims, seen = fake_claims(lambda name: "reproduced")
    assert set(sensitivity_table(tmp_path, SETTINGS, both, claims=claims).swept) == {"temp_reweight", "rationorm"}
    assert len(seen) == 9 + 1 and seen.count(SETTINGS) == 1  # one claims table of the default for both variants
    claims, seen = fake_claims(lambda name: "not reproduced" if "lr=x3" in name else "reproduced")
    table = sensitivity_table(tmp_path, SETTINGS, sweep, claims=claims)
    # rows naming the point only (C1 does not), per point; the point's name replaced by the variant's
    assert sorted(table.drop_duplicates(["id", "row"]).apply(lambda r: f"{r.id}/{r.row}", axis=1)) == ["C10/0", "C10/1", "C5/0"]
    assert len(table) == 9 * 3 and set(table.variants) == {"temp_reweight", "temp_reweight, flowgrpo"}
    assert set(table.check) == {"temp_reweight: a check"}
    first = table[(table.id == "C10") & (table.row == 0)]
    assert first.summary.iloc[0] == "depends on lr: reproduced at lr=x0.333, x1; not reproduced at lr=x3"
    assert table[(table.id == "C10") & (table.row == 1)].summary.iloc[0] == "fails across the sweep"
    assert table[table.id == "C5"].summary.iloc[0] == "holds across the sweep"
    assert list(first[first.default].point) == ["temp_reweight"] and list(first[first.default].verdict) == ["reproduced"]
    write_sensitivity(table, sweep, tmp_path / "tables", tmp_path / "figures" / "claims_sensitivity.png")
    text = (tmp_path / "tables" / "claims_sensitivity.md").read_text()
    assert "**depends on lr: reproduced at lr=x0.333, x1; not reproduced at lr=x3**" in text
    assert "* reproduced: -1 [-2, 0]" in text  # the default cell, marked
    assert (tmp_path / "figures" / "claims_sensitivity.png").stat().st_size > 5000
    back = pd.read_csv(tmp_path / "tables" / "claims_sensitivity.csv")
    assert len(back) == 27 and {"clip_eps", "lr", "verdict", "mean", "ci95_low", "ci95_high"} <= set(back.columns)


def test_the_summary_of_a_claim_row_over_the_grid():
    grid = pd.DataFrame({"a": ["x1", "x1", "x2", "x2"], "b": ["x1", "x3", "x1", "x3"]})
    with_verdicts = lambda *v: grid.assign(verdict=list(v))  # noqa: E731
    assert summary(with_verdicts(*["inconclusive"] * 4), ["a", "b"]) == "inconclusive across the sweep"
    assert summary(with_verdicts("reproduced", "reproduced", "inconclusive", "inconclusive"),
                   ["a", "b"]) == "depends on a: reproduced at a=x1; inconclusive at a=x2"
    assert summary(with_verdicts("reproduced", "not reproduced", "reproduced", "not reproduced"),
                   ["a", "b"]) == "depends on b: reproduced at b=x1; not reproduced at b=x3"
    assert summary(with_verdicts("reproduced", "reproduced", "reproduced", "not reproduced"),
                   ["a", "b"]) == "mixed: reproduced at 3 of 4 points; not reproduced at 1 of 4 points"
    assert summary(with_verdicts("reproduced", None, "reproduced", None), ["a", "b"]) == (
        "depends on b: reproduced at b=x1; not tested at b=x3")  # a point without the row: not tested
