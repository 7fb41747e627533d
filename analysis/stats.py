"""A claim's verdict from per-seed values: 95% t-interval over seeds against the claim's accepted band.

With n seeds of mean m and sample std sd, the interval is m +- t_{0.975, n-1} sd / sqrt(n) (Student t,
seeds treated as independent draws). A claim holds where its values lie in a band [lo, hi] (one side
may be infinite: a one-sided claim such as "z < 2.77" has no lower edge, so a t-interval of a non-negative
quantity reaching below 0 does not make it inconclusive): the interval inside the band is ``reproduced``,
outside it ``not reproduced``, across an edge ``inconclusive``. A strict check ("< 0", "> 0") excludes its
edges: seeds that all tie on the edge (an iteration gap of 0) fail it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy import stats

LEVEL = 0.95
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED = "reproduced", "not reproduced", "inconclusive", "not tested"


def t_quantile(n: int, level: float = LEVEL) -> float:
    """t_{(1 + level)/2, n - 1}."""
    return float(stats.t.ppf((1 + level) / 2, n - 1))


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """m +- t_{(1+level)/2, n-1} sd / sqrt(n), sd with n - 1 in the denominator."""
    n, m = len(values), float(np.mean(values))
    half = t_quantile(n, level) * float(np.std(values, ddof=1)) / math.sqrt(n)
    return m - half, m + half


def seeds_needed(mean: float, sd: float, lo: float, hi: float, level: float = LEVEL, most: int = 1000) -> int | None:
    """Smallest n with t_{n-1} sd / sqrt(n) below the distance from the mean to the nearest band edge
    (the spread and mean assumed to stay as measured); None where the mean sits on an edge, the band has no
    finite edge or sd is 0."""
    edges = [abs(mean - e) for e in (lo, hi) if math.isfinite(e)]
    if not edges or sd == 0 or min(edges) == 0:
        return None
    return next((n for n in range(2, most + 1) if t_quantile(n, level) * sd / math.sqrt(n) < min(edges)), None)


def band_verdict(low: float, high: float, lo: float, hi: float, strict: bool = False) -> str:
    """The interval [low, high] inside the band [lo, hi] ((lo, hi) if ``strict``): reproduced; outside: not
    reproduced; across an edge: inconclusive."""
    inside = lo < low and high < hi if strict else lo <= low and high <= hi
    outside = high <= lo or low >= hi if strict else high < lo or low > hi
    return REPRODUCED if inside else NOT_REPRODUCED if outside else INCONCLUSIVE


@dataclass(frozen=True)
class Verdict:
    seeds: int
    mean: float
    low: float
    high: float
    verdict: str
    reason: str = ""
    seeds_needed: int | None = None


def judge(per_seed: Mapping[int, float], lo: float = -math.inf, hi: float = math.inf, strict: bool = False) -> Verdict:
    """Verdict of per-seed values against the band [lo, hi], or (lo, hi) if ``strict``; non-finite values are dropped."""
    values = np.array([v for v in per_seed.values() if v is not None and math.isfinite(v)], dtype=float)
    if len(values) == 0:
        return Verdict(0, math.nan, math.nan, math.nan, NOT_TESTED, "no seed has this value")
    mean = float(values.mean())
    if len(values) == 1:
        return Verdict(1, mean, math.nan, math.nan, NOT_TESTED, "one seed: no interval over seeds")
    low, high = t_interval(values)
    verdict = band_verdict(low, high, lo, hi, strict)
    needed = seeds_needed(mean, float(np.std(values, ddof=1)), lo, hi) if verdict == INCONCLUSIVE else None
    return Verdict(len(values), mean, low, high, verdict, "", needed)
