"""C9, C10: when a variant reaches the matched proxy levels and when it collapses, recomputed on every resample
of the evaluation images (the crossing and collapse iterations move with the curves)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.claims_outcomes import SRC_CURVES, SRC_MATCHED, level_gap, missing, nanmean_where, per_seed
from analysis.evidence import Draws, Setting, Values, curves, row, untested

COLLAPSE = 0.5            # C10: a run has collapsed once Average(gold) falls below half the base model's


def iteration_gap(s: Setting, d: Draws, a: str, b: str) -> Values:
    """Per seed: iterations run ``a`` needs to reach the matched proxy levels minus run ``b``'s (mean over the
    levels both reach)."""
    ia, ib = level_gap(s, d, a, b, "iteration")
    return d.values({seed: nanmean_where(ia[seed] - ib[seed], ~np.isnan(ia[seed] - ib[seed])) for seed in ia})


C9 = "RatioNorm stops more but raises the proxy slightly slower"


def c9_rationorm_slower(s: Setting) -> list[dict[str, Any]]:
    """C9: iterations to reach each matched proxy level, RatioNorm minus baseline, mean over levels > 0."""
    d = curves(s)
    b, rn = s.baseline, s.role("rationorm")
    why = missing(s, d, [b, rn], ["baseline", "RatioNorm"])
    if why:
        return [untested("C9", C9, "iterations to reach the proxy levels", why, SRC_MATCHED)]
    return [row("C9", C9, "iterations to reach each matched proxy level, RatioNorm minus baseline, mean over levels > 0 "
                "('slightly' is not tested)", [rn, b], iteration_gap(s, d, rn, b), 0.0, math.inf, SRC_MATCHED, strict=True)]


C10 = "Temp-Reweight optimizes faster but collapses earlier"


def collapse_iteration(iterations: np.ndarray, avg_gold: np.ndarray) -> np.ndarray:
    """(D,) first evaluation iteration with Average(gold) < COLLAPSE; inf where the run never gets there."""
    below = avg_gold < COLLAPSE
    return np.where(below.any(axis=1), iterations[below.argmax(axis=1)].astype(float), math.inf)


def c10_temp_reweight(s: Setting) -> list[dict[str, Any]]:
    """C10: Temp-Reweight reaches the proxy levels in fewer iterations, and falls below COLLAPSE earlier, than the baseline."""
    d = curves(s)
    b, tr = s.baseline, s.role("temp_reweight")
    why = missing(s, d, [b, tr], ["baseline", "Temp-Reweight"])
    if why:
        return [untested("C10", C10, "Temp-Reweight speed and collapse", why, SRC_MATCHED)]
    cap = float(d.rows.iteration.max()) + 1  # a run that never collapses counts as collapsing after the last evaluation
    collapse = {v: per_seed(d, [b, tr], lambda seed, v=v: collapse_iteration(*d.run(v, seed, "avg_gold"))) for v in (b, tr)}
    seen = [seed for seed in collapse[b] if math.isfinite(collapse[b][seed][0]) or math.isfinite(collapse[tr][seed][0])]
    speed = row("C10", C10, "iterations to reach each matched proxy level, Temp-Reweight minus baseline, mean over "
                "levels < 0", [tr, b], iteration_gap(s, d, tr, b), -math.inf, 0.0, SRC_MATCHED, strict=True)
    check = (f"first evaluation with Average(gold) < {COLLAPSE:g}, Temp-Reweight minus baseline < 0 (a run that never "
             f"gets there counts as iteration {cap:g})")
    if not seen:
        return [speed, untested("C10", C10, check, f"neither run of any seed falls below Average(gold) {COLLAPSE:g}",
                                SRC_CURVES, [tr, b])]
    earlier = {seed: np.minimum(collapse[tr][seed], cap) - np.minimum(collapse[b][seed], cap) for seed in seen}
    return [speed, row("C10", C10, check, [tr, b], d.values(earlier), -math.inf, 0.0, SRC_CURVES, strict=True)]
