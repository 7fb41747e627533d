"""Tables, figures and the summary table of an experiment.

python -m analysis tables  --runs results/<exp>/<backbone>/<task> --settings analysis.yaml --out DIR
python -m analysis figures --runs results/<exp>/<backbone>/<task> --settings analysis.yaml --out DIR
python -m analysis claims  --runs results/<exp>/<backbone>/<task> --settings analysis.yaml --out DIR [--seeds N ..]
python -m analysis calibration --runs results/<exp>/<backbone>/<task> --settings analysis.yaml --out DIR
    (each seed's one-seed verdicts against the verdicts of all seeds)
python -m analysis sensitivity --runs results/<exp>/<backbone>/<task> --settings analysis.yaml --sweep sweep.yaml
    --out DIR --figure FILE.png   (the claims of each swept variant at every sweep point; analysis/sensitivity.py)
python -m analysis summary --tables results/<exp>/*/*/tables/main_raw.csv --out DIR
python -m analysis claims_summary --tables results/<exp>/*/*/tables/claims.csv --out DIR
python -m analysis forest  --claims results/<exp>/<backbone>/<task>/tables/claims.csv --out FILE.png
python -m analysis readme  --tables results/nano/tables/claims.md --out README.md   (quote it between the markers)
python -m analysis histograms --runs results/<exp>/<backbone>/<task> [--variants V ..] [--seeds N ..]
    [--iterations N ..] [--steps K ..] [--form raw|normalised|used] [--sharex none|row|all] --out FILE.png|.pdf

``analysis.yaml`` (written by the workflow): gold metric names, the baseline / normalised pair of
the histograms, the ablation rows and the setting's variants. ``histograms`` reads each run's
config.yaml and logratios.jsonl itself (analysis/histograms.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis import claims as claim_checks
from analysis.evidence import faithful_variants, first_configs
from analysis import figures
from analysis.calibration import summary as summary_of_calibration
from analysis.calibration import write_calibration
from analysis.forest import forest_plot, read_claims
from analysis.histograms import FORMS, NotRecordedError, histogram_figure, load_samples, write_figure
from analysis.runs import read_runs, run_folders
from analysis.sensitivity import sensitivity_table, write_sensitivity
from analysis.tables import (PAPER_MAIN, base_metrics, beside_paper, final_rows, formatted, matched_proxy,
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
    """The main table from the scored evaluation images: proxy, gold and Average(gold) per variant, and the base row."""
    out.mkdir(parents=True, exist_ok=True)
    gold = settings["gold"]
    summary = Path("scores") / "summary.jsonl"
    if not (runs / "base" / summary).is_file():
        raise FileNotFoundError(f"{runs / 'base' / summary} is missing; run the sample_base and score rules")
    base = pd.read_json(runs / "base" / summary, lines=True).iloc[0].to_dict()
    breakdown = [k for k in base if k != "proxy" and k not in gold]  # e.g. GenEval's accuracy per tag
    columns = ["proxy", *breakdown, *gold, "avg_gold"]
    scored = with_average_gold(read_runs(runs, str(summary), settings["variants"]), base, gold)
    final = summarise(scored, columns).reindex([v for v in settings["variants"] if v in set(scored.variant)])
    base_row = pd.DataFrame({"seeds": [0], **{c: [base.get(c, 1.0)] for c in columns}}, index=["base"])
    main = pd.concat([base_row.assign(**{f"{c}_std": 0.0 for c in columns}), final])
    main.join(paper_keys(runs, settings)).to_csv(out / "main_raw.csv")
    write_table(formatted(main, columns), str(out / "main"),
                "Final evaluation (last checkpoint, EMA weights, fixed-seed images scored by the score rule): proxy "
                "(and its breakdown, e.g. GenEval's accuracy per tag), gold metrics and Average(gold) vs the base "
                "model; mean ± std over seeds.")


def paper_keys(runs: Path, settings: dict[str, Any]) -> pd.DataFrame:
    """Per row of the main table, what matches it to the paper's: the method of a paper-faithful variant (a
    public-script preset gets none), the backbone's name and the task's reward, from the runs' own configs."""
    configs = first_configs(runs, settings["variants"])
    faithful = set(faithful_variants(configs).values())
    keys = {v: (c["variant"] if v in faithful else "", c["backbone"]["name"], c["task"]["reward"])
            for v, c in configs.items()}
    first = next(iter(keys.values()), ("", "", ""))
    keys["base"] = ("base", first[1], first[2])
    return pd.DataFrame.from_dict(keys, orient="index", columns=["method", "backbone_name", "reward"])


def claims(runs: Path, settings: dict[str, Any], out: Path, seeds: list[int] | None = None) -> None:
    """The paper's claims C1..C12 as checks on this setting's runs (of ``seeds``, all if None): claims.{csv,md,tex}."""
    out.mkdir(parents=True, exist_ok=True)
    claim_checks.write_claims(claim_checks.claims_table(runs, settings, seeds), out / "claims")


def claims_summary(tables: list[Path], out: Path) -> None:
    """Every setting's claims table in one, rows keyed by backbone and task."""
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for path in tables:
        setting = path.parent.parent  # results/<exp>/<backbone>/<task>/tables/claims.csv
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        frames.append(frame.assign(backbone=setting.parent.name, task=setting.name))
    table = pd.concat(frames, ignore_index=True)
    claim_checks.write_claims(table[["backbone", "task", *claim_checks.COLUMNS]], out / "claims")


README_BEGIN = "<!-- claims table: BEGIN (python -m analysis readme writes it; do not edit by hand) -->"
README_END = "<!-- claims table: END -->"


def readme(table: Path, out: Path) -> None:
    """Quote a claims.md between README_BEGIN and README_END of ``out``."""
    text = out.read_text()
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(f"{out} needs exactly one line {README_BEGIN!r} and one {README_END!r} around the claims table")
    head, rest = text.split(README_BEGIN)
    tail = rest.split(README_END)[1]
    out.write_text(f"{head}{README_BEGIN}\n{table.read_text().strip()}\n{README_END}{tail}")


def comparison(runs: Path, settings: dict[str, Any], name: str, out: Path) -> None:
    """Final proxy and Average(gold), and Average(gold) at proxy levels every compared variant reaches."""
    out.mkdir(parents=True, exist_ok=True)
    evals, base, gold = load(runs, settings)
    variants = settings["comparisons"][name]
    evals = evals[evals.variant.isin(variants)]
    final = summarise(final_rows(evals), ["proxy", *gold, "avg_gold"]).reindex([v for v in variants if v in set(evals.variant)])
    stem = out / name
    matched = matched_proxy(evals, gold, base)
    matched.to_csv(f"{stem}_matched_runs.csv", index=False)
    table = final[["seeds", "proxy", "avg_gold", "proxy_std", "avg_gold_std"]]
    cells = formatted(table, ["proxy", "avg_gold"])
    for (f, level), part in matched.groupby(["fraction", "proxy_level"]):
        stats = part.groupby("variant").avg_gold.agg(["mean", lambda x: x.std(ddof=0), "size"]).reindex(final.index)
        stats.columns = ["mean", "std", "runs"]
        table = table.assign(**{f"avg_gold_at_{f:g}": stats["mean"], f"avg_gold_at_{f:g}_std": stats["std"],
                                f"proxy_level_{f:g}": level, f"runs_at_{f:g}": stats["runs"]})
        cells[f"avg_gold @ proxy {level:.3f}"] = [
            "not reached" if pd.isna(m) else f"{m:.3f} ± {s:.3f} ({n:.0f} runs)"
            for m, s, n in zip(stats["mean"], stats["std"], stats["runs"])]
    table.to_csv(f"{stem}_raw.csv")
    write_table(cells, str(stem), "Final proxy and Average(gold), and Average(gold) where each run's proxy first reaches "
                "the same levels (matched proxy: fractions of the way from the base to the best proxy every compared "
                "variant reaches on average).")


def step_diagnostics(runs: Path, settings: dict[str, Any], out: Path) -> None:
    """Per variant and denoising step, the off-policy ratio diagnostics, with the predicted shift -b."""
    steps = read_runs(runs, "steps.jsonl", settings["variants"])
    diag = figures.off_policy(steps).groupby(["variant", "step"])[STEP_COLUMNS].mean()
    diag["shift_over_std"] = diag.log_ratio_mean / diag.log_ratio_std
    diag["predicted_mean"] = -diag.bias_mean
    diag.to_csv(out / "step_diagnostics.csv")
    spread = diag.groupby("variant").step_grad_norm.agg(lambda g: g.max() / g.min() if g.notna().any() else float("nan"))
    spread.rename("grad_norm_max_over_min").to_csv(out / "grad_norm_spread.csv")


def make_figures(runs: Path, settings: dict[str, Any], out: Path) -> None:
    """Every diagnostic figure of the paper but the per-iteration histograms (``histograms``), for this experiment."""
    out.mkdir(parents=True, exist_ok=True)
    evals, base, gold = load(runs, settings)
    steps = read_runs(runs, "steps.jsonl", settings["variants"])
    figures.per_step_lines(steps, [("log_ratio_mean", "raw log-ratio mean"), ("log_ratio_std", "raw log-ratio std"),
                                   ("norm_log_ratio_mean", "normalised mean"), ("norm_log_ratio_std", "normalised std")],
                           out / "logratio_per_step")
    figures.per_step_lines(steps, [("clip_pos_upper", "A>0: ratio above 1+eps"), ("clip_neg_lower", "A<0: ratio below 1-eps")],
                           out / "clip_fractions")
    figures.per_step_lines(steps, [("step_grad_norm", "gradient norm of each step's loss")], out / "grad_norm", spread=True)
    figures.training_curves(evals, ["proxy", *gold, "avg_gold"], out / "training_curves")
    figures.gold_vs_proxy(evals, matched_proxy(evals, gold, base), out / "gold_vs_proxy")
    first_seed = {}
    for variant, _, folder in run_folders(runs):  # sorted by seed within a variant
        if variant in settings["variants"]:
            first_seed.setdefault(variant, folder)
    figures.sample_grid_over_training(list(first_seed.items()), out / "samples_over_training")


def summary(tables: list[Path], out: Path) -> None:
    """One main table over every setting (rows keyed by backbone, task, variant) and the paper's table."""
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for path in tables:
        setting = path.parent.parent  # results/<exp>/<backbone>/<task>/tables/main_raw.csv
        frame = pd.read_csv(path, index_col=0).rename_axis("variant").reset_index()
        frames.append(frame.assign(backbone=setting.parent.name, task=setting.name))
    raw = pd.concat(frames, ignore_index=True).set_index(["backbone", "task", "variant"])
    # columns every setting has (a task's proxy breakdown, e.g. GenEval's tags, stays in its own table)
    columns = [c for c in raw.columns if c != "seeds" and not c.endswith("_std") and f"{c}_std" in raw.columns
               and raw[c].notna().all()]
    write_table(formatted(raw, columns), str(out / "main"),
                "Every setting: proxy, gold metrics and Average(gold) vs the backbone's base model; mean ± std over seeds.")
    beside = beside_paper(raw.reset_index())
    write_table(beside, str(out / "main_vs_paper"),
                "The rows of the paper's main table this experiment ran (matched by backbone, task and method): paper | "
                "measured (mean over seeds) | measured - paper, each on the paper's scale (UnifiedReward as the judge's 1-5 "
                "score: the measured /5 score times 5; Average(gold) unchanged)."
                + (" No setting of this experiment is in the paper's main table." if beside.empty else ""))
    paper = PAPER_MAIN.assign(avg_gold_recomputed=paper_average_gold().round(2))
    write_table(paper.set_index(["backbone", "method"]), str(out / "paper_main"),
                "The paper's main table with Average(gold) recomputed from its raw gold metrics.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["tables", "comparison", "figures", "claims", "summary", "claims_summary",
                                         "readme", "histograms", "forest", "calibration", "sensitivity"])
    parser.add_argument("--name", help="which entry of the settings' comparisons (comparison)")
    parser.add_argument("--runs", type=Path, help="results/<exp>/<backbone>/<task> holding <variant>/seed<n>/")
    parser.add_argument("--settings", type=Path, help="the setting's analysis.yaml")
    parser.add_argument("--tables", type=Path, nargs="+",
                        help="main_raw.csv (summary) or claims.csv (claims_summary) of every setting; claims.md (readme)")
    parser.add_argument("--claims", type=Path, help="a setting's claims.csv (forest)")
    parser.add_argument("--sweep", type=Path, help="the setting's sweep.yaml (sensitivity; written by the workflow)")
    parser.add_argument("--workers", type=int, default=1, help="processes computing the points' claims (sensitivity)")
    parser.add_argument("--figure", type=Path, help="the verdict map's PNG (sensitivity; default: <out>/claims_sensitivity.png)")
    parser.add_argument("--out", required=True, type=Path,
                        help="a folder; for histograms a .png or .pdf file (no suffix: both); for forest a .png; "
                             "for readme the README")
    histograms = parser.add_argument_group("histograms (one panel per step and per variant x iteration, seeds pooled)")
    histograms.add_argument("--variants", nargs="+", default=[], help="default: every variant with logratios.jsonl")
    histograms.add_argument("--seeds", nargs="+", type=int, default=[], help="default: every seed")
    histograms.add_argument("--iterations", nargs="+", type=int, default=[], help="default: every recorded one")
    histograms.add_argument("--steps", nargs="+", type=int, default=[], help="default: every trained step")
    histograms.add_argument("--form", choices=FORMS, default="used",
                            help="raw log r, normalised s (log r + b), or the log-ratio the variant clips (default)")
    histograms.add_argument("--sharex", choices=["none", "row", "all"], default="none",
                            help="x-axis per panel (default), shared along a row, or by all panels")
    args = parser.parse_args(argv)
    if args.what == "readme":
        readme(args.tables[0], args.out)
        return 0
    if args.what in ("summary", "claims_summary"):
        (summary if args.what == "summary" else claims_summary)(args.tables, args.out)
        return 0
    if args.what == "forest":
        if args.claims is None:
            parser.error("forest needs --claims")
        try:
            forest_plot(read_claims(args.claims), args.out)
        except ValueError as err:
            parser.exit(2, f"error: {err}\n")
        return 0
    if args.what == "histograms":
        if args.runs is None:
            parser.error("histograms needs --runs")
        try:
            samples = load_samples(args.runs, args.variants, args.seeds, args.iterations, args.steps)
        except NotRecordedError as err:
            parser.exit(2, f"error: {err}\n")
        fig, counts = histogram_figure(samples, args.form, args.sharex)
        write_figure(fig, args.out)
        print(counts.to_string(index=False, float_format="{:.3f}".format))
        return 0
    if args.runs is None or args.settings is None:
        parser.error(f"{args.what} needs --runs and --settings")
    settings = yaml.safe_load(args.settings.read_text())
    if args.what == "tables":
        tables(args.runs, settings, args.out)
        step_diagnostics(args.runs, settings, args.out)
    elif args.what == "claims":
        claims(args.runs, settings, args.out, args.seeds or None)
    elif args.what == "sensitivity":
        if args.sweep is None:
            parser.error("sensitivity needs --sweep")
        sweep = yaml.safe_load(args.sweep.read_text())
        table = sensitivity_table(args.runs, settings, sweep, args.seeds or None, workers=args.workers)
        write_sensitivity(table, sweep, args.out, args.figure or args.out / "claims_sensitivity.png")
        print(table.drop_duplicates(["swept", "id", "row"])[["swept", "id", "row", "summary"]].to_string(index=False))
    elif args.what == "calibration":
        totals = summary_of_calibration(write_calibration(args.runs, settings, args.out))
        print(totals)
    elif args.what == "comparison":
        comparison(args.runs, settings, args.name, args.out)
    else:
        make_figures(args.runs, settings, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
