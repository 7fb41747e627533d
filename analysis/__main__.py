"""``python -m analysis {tables,figures} --runs results/<exp> --config <experiment.yaml> --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis import figures
from analysis.runs import read_runs, run_folders
from guard.config import config_from_dict, resolve_variant
from analysis.tables import (PAPER_GOLD, PAPER_MAIN, base_metrics, final_rows, formatted, matched_proxy,
                             paper_average_gold, summarise, with_average_gold, write_table)

STEP_COLUMNS = ["log_ratio_mean", "log_ratio_std", "bias_mean", "norm_log_ratio_mean", "norm_log_ratio_std",
                "policy_shift_u", "clip_pos_upper", "clip_pos_lower", "clip_neg_lower", "clip_neg_upper",
                "step_grad_norm"]


def load(runs: Path, settings: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """Evaluation rows of every run with avg_gold, the base metrics and the gold metric names."""
    gold = settings["gold"]
    evals = read_runs(runs, "eval.jsonl", settings["variants"])
    base = base_metrics(evals, gold)
    return with_average_gold(evals, base, gold), base, gold


def tables(runs: Path, settings: dict[str, Any], out: Path) -> None:
    """Main, ablation, matched-proxy, per-step diagnostics and the paper's table."""
    out.mkdir(parents=True, exist_ok=True)
    evals, base, gold = load(runs, settings)
    columns = ["proxy", *gold, "avg_gold"]
    final = summarise(final_rows(evals), columns)
    base_row = pd.DataFrame({"seeds": [0], **{c: [base.get(c, 1.0)] for c in columns}}, index=["base"])
    main = pd.concat([base_row.assign(**{f"{c}_std": 0.0 for c in columns}), final])
    main.to_csv(out / "main_raw.csv")
    write_table(formatted(main, columns), str(out / "main"),
                "Final evaluation (EMA weights, fixed seeds): proxy, gold metrics and Average(gold) vs the base model; mean ± std over seeds.")
    matched = matched_proxy(evals, gold, base)
    matched.to_csv(out / "matched_proxy_runs.csv", index=False)
    present = [v for v in settings.get("ablation", list(final.index)) if v in final.index]
    abl = final.loc[present, ["seeds", "proxy", "avg_gold", "proxy_std", "avg_gold_std"]]
    cells = formatted(abl, ["proxy", "avg_gold"])
    for (f, level), part in matched.groupby(["fraction", "proxy_level"]):
        stats = part.groupby("variant").avg_gold.agg(["mean", lambda x: x.std(ddof=0), "size"]).reindex(present)
        stats.columns = ["mean", "std", "runs"]
        abl = abl.assign(**{f"avg_gold_at_{f:g}": stats["mean"], f"avg_gold_at_{f:g}_std": stats["std"],
                            f"runs_at_{f:g}": stats["runs"]})
        cells[f"avg_gold @ proxy {level:.3f}"] = [
            "not reached" if pd.isna(m) else f"{m:.3f} ± {s:.3f} ({n:.0f} runs)"
            for m, s, n in zip(stats["mean"], stats["std"], stats["runs"])]
    abl.to_csv(out / "ablation_raw.csv")
    write_table(cells, str(out / "ablation"),
                "Ablation: final proxy and Average(gold), and Average(gold) where each run's proxy first reaches the same levels (matched proxy).")
    steps = read_runs(runs, "steps.jsonl", settings["variants"])
    diag = figures.off_policy(steps).groupby(["variant", "step"])[STEP_COLUMNS].mean()
    diag["shift_over_std"] = diag.log_ratio_mean / diag.log_ratio_std
    diag["predicted_mean"] = -diag.bias_mean
    diag.to_csv(out / "step_diagnostics.csv")
    paper = PAPER_MAIN.assign(avg_gold_recomputed=paper_average_gold().round(2))
    write_table(paper.set_index(["backbone", "method"]), str(out / "paper_main"),
                "The paper's main table with Average(gold) recomputed from its raw gold metrics.")


def make_figures(runs: Path, settings: dict[str, Any], out: Path) -> None:
    """Every diagnostic figure of the paper, for this experiment."""
    out.mkdir(parents=True, exist_ok=True)
    evals, _, gold = load(runs, settings)
    steps = read_runs(runs, "steps.jsonl", settings["variants"])
    pair = [settings["baseline"], settings["normalised"]]
    hist = read_runs(runs, "logratios.jsonl", pair)
    figures.logratio_histograms(hist, *pair, {v: settings["clip"][v] for v in pair}, out / "logratio_histograms")
    figures.per_step_lines(steps, [("log_ratio_mean", "raw log-ratio mean"), ("log_ratio_std", "raw log-ratio std"),
                                   ("norm_log_ratio_mean", "normalised mean"), ("norm_log_ratio_std", "normalised std")],
                           out / "logratio_per_step")
    figures.per_step_lines(steps, [("clip_pos_upper", "A>0: ratio above 1+eps"), ("clip_neg_lower", "A<0: ratio below 1-eps")],
                           out / "clip_fractions")
    figures.per_step_lines(steps, [("step_grad_norm", "gradient norm of each step's loss")], out / "grad_norm", spread=True)
    figures.training_curves(evals, ["proxy", *gold, "avg_gold"], out / "training_curves")
    figures.gold_vs_proxy(evals, matched_proxy(evals, gold, base_metrics(evals, gold)), out / "gold_vs_proxy")
    first_seed = {}
    for variant, _, folder in run_folders(runs):  # sorted by seed within a variant
        if variant in settings["variants"]:
            first_seed.setdefault(variant, folder)
    figures.sample_grid_over_training(list(first_seed.items()), out / "samples_over_training")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["tables", "figures"])
    parser.add_argument("--runs", required=True, type=Path, help="results/<experiment> holding <variant>/seed<n>/")
    parser.add_argument("--config", required=True, type=Path, help="the experiment YAML (its 'analysis' section)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    experiment = yaml.safe_load(args.config.read_text())
    resolved = {v: resolve_variant(experiment, v) for v in experiment["variants"]}
    settings = {**experiment["analysis"], "variants": list(resolved),
                "clip": {v: config_from_dict(c).clip_eps for v, c in resolved.items()}}
    (tables if args.what == "tables" else make_figures)(args.runs, settings, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
