"""Resamples inside a run and over seeds: the draws behind every claim's interval.

- Evaluation units (outcome and timing claims): images of a fixed-noise evaluation set. With at least
  ``MIN_PROMPTS`` prompts the prompts are resampled (each drawn prompt brings all its images); with fewer,
  the images are resampled within each prompt (stratified). Every variant and seed is scored on the same
  prompts and noise, so one draw is applied to all runs: comparisons between variants are paired.
- Iterations (step-diagnostic claims): consecutive iterations are autocorrelated, so blocks of them are
  resampled with the stationary bootstrap (Politis & Romano 1994, ``arch``), whose mean block length is
  Politis & White's (2004) automatic choice for the run's series (``arch.bootstrap.optimal_block_length``).
- Seeds: with two or more seeds, a two-stage bootstrap draws seeds with replacement and then one within-run
  resample of each drawn seed; the interval is never narrower than the t-interval over the seeds' values.

Draw 0 of every draw array is the data itself (all weights 1), so one computation gives the value and its
resamples. All draws come from ``SEED`` and the data's shape: a table is reproducible to the digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from analysis.stats import LEVEL, t_interval

DRAWS = 400
"""Resamples per interval."""
SEED = 20260530
"""Resampling seed: the same draws for the same data."""
MIN_PROMPTS = 30
"""Evaluation sets with at least this many prompts are resampled by prompt, smaller ones by image within prompt."""


@dataclass(frozen=True)
class UnitDraws:
    """Weights of one evaluation set's images under each draw: prompt weight x image count within the prompt."""

    prompt_weight: np.ndarray
    """(D, P): how often each prompt is drawn (stratified: 1)."""
    image_count: np.ndarray
    """(D, N): how often each image is drawn within its prompt (by prompt: 1)."""
    prompt_of: np.ndarray
    """(N,): prompt index of each image."""
    covers: str
    """What is resampled, e.g. 'images within 9 prompts' or '553 prompts'."""

    @property
    def weight(self) -> np.ndarray:
        """(D, N): each image's weight in a set mean."""
        return self.prompt_weight[:, self.prompt_of] * self.image_count


def unit_draws(prompt_of: np.ndarray, draws: int = DRAWS, seed: int = SEED, min_prompts: int = MIN_PROMPTS) -> UnitDraws:
    """Draw 0 = the data, then ``draws`` resamples: of prompts (>= ``min_prompts``) or of images within each prompt."""
    rng = np.random.default_rng(seed)
    prompt_of = np.asarray(prompt_of)
    prompts, n = int(prompt_of.max()) + 1, len(prompt_of)
    weight, count = np.ones((draws + 1, prompts)), np.ones((draws + 1, n))
    if prompts >= min_prompts:
        weight[1:] = rng.multinomial(prompts, np.full(prompts, 1 / prompts), size=draws)
        return UnitDraws(weight, count, prompt_of, f"{prompts} prompts")
    for p in range(prompts):
        members = np.flatnonzero(prompt_of == p)
        count[1:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=draws)
    return UnitDraws(weight, count, prompt_of, f"images within {prompts} prompts")


def block_length(series: np.ndarray) -> float:
    """Politis-White mean block length of the stationary bootstrap for ``series`` (at least 1)."""
    from arch.bootstrap import optimal_block_length  # 1.2 s to import: only where iterations are resampled

    series = np.asarray(series, dtype=float)
    if len(series) < 8 or np.nanstd(series) == 0:
        return 1.0
    return max(1.0, float(optimal_block_length(series)["stationary"].iloc[0]))


def iteration_counts(series: np.ndarray, draws: int = DRAWS, seed: int = SEED) -> tuple[np.ndarray, float]:
    """(D, I) counts of each iteration under draw 0 (the data) and ``draws`` stationary-bootstrap resamples, and
    the mean block length used."""
    from arch.bootstrap import StationaryBootstrap

    n = len(series)
    length = block_length(series)
    counts = np.ones((draws + 1, n))
    bootstrap = StationaryBootstrap(length, np.arange(n), seed=np.random.default_rng(seed))
    for d, (data, _) in enumerate(bootstrap.bootstrap(draws), start=1):
        counts[d] = np.bincount(data[0], minlength=n)
    return counts, length


def percentile(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of the finite values."""
    values = values[np.isfinite(values)]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def two_stage(replicates: np.ndarray, draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """Means of ``draws`` two-stage resamples of (seeds, within-run replicates): seeds drawn with replacement,
    then one replicate of each drawn seed."""
    rng = np.random.default_rng(seed)
    n, b = replicates.shape
    seeds = rng.integers(n, size=(draws, n))
    pick = rng.integers(b, size=(draws, n))
    return np.nanmean(replicates[seeds, pick], axis=1)


def interval(values: np.ndarray, replicates: np.ndarray | None, level: float = LEVEL) -> tuple[float, float]:
    """95% interval of the mean over seeds. ``values``: (n,) per-seed values; ``replicates``: (n, B) within-run
    resamples or None. One seed: the within-run percentile interval; several without replicates: the t-interval;
    several with: the two-stage percentile interval, widened to the t-interval where that is wider. A resampled
    interval always holds the value itself (the resamples of a maximum over steps sit above it: a percentile
    interval alone would exclude it)."""
    if replicates is None:
        return t_interval(values, level) if len(values) > 1 else (math.nan, math.nan)
    mean = float(np.mean(values))
    if len(values) == 1:
        low, high = percentile(replicates[0], level)
        return min(low, mean), max(high, mean)
    low, high = percentile(two_stage(replicates), level)
    t_low, t_high = t_interval(values, level)
    return min(low, t_low, mean), max(high, t_high, mean)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + P(X = Y) / 2 over all pairs of a value of x and one of y (rliable's; Mann-Whitney U / (n m))."""
    x, y = np.asarray(x, dtype=float)[:, None], np.asarray(y, dtype=float)[None, :]
    return float(((x > y) + 0.5 * (x == y)).mean())


def improvement_interval(x: np.ndarray, y: np.ndarray, draws: int = DRAWS, seed: int = SEED,
                         level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of P(X > Y) under two-stage resamples of (seeds, within-run replicates) of x and y
    ((n, B) each; the same replicate index for both, as one draw of the shared evaluation set)."""
    rng = np.random.default_rng(seed)
    n, b = x.shape
    pick_x, pick_y, draw = rng.integers(n, size=(draws, n)), rng.integers(n, size=(draws, n)), rng.integers(b, size=(draws, n))
    p = [probability_of_improvement(x[pick_x[i], draw[i]], y[pick_y[i], draw[i]]) for i in range(draws)]
    return percentile(np.asarray(p), level)
