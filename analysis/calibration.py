"""How far a one-seed verdict can be trusted: each seed's within-run verdict against the verdict of all seeds.

For every check of the claims table, the setting's runs are cut down to one seed at a time and judged from
that run alone (its interval covers evaluation or iteration noise only); the verdict from all seeds (seeds x
units) is the reference. Per check: how often a single seed agrees where all seeds decide, how often it
contradicts them (reproduced where all seeds say not reproduced, or the reverse), how often it decides where
all seeds are inconclusive, and the ratio of the one-seed interval's width to the spread between seeds
(the width of the central 95% of the seeds' values, 2 x 1.96 x their sd): below 1, a one-seed interval is too
narrow to cover training noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.claims import claims_of
from analysis.evidence import Setting
from analysis.runs import run_folders
from analysis.stats import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED

DECISIVE = (REPRODUCED, NOT_REPRODUCED)


def keyed(table: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed by (id, variants, n-th row of that pair): check texts may quote numbers that depend on the seeds."""
    return table.assign(nth=table.groupby(["id", "variants"]).cumcount()).set_index(["id", "variants", "nth"])


def one_seed_tables(root: Path, settings: dict[str, Any]) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    """The claims table of all seeds and of each seed alone."""
    seeds = sorted({seed for _, seed, _ in run_folders(root)})
    return keyed(claims_of(Setting.read(root, settings))), \
        {seed: keyed(claims_of(Setting.read(root, settings, [seed]))) for seed in seeds}


def calibration(full: pd.DataFrame, single: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Per check: agreement of the one-seed verdicts with the all-seeds verdict, and the width ratio."""
    rows = []
    for key, ref in full.iterrows():
        if ref.verdict == NOT_TESTED:
            continue
        present = [t.loc[key] for t in single.values() if key in t.index]
        verdicts = [r.verdict for r in present]
        widths = [r.ci95_high - r.ci95_low for r in present]
        values = [r["mean"] for r in present]
        spread = 2 * 1.96 * float(np.nanstd(values, ddof=1)) if len(values) > 1 else np.nan
        decisive = [v for v in verdicts if v in DECISIVE]
        counts = pd.Series(verdicts).value_counts()
        rows.append({"id": key[0], "variants": key[1], "check": ref.check, "all seeds": ref.verdict,
                     "seeds": len(verdicts),
                     "one-seed verdicts": ", ".join(f"{v} {int(counts.get(v, 0))}" for v in (*DECISIVE, INCONCLUSIVE)
                                                    if counts.get(v, 0)),
                     "agree": sum(v == ref.verdict for v in verdicts) if ref.verdict in DECISIVE else np.nan,
                     "contradict": sum(v in DECISIVE and v != ref.verdict for v in verdicts) if ref.verdict in DECISIVE
                     else np.nan,
                     "decisive where all seeds are not": len(decisive) if ref.verdict == INCONCLUSIVE else np.nan,
                     "one-seed width / seed spread": float(np.nanmedian(widths)) / spread if spread > 0 else np.nan})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """Totals over the checks: one-seed verdicts that agree / contradict where all seeds decide, decide where
    they do not, and the median width ratio."""
    decided = table.dropna(subset=["agree"])
    open_ = table.dropna(subset=["decisive where all seeds are not"])
    return {"checks": len(table), "one-seed verdicts where all seeds decide": int(decided.seeds.sum()),
            "agree": int(decided.agree.sum()), "contradict": int(decided.contradict.sum()),
            "one-seed verdicts where all seeds are inconclusive": int(open_.seeds.sum()),
            "decisive there": int(open_["decisive where all seeds are not"].sum()),
            "median width ratio": float(table["one-seed width / seed spread"].median())}


def write_calibration(root: Path, settings: dict[str, Any], out: Path) -> pd.DataFrame:
    """calibration.{csv,md} of one setting under ``out``."""
    table = calibration(*one_seed_tables(root, settings))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "calibration.csv", index=False)
    totals = summary(table)
    with open(out / "calibration.md", "w") as f:
        f.write(f"{__doc__.strip()}\n\nTotals: {totals}\n\n{table.to_markdown(index=False, floatfmt='.3g')}\n")
    return table
