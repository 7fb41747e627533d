"""Tables like the paper's: proxy and gold per method, Average(gold) relative to the base model.

Average(gold) = mean over gold metrics of (metric / base metric); a log-likelihood enters as
exp(metric - base) (eval.nano.relative_gold), which is the same ratio for per-dimension likelihoods.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from eval.nano import relative_gold

PAPER_GOLD = ("HPSv2", "ImageReward", "UnifiedReward")

# paper.md, main table: (backbone, method, step, task, proxy, HPSv2, ImageReward, UnifiedReward, Avg(gold))
PAPER_MAIN = pd.DataFrame(
    [
        ("SD3.5-M", "base", None, None, None, 0.293, 1.06, 3.31, 1.00),
        ("SD3.5-M", "flowgrpo", 1860, "GenEval", 0.94, 0.236, 0.85, 3.05, 0.84),
        ("SD3.5-M", "grpo_guard", 1860, "GenEval", 0.95, 0.254, 0.87, 3.22, 0.89),
        ("SD3.5-M", "flowgrpo", 480, "OCR", 0.94, 0.274, 0.82, 3.07, 0.88),
        ("SD3.5-M", "grpo_guard", 480, "OCR", 0.93, 0.286, 1.06, 3.29, 0.99),
        ("FLUX.1-dev", "base", None, None, None, 0.302, 1.01, 3.31, 1.00),
        ("FLUX.1-dev", "dancegrpo", 1260, "PickScore", 0.80, 0.269, 0.79, 3.18, 0.88),
        ("FLUX.1-dev", "grpo_guard", 1260, "PickScore", 0.81, 0.300, 1.08, 3.35, 1.02),
    ],
    columns=["backbone", "method", "step", "task", "proxy", *PAPER_GOLD, "avg_gold_printed"],
)


# Names of this harness (backbone.name, task.reward, gold metric) -> the paper's, and the paper's scale of a metric
PAPER_BACKBONE = {"sd35": "SD3.5-M", "flux": "FLUX.1-dev"}
PAPER_TASK = {"geneval": "GenEval", "ocr": "OCR", "pickscore": "PickScore"}
PAPER_METRIC = {"proxy": "proxy", "hpsv2": "HPSv2", "imagereward": "ImageReward", "unifiedreward": "UnifiedReward",
                "avg_gold": "avg_gold_printed"}
PAPER_SCALE = {"unifiedreward": 5.0}  # eval/unifiedreward.py returns the judge's 1-5 score / 5


def average_gold(metrics: Mapping[str, float], base: Mapping[str, float], names: Sequence[str]) -> float:
    """Average(gold) = mean_m relative(metric_m, base_m)."""
    return float(np.mean([relative_gold(n, metrics[n], base[n]) for n in names]))


def with_average_gold(rows: pd.DataFrame, base: Mapping[str, float], names: Sequence[str]) -> pd.DataFrame:
    """Add an ``avg_gold`` column to per-run rows."""
    return rows.assign(avg_gold=[average_gold(r, base, names) for r in rows[list(names)].to_dict("records")])


def paper_average_gold(table: pd.DataFrame = PAPER_MAIN) -> pd.Series:
    """Average(gold) of each paper row, relative to its backbone's base row."""
    bases = table[table.method == "base"].set_index("backbone")[list(PAPER_GOLD)]
    return table.apply(lambda r: average_gold(r, bases.loc[r.backbone], PAPER_GOLD), axis=1)


def beside_paper(rows: pd.DataFrame) -> pd.DataFrame:
    """paper | measured | measured - paper per metric, for main-table rows (columns method, backbone_name, reward,
    mean metrics) that are in the paper's main table; measured values on the paper's scale (PAPER_SCALE)."""
    paper_tasks = PAPER_MAIN.dropna(subset=["task"]).groupby("backbone").task.agg(set)
    cells = []
    for _, r in rows.iterrows():
        backbone, task = PAPER_BACKBONE.get(r.get("backbone_name")), PAPER_TASK.get(r.get("reward"))
        if backbone is None or task not in paper_tasks.get(backbone, set()):
            continue
        match = PAPER_MAIN[(PAPER_MAIN.backbone == backbone) & (PAPER_MAIN.method == r.get("method"))
                           & ((PAPER_MAIN.task == task) | (PAPER_MAIN.method == "base"))]
        if match.empty:
            continue
        paper = match.iloc[0]
        cell = {"backbone": r.backbone, "task": r.task, "variant": r.variant, "paper row": f"{backbone} {paper.method}"}
        for ours, theirs in PAPER_METRIC.items():
            measured = float(r[ours]) * PAPER_SCALE.get(ours, 1.0) if ours in r and pd.notna(r[ours]) else np.nan
            reference = float(paper[theirs])  # NaN where the paper gives none (the base model's proxy)
            name = "Avg(gold)" if ours == "avg_gold" else theirs
            cell.update({f"{name} paper": reference, f"{name} measured": measured, f"{name} diff": measured - reference})
        cells.append(cell)
    columns = ["backbone", "task", "variant", "paper row"] + [f"{n} {k}" for n in ("proxy", *PAPER_GOLD, "Avg(gold)")
                                                              for k in ("paper", "measured", "diff")]
    return pd.DataFrame(cells, columns=columns).set_index(["backbone", "task", "variant"])


def summarise(rows: pd.DataFrame, columns: Sequence[str], by: str = "variant") -> pd.DataFrame:
    """Mean and std over seeds of each column, per ``by``; columns '<c>' and '<c>_std'."""
    grouped = rows.groupby(by, sort=False)[list(columns)]
    mean, std = grouped.mean(), grouped.std(ddof=0).add_suffix("_std")
    out = pd.concat([mean, std], axis=1)
    out.insert(0, "seeds", grouped.size())
    return out


def formatted(summary: pd.DataFrame, columns: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """'mean ± std' strings for Markdown and LaTeX."""
    cells = {c: [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(summary[c], summary[f"{c}_std"])] for c in columns}
    return pd.DataFrame({"seeds": summary["seeds"], **cells}, index=summary.index)


def final_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every run."""
    last = evals.groupby(["variant", "seed"]).iteration.transform("max")
    return evals[evals.iteration == last].reset_index(drop=True)


def base_metrics(evals: pd.DataFrame, names: Sequence[str]) -> dict[str, float]:
    """Metrics of the base model: the iteration-0 evaluation (EMA = base weights, fixed seeds)."""
    first = evals[evals.iteration == 0]
    return {n: float(first[n].mean()) for n in ["proxy", *names]}


def matched_proxy(evals: pd.DataFrame, names: Sequence[str], base: Mapping[str, float], fractions=(0.25, 0.5, 0.75, 1.0)) -> pd.DataFrame:
    """Gold of each run where its proxy first reaches levels between the base and the proxy every variant reaches.

    Level = base + f (reachable - base), reachable = min over variants of the seed-mean best proxy;
    gold is linearly interpolated between the two evaluations around the crossing.
    """
    best = evals.groupby(["variant", "seed"]).proxy.max().groupby("variant").mean()
    reachable = float(best.min())
    rows = []
    for (variant, seed), run in evals.sort_values("iteration").groupby(["variant", "seed"]):
        proxy = run.proxy.to_numpy()
        for f in fractions:
            level = base["proxy"] + f * (reachable - base["proxy"])
            above = np.nonzero(proxy >= level)[0]
            if len(above) == 0 or above[0] == 0:
                continue
            i = above[0]
            w = (level - proxy[i - 1]) / (proxy[i] - proxy[i - 1])
            gold = {n: float((1 - w) * run[n].iloc[i - 1] + w * run[n].iloc[i]) for n in names}
            iteration = float((1 - w) * run.iteration.iloc[i - 1] + w * run.iteration.iloc[i])
            rows.append({"variant": variant, "seed": seed, "fraction": f, "proxy_level": level,
                         "iteration": iteration, **gold, "avg_gold": average_gold(gold, base, names)})
    columns = ["variant", "seed", "fraction", "proxy_level", "iteration", *names, "avg_gold"]
    return pd.DataFrame(rows, columns=columns)


def write_table(table: pd.DataFrame, stem: str, caption: str) -> None:
    """``stem``.csv, .md and .tex."""
    table.to_csv(f"{stem}.csv")
    with open(f"{stem}.md", "w") as f:
        f.write(f"{caption}\n\n{table.to_markdown()}\n")
    with open(f"{stem}.tex", "w") as f:
        f.write(table.to_latex(caption=caption, escape=True))
