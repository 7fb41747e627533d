"""The paper's claims as checks on one setting's run files: per-seed values, a 95% interval and a verdict.

Each claim C1..C12 is a function of an ``analysis.evidence.Setting`` returning rows (one per variant or pair it
concerns), grouped by what they measure: the ratio and gradient per denoising step (analysis.claims_steps,
C1-C5), proxy and gold outcomes (analysis.claims_outcomes, C6-C8, C11, C12) and timing (analysis.claims_timing,
C9, C10). A row quotes the paper (``claim``), says what is measured and the band in which the claim holds
(``check``), lists the per-seed values, their mean and 95% interval, what the interval covers (``covers``,
``units``: seeds, the evaluation images or blocks of iterations inside each run; analysis.resample) and the
verdict; a claim whose inputs the setting lacks is ``not tested`` with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from analysis.claims_outcomes import (c6_baseline_hacking, c7_guard_at_matched_proxy, c8_mean_revised, c11_main_table,
                                      c12_public_presets)
from analysis.claims_steps import (c1_baseline_shift, c2_predicted_shift, c3_clip_asymmetry, c4_normalised,
                                   c5_gradient_spread)
from analysis.claims_timing import c9_rationorm_slower, c10_temp_reweight
from analysis.evidence import COLUMNS, Setting

CLAIMS = [c1_baseline_shift, c2_predicted_shift, c3_clip_asymmetry, c4_normalised, c5_gradient_spread,
          c6_baseline_hacking, c7_guard_at_matched_proxy, c8_mean_revised, c9_rationorm_slower, c10_temp_reweight,
          c11_main_table, c12_public_presets]


def claims_of(s: Setting) -> pd.DataFrame:
    """Every claim's rows for one setting's frames."""
    return pd.DataFrame([r for claim in CLAIMS for r in claim(s)], columns=COLUMNS)


def claims_table(root: Path, settings: dict[str, Any], seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Every claim's rows for one setting (its runs of ``seeds`` only, where given)."""
    return claims_of(Setting.read(root, settings, seeds))


def formatted(claims: pd.DataFrame) -> pd.DataFrame:
    """The table for reading: verdict first, the paper's words once per claim ('"' below), 'mean [95% interval]',
    what the interval covers, P(X > Y) where a pair is compared, per-seed values and where each row comes from."""
    def value(r: pd.Series) -> str:
        if not math.isfinite(r["mean"]):
            return ""
        ci = f" [{r.ci95_low:.3g}, {r.ci95_high:.3g}]" if math.isfinite(r.ci95_low) else ""
        return f"{r['mean']:.3g}{ci}"

    def improvement(r: pd.Series) -> str:
        if not math.isfinite(r.p_improvement):
            return ""
        ci = f" [{r.p_improvement_low:.2f}, {r.p_improvement_high:.2f}]" if math.isfinite(r.p_improvement_low) else ""
        return f"{r.p_improvement:.2f}{ci}"

    text = ["claim", "check", "variants", "per_seed", "reason", "covers", "units", "paper", "source"]
    claims = claims.assign(**{c: claims[c].fillna("").astype(str) for c in text})  # a CSV read back has NaN for ''
    verdict = [v + (f" ({r})" if r else "") + (f"; about {int(n)} seeds would decide" if pd.notna(n) else "")
               for v, r, n in zip(claims.verdict, claims.reason, claims.seeds_needed)]
    keys = [c for c in ("backbone", "task") if c in claims]
    repeated = claims.duplicated(subset=[*keys, "id", "claim"])
    covers = [f"{c} ({u})" if u else c for c, u in zip(claims.covers, claims.units)]
    return pd.DataFrame({**{k: claims[k] for k in keys}, "id": claims.id, "verdict": verdict,
                         "claim (paper)": claims.claim.where(~repeated, '"'), "check (holds inside the stated band)": claims.check,
                         "variants": claims.variants, "mean [95% interval]": [value(r) for _, r in claims.iterrows()],
                         "interval covers": covers, "P(X > Y) [95%]": [improvement(r) for _, r in claims.iterrows()],
                         "per seed": claims.per_seed, "paper": claims.paper, "from": claims.source})


CAPTION = ("The paper's claims as checks. Each row: the paper's words, what is measured and the band in which the claim "
           "holds, the per-seed values, their mean and 95% interval, and what the interval covers. Inside each run the "
           "evaluation images are resampled (outcome and timing checks: by prompt where a set has at least 30 prompts, "
           "else by image within prompt; paired across variants, which share prompts and noise) or blocks of iterations "
           "(step checks: stationary bootstrap, Politis-White block length); with several seeds, seeds and then each "
           "seed's resamples are drawn (a two-stage bootstrap), the interval never narrower than the t-interval over "
           "seeds; with one seed the interval covers that run's evaluation or iteration noise only, not training noise. "
           "A resampled interval always holds the value itself. "
           "Verdict: interval inside the band = reproduced, outside = not reproduced, across an edge = inconclusive (with "
           "the seeds a decisive verdict would need at the measured spread over seeds); not tested = inputs missing. "
           "A strict check (< or >) excludes its edge. P(X > Y): rliable's probability of improvement over seeds of the "
           "first variant over the second (with one seed: the share of resamples in which it is higher).")


def write_claims(claims: pd.DataFrame, stem: Path) -> None:
    """``stem``.csv (raw values), .md and .tex (formatted)."""
    claims.to_csv(f"{stem}.csv", index=False)
    table = formatted(claims)
    with open(f"{stem}.md", "w") as f:
        f.write(f"{CAPTION}\n\n{table.to_markdown(index=False)}\n")
    with open(f"{stem}.tex", "w") as f:
        f.write(table.to_latex(index=False, caption=CAPTION, escape=True, longtable=True))
