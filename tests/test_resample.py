"""analysis.resample: coverage of its intervals on simulated data with a known truth, and its draws' bookkeeping.

Coverage tests count how often the 95% interval holds the true value over many independent simulated settings and
compare that count with the binomial distribution of a correct 95% interval: the acceptance region is the central
99.9% of Binomial(n, 0.95), fixed before looking at any result. ``pytest -s`` prints the measured coverages.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from analysis.resample import (improvement_interval, 
    DRAWS,
    MIN_PROMPTS,
    block_length,
    interval,
    iteration_counts,
    percentile,
    probability_of_improvement,
    two_stage,
    unit_draws,
)
from analysis.stats import t_interval

NOMINAL = 0.95
ACCEPT = 0.999
"""Central probability of the binomial acceptance region for a coverage count."""


def acceptance(n: int, p: float = NOMINAL, accept: float = ACCEPT) -> tuple[float, float]:
    """Central ``accept`` region of Binomial(n, p), as fractions of n."""
    tail = (1 - accept) / 2
    return float(stats.binom.ppf(tail, n, p)) / n, float(stats.binom.ppf(1 - tail, n, p)) / n


def covered(low: float, high: float, truth: float) -> bool:
    return low <= truth <= high


def paired_scores(rng: np.random.Generator, prompt_of: np.ndarray, delta: float, shift: np.ndarray | None = None,
                  interaction_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Scores (S, N) of variants A and B on one evaluation set for S settings. Both share each prompt's effect
    (sd 1, mean 0) and each image's noise (sd 0.5); B adds ``delta``, an optional per-setting ``shift`` (S,), an
    optional prompt-by-variant effect (sd ``interaction_sd``, mean 0 over the population of prompts), and its own
    small image noise whose sd differs between prompts. E[B - A] = delta (+ shift)."""
    settings, prompts = (1 if shift is None else len(shift)), int(prompt_of.max()) + 1
    prompt_effect = rng.normal(0.0, 1.0, (settings, prompts))
    a = 3.0 + prompt_effect[:, prompt_of] + rng.normal(0.0, 0.5, (settings, len(prompt_of)))
    noise_sd = rng.uniform(0.1, 0.4, prompts)[prompt_of]
    b = a + delta + rng.normal(0.0, 1.0, a.shape) * noise_sd
    if shift is not None:
        b += shift[:, None]
    if interaction_sd:
        b += rng.normal(0.0, interaction_sd, (settings, prompts))[:, prompt_of]
    return a, b


def draw_estimates(weight: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(S, D+1) weighted mean difference B - A of each setting under each draw (draw 0: the data)."""
    return (b - a) @ weight.T / weight.sum(axis=1)


def single_run_coverage(prompts: int, images: int, settings: int, delta: float, interaction_sd: float,
                        seed: int) -> float:
    rng = np.random.default_rng(seed)
    prompt_of = np.repeat(np.arange(prompts), images)
    weight = unit_draws(prompt_of).weight
    hits = 0
    for s in range(settings):
        a, b = paired_scores(rng, prompt_of, delta, interaction_sd=interaction_sd)
        estimates = draw_estimates(weight, a, b)[0]
        hits += covered(*interval(values=estimates[:1], replicates=estimates[None, 1:]), delta)
    return hits / settings


def test_coverage_one_seed_images_within_prompts():
    """9 prompts x 16 images (images resampled within each prompt): the paired difference's percentile interval
    covers the true mean difference about 95% of the time (percentile bootstraps with 16 images per prompt run
    slightly below nominal; the binomial region allows it)."""
    settings = 400
    coverage = single_run_coverage(prompts=9, images=16, settings=settings, delta=0.3, interaction_sd=0.0, seed=11)
    low, high = acceptance(settings)
    print(f"\ncoverage one seed, 9 prompts x 16 images (stratified), {settings} settings: {coverage:.3f} "
          f"(accept [{low:.3f}, {high:.3f}])")
    assert low <= coverage <= high


def test_coverage_one_seed_by_prompt():
    """553 prompts x 4 images (prompts resampled): the difference varies with the prompt (prompt-by-variant effect,
    mean 0 over prompts), so only resampling prompts covers the population mean difference."""
    settings = 300
    coverage = single_run_coverage(prompts=553, images=4, settings=settings, delta=-0.2, interaction_sd=0.3, seed=12)
    low, high = acceptance(settings)
    print(f"\ncoverage one seed, 553 prompts x 4 images (by prompt), {settings} settings: {coverage:.3f} "
          f"(accept [{low:.3f}, {high:.3f}])")
    assert low <= coverage <= high


@pytest.mark.parametrize("seed_sd", [0.05, 0.3])
def test_coverage_several_seeds(seed_sd):
    """3 seeds per setting, each with its own training effect on the difference (sd ``seed_sd``; the evaluation
    noise of one seed's mean difference is about 0.02): the two-stage interval widened to the t-interval covers the
    true difference at least about 95% of the time."""
    settings, seeds, delta = 400, 3, 0.1
    rng = np.random.default_rng(13 if seed_sd < 0.1 else 14)
    prompt_of = np.repeat(np.arange(9), 16)
    weight = unit_draws(prompt_of).weight  # one draw for every seed: scored on the same prompts and noise
    hits = two_stage_hits = 0
    for s in range(settings):
        a, b = paired_scores(rng, prompt_of, delta, shift=rng.normal(0.0, seed_sd, seeds))
        estimates = draw_estimates(weight, a, b)  # (seeds, D+1)
        values, replicates = estimates[:, 0], estimates[:, 1:]
        hits += covered(*interval(values, replicates), delta)
        two_stage_hits += covered(*percentile(two_stage(replicates)), delta)
    coverage = hits / settings
    low, _ = acceptance(settings)
    print(f"\ncoverage 3 seeds (seed sd {seed_sd}), {settings} settings: {coverage:.3f} (accept >= {low:.3f}); "
          f"two-stage percentile alone, not widened: {two_stage_hits / settings:.3f}")
    assert coverage >= low


def ar1(rng: np.random.Generator, n: int, phi: float, burn: int = 200) -> np.ndarray:
    """A stationary AR(1) series of mean 0."""
    return lfilter([1.0], [1.0, -phi], rng.normal(size=n + burn))[burn:]


def test_block_bootstrap_covers_autocorrelated_mean_better_than_iid():
    """AR(1), phi = 0.8, 200 iterations, mean 0. The stationary bootstrap's interval of the mean covers 0 far more
    often than an i.i.d. resample of iterations, which ignores the autocorrelation (its interval is about a third of
    the needed width). The stationary bootstrap itself runs below 95% on series this short and this correlated:
    its spread of the mean is about 0.8 of the true one even with a hand-picked block length, a known finite-sample
    bias of block bootstraps, so the check on it is a floor of 0.75 and an upper binomial bound, not the 95% region."""
    series_count, n, phi = 300, 200, 0.8
    rng = np.random.default_rng(15)
    iid_rng = np.random.default_rng(16)
    block_hits = iid_hits = 0
    lengths = []
    for _ in range(series_count):
        x = ar1(rng, n, phi)
        counts, length = iteration_counts(x)
        lengths.append(length)
        means = counts @ x / counts.sum(axis=1)
        block_hits += covered(*interval(means[:1], means[None, 1:]), 0.0)
        iid = np.vstack([np.ones(n), iid_rng.multinomial(n, np.full(n, 1 / n), size=DRAWS)])
        iid_means = iid @ x / n
        iid_hits += covered(*interval(iid_means[:1], iid_means[None, 1:]), 0.0)
    block, iid = block_hits / series_count, iid_hits / series_count
    _, high = acceptance(series_count)
    print(f"\nAR(1) phi={phi}, n={n}, {series_count} series: stationary bootstrap coverage {block:.3f}, "
          f"i.i.d. coverage {iid:.3f}, median block length {np.median(lengths):.1f}")
    assert 0.75 <= block <= high
    assert iid < 0.65
    assert block - iid > 0.2


def test_block_length_tracks_autocorrelation():
    rng = np.random.default_rng(17)
    correlated = [block_length(ar1(rng, 200, 0.8)) for _ in range(20)]
    white = [block_length(rng.normal(size=200)) for _ in range(20)]
    print(f"\nmedian block length: AR(1) phi=0.8 {np.median(correlated):.2f}, white noise {np.median(white):.2f}")
    assert np.median(correlated) > 5
    assert min(correlated) > 2
    assert np.median(white) < 2
    assert all(w >= 1 for w in white)
    assert block_length(np.ones(50)) == 1.0
    assert block_length(np.arange(5.0)) == 1.0


def test_unit_draws_reproducible_and_keep_set_size_stratified():
    sizes = np.array([3, 5, 16, 1, 7, 16, 2, 9, 4])  # 9 prompts, uneven, images interleaved
    prompt_of = np.random.default_rng(0).permutation(np.repeat(np.arange(len(sizes)), sizes))
    first, second = unit_draws(prompt_of), unit_draws(prompt_of)
    assert np.array_equal(first.weight, second.weight)
    assert np.array_equal(first.image_count, second.image_count)
    assert np.array_equal(first.prompt_weight, second.prompt_weight)
    assert not np.array_equal(first.weight, unit_draws(prompt_of, seed=1).weight)
    assert first.weight.shape == (DRAWS + 1, len(prompt_of))
    assert first.covers == "images within 9 prompts"
    assert np.all(first.weight[0] == 1)
    assert np.all(first.prompt_weight == 1)
    for p, size in enumerate(sizes):
        members = prompt_of == p
        assert np.all(first.image_count[:, members].sum(axis=1) == size)
        if size > 1:
            assert np.any(first.image_count[1:, members] != 1)  # resamples differ from the data
    assert np.all(first.weight.sum(axis=1) == len(prompt_of))


def test_unit_draws_reproducible_and_keep_set_size_by_prompt():
    prompts, images = 553, 4
    prompt_of = np.tile(np.arange(prompts), images)
    first, second = unit_draws(prompt_of), unit_draws(prompt_of)
    assert np.array_equal(first.weight, second.weight)
    assert first.covers == "553 prompts"
    assert np.all(first.weight[0] == 1)
    assert np.all(first.image_count == 1)
    assert np.all(first.prompt_weight.sum(axis=1) == prompts)
    assert np.all(first.weight.sum(axis=1) == prompts * images)
    assert np.all(first.prompt_weight[1:].min(axis=1) == 0)  # some prompt left out of every resample
    for p in range(3):  # each drawn prompt brings all its images
        members = prompt_of == p
        assert np.all(first.weight[:, members] == first.prompt_weight[:, [p]])
    # the switch between the two schemes
    assert unit_draws(np.arange(MIN_PROMPTS - 1).repeat(2)).covers == f"images within {MIN_PROMPTS - 1} prompts"
    assert unit_draws(np.arange(MIN_PROMPTS).repeat(2)).covers == f"{MIN_PROMPTS} prompts"


def test_iteration_counts_reproducible_and_keep_length():
    x = ar1(np.random.default_rng(18), 150, 0.7)
    (first, length), (second, again) = iteration_counts(x), iteration_counts(x)
    assert np.array_equal(first, second) and length == again
    assert first.shape == (DRAWS + 1, len(x))
    assert np.all(first[0] == 1)
    assert np.all(first.sum(axis=1) == len(x))
    assert np.all(first >= 0)
    assert np.any(first[1:] != 1)
    assert not np.array_equal(first, iteration_counts(x, seed=1)[0])


def test_interval_edge_cases():
    assert all(math.isnan(v) for v in interval(np.array([0.4]), None))
    values = np.array([0.2, 0.5, 0.3, 0.9])
    assert interval(values, None) == t_interval(values)
    replicates = np.random.default_rng(19).normal(0.4, 0.1, (1, DRAWS))
    assert interval(np.array([0.4]), replicates) == percentile(replicates[0])
    rng = np.random.default_rng(20)
    strictly_wider = 0
    for spread in [1e-4, 0.01, 0.1, 1.0, 10.0] * 4:
        n = int(rng.integers(2, 6))
        values = rng.normal(0.0, 1.0, n)
        replicates = values[:, None] + rng.normal(0.0, spread, (n, DRAWS))
        low, high = interval(values, replicates)
        t_low, t_high = t_interval(values)
        assert low <= t_low and high >= t_high
        strictly_wider += low < t_low or high > t_high
    assert strictly_wider > 0  # the two-stage interval is used where it is wider


def test_probability_of_improvement_known_values():
    assert probability_of_improvement([1.0], [0.0]) == 1.0
    assert probability_of_improvement([0.0], [1.0]) == 0.0
    assert probability_of_improvement([2.0, 2.0], [2.0]) == 0.5
    assert probability_of_improvement([1.0, 2.0, 3.0], [2.0]) == 0.5
    assert probability_of_improvement([3.0, 1.0], [2.0, 2.0, 0.0]) == pytest.approx(4 / 6)
    assert probability_of_improvement([1.0, 2.0], [1.0, 0.0]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_probability_of_improvement_is_mann_whitney_u():
    rng = np.random.default_rng(21)
    for n, m in [(3, 5), (10, 10), (7, 2)]:
        x, y = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, m).astype(float)  # with ties
        u = stats.mannwhitneyu(x, y).statistic
        assert probability_of_improvement(x, y) == pytest.approx(u / (n * m))


def test_improvement_interval_of_separated_and_of_identical_runs():
    rng = np.random.default_rng(3)
    low, high = rng.normal(0, 0.1, (3, 50)), rng.normal(1, 0.1, (3, 50))
    assert improvement_interval(high, low) == (1.0, 1.0)  # every resample of X above every one of Y
    assert improvement_interval(low, high) == (0.0, 0.0)
    same = improvement_interval(low, low)
    assert same[0] < 0.5 < same[1]  # X and Y the same runs: P(X > Y) straddles 1/2
