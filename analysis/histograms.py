"""Per-step log-ratio histograms of any run, iteration and step, split by advantage sign, with the theory's curve.

The prediction (guard/ratio.py; paper.md, "Why clipping fails"): with x' = mu_old + s eps,
dmu = mu_old - mu_theta and D latent dims, the per-dimension-mean log-ratio is
log r = -(|dmu|^2 / (2 s^2) + dmu . eps / s) / D. Given mu_theta, dmu . eps / s ~ N(0, |dmu|^2 / s^2), so
with b = |dmu|^2 / (2 s^2 D) (guard.ratio.mean_bias, per sample) log r ~ N(-b, 2 b / D). A form
scale (log r + offset) -- raw: (1, 0); Mean-revised: (1, b_used); normalised: (s, b_used) -- is then
N(scale (b_used - b), scale^2 2 b / D); b_used = b (``bias_reduction: sample``: the normalised form is
centred) or the mean of b over the samples the trainer averaged (``batch``: each sample is shifted by
s (mean b - b), the panel stays centred on average). A panel's curve is the mixture over its samples.

Only off-policy updates (``update`` > 0) are drawn: the first minibatch of a rollout has log r = 0 exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from scipy.stats import norm

from analysis.figures import plt, save
from guard.ratio import get_variant

FORMS = ("raw", "normalised", "used")
SAMPLE_COLUMNS = ["raw", "normalised", "adv", "b"]
SIGNS = {"A>0": ("tab:blue", 1), "A<0": ("tab:red", -1)}


class NotRecordedError(LookupError):
    """A requested variant, seed, iteration or step that the run files do not hold."""


def run_logratios(runs: Path) -> dict[tuple[str, int], Path]:
    """(variant, seed) -> run folder, for every ``<runs>/<variant>/seed<n>/`` holding a logratios.jsonl."""
    found = {}
    for path in sorted(Path(runs).glob("*/seed*/logratios.jsonl")):
        match = re.fullmatch(r"seed(\d+)", path.parent.name)
        if match and path.stat().st_size:
            found[(path.parent.parent.name, int(match.group(1)))] = path.parent
    if not found:
        raise NotRecordedError(f"no <variant>/seed<n>/logratios.jsonl under {runs}; point --runs at "
                               "results/<exp>/<backbone>/<task> of runs with histogram_iterations")
    return found


def check_recorded(what: str, requested: Sequence, recorded: Sequence, where: str) -> list:
    """The requested values (all recorded ones when none are requested); an error naming the recorded ones."""
    recorded = sorted(set(recorded))
    missing = [v for v in requested if v not in recorded]
    if missing:
        raise NotRecordedError(f"{what} {missing} not recorded {where}; recorded: {recorded}")
    return list(requested) or recorded


def read_run(folder: Path, variant: str, seed: int) -> pd.DataFrame:
    """One row per sample and trained step of a run's logratios.jsonl, with its variant's clip and ratio form."""
    config = yaml.safe_load((folder / "config.yaml").read_text())
    rows = pd.read_json(folder / "logratios.jsonl", lines=True)
    missing = {"adv", "b", "s", "dims"} - set(rows)
    if missing:
        raise NotRecordedError(f"{folder / 'logratios.jsonl'} lacks {sorted(missing)} (written before the trainer "
                               "recorded them); rerun the run to draw its histograms")
    if config.get("bias_reduction", "sample") == "batch":  # the trainer averaged b over each row's samples
        rows["b_used"] = [[float(np.mean(b))] * len(b) for b in rows.b]
    else:
        rows["b_used"] = rows.b
    samples = rows.explode([*SAMPLE_COLUMNS, "b_used"], ignore_index=True)
    samples[[*SAMPLE_COLUMNS, "b_used"]] = samples[[*SAMPLE_COLUMNS, "b_used"]].astype(float)
    return samples.assign(variant=variant, seed=seed, clip_eps=float(config["clip_eps"]),
                          ratio=get_variant(config["variant"]).ratio)


def load_samples(runs: Path, variants: Sequence[str] = (), seeds: Sequence[int] = (), iterations: Sequence[int] = (),
                 steps: Sequence[int] = ()) -> pd.DataFrame:
    """The off-policy samples of the requested runs, iterations and steps (all recorded ones by default)."""
    found = run_logratios(runs)
    variants = check_recorded("variant", variants, [v for v, _ in found], f"under {runs}")
    frames = []
    for variant in variants:
        have = [s for v, s in found if v == variant]
        for seed in check_recorded("seed", seeds, have, f"for {variant} under {runs}"):
            frames.append(read_run(found[(variant, seed)], variant, seed))
    samples = pd.concat(frames, ignore_index=True)
    samples = samples[samples["update"] > 0]
    for (variant, seed), run in samples.groupby(["variant", "seed"], sort=False):
        where = f"(off-policy updates) in {variant} seed {seed}"
        check_recorded("iteration", iterations, run.iteration, where)
        check_recorded("step", steps, run[run.iteration.isin(iterations or run.iteration)].step, where)
    if samples.empty:
        raise NotRecordedError(f"no off-policy update (update > 0) recorded for {variants} under {runs}; "
                               "a run needs minibatches x inner_epochs > 1")
    keep = samples.iteration.isin(iterations or samples.iteration) & samples.step.isin(steps or samples.step)
    return samples[keep].reset_index(drop=True)


def form_ratio(samples: pd.DataFrame, form: str) -> np.ndarray:
    """The ratio form drawn for each sample: raw -> plain, normalised -> normalised, used -> the variant's own."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form == "used":
        return samples.ratio.to_numpy()
    return np.full(len(samples), "plain" if form == "raw" else "normalised")


def form_values(samples: pd.DataFrame, form: str) -> np.ndarray:
    """The drawn log-ratio of each sample: log r (plain), log r + b_used (Mean-revised, summed in fp32 as the trainer
    does) or the stored s (log r + b_used)."""
    ratio = form_ratio(samples, form)
    raw = samples.raw.to_numpy()
    revised = (raw.astype(np.float32) + samples.b_used.to_numpy().astype(np.float32)).astype(float)
    return np.select([ratio == "plain", ratio == "mean_revised"], [raw, revised], samples.normalised.to_numpy())


def predicted_moments(b: np.ndarray, b_used: np.ndarray, dims: np.ndarray, scale: np.ndarray,
                      offset_is_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of scale (log r + offset) given b: scale (offset - b) and |scale| sqrt(2 b / D),
    with offset = b_used where ``offset_is_b`` (Mean-revised, normalised) and 0 for the raw log r."""
    offset = np.where(offset_is_b, b_used, 0.0)
    return scale * (offset - b), np.abs(scale) * np.sqrt(2 * b / dims)


def sample_moments(samples: pd.DataFrame, form: str) -> tuple[np.ndarray, np.ndarray]:
    """``predicted_moments`` of every sample in the drawn form."""
    ratio = form_ratio(samples, form)
    scale = np.where(ratio == "normalised", samples.s.to_numpy(), 1.0)
    return predicted_moments(samples.b.to_numpy(), samples.b_used.to_numpy(), samples.dims.to_numpy(), scale,
                             ratio != "plain")


def mixture_density(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(1/n) sum_i N(x; mean_i, std_i^2) at each x (components with std 0 -- no policy change -- left out)."""
    live = std > 0
    if not live.any():
        return np.zeros_like(x)
    return norm.pdf(x[:, None], mean[live], std[live]).sum(axis=1) / len(mean)


@dataclass(frozen=True)
class ClipCounts:
    """Fractions of the samples of one advantage sign outside the clip window, below and above."""

    lower: float
    upper: float
    n: int


def clip_counts(values: np.ndarray, adv: np.ndarray, clip_eps: float) -> dict[str, ClipCounts]:
    """Per sign, the fraction with r = exp(value) below 1 - eps and above 1 + eps (fp32, as guard.loss.clip_fractions)."""
    ratio = torch.exp(torch.as_tensor(values, dtype=torch.float32)).numpy()
    below, above = ratio < np.float32(1 - clip_eps), ratio > np.float32(1 + clip_eps)
    counts = {}
    for sign, (_, direction) in SIGNS.items():
        mine = np.sign(adv) == direction
        n = int(mine.sum())
        counts[sign] = ClipCounts(float((below & mine).sum() / max(n, 1)), float((above & mine).sum() / max(n, 1)), n)
    return counts


def panel_text(counts: dict[str, ClipCounts]) -> str:
    """The printed clip fractions of a panel: per sign, below | above the window (n samples)."""
    return "\n".join(f"{sign}: {c.lower:.0%} | {c.upper:.0%} (n={c.n})" for sign, c in counts.items())


def draw_panel(ax: plt.Axes, part: pd.DataFrame, form: str, bins: np.ndarray) -> dict[str, ClipCounts]:
    """Histogram of each advantage sign, its predicted mixture (scaled to counts), the clip window and its counts."""
    values, adv = form_values(part, form), part.adv.to_numpy()
    mean, std = sample_moments(part, form)
    grid = np.linspace(bins[0], bins[-1], 400)
    for sign, (colour, direction) in SIGNS.items():
        mine = np.sign(adv) == direction
        ax.hist(values[mine], bins=bins, color=colour, alpha=0.35, label=sign)
        ax.plot(grid, mine.sum() * (bins[1] - bins[0]) * mixture_density(grid, mean[mine], std[mine]), color=colour, lw=1)
    eps = part.clip_eps.iloc[0]
    for edge in (np.log1p(-eps), np.log1p(eps)):
        ax.axvline(edge, color="grey", ls="--", lw=0.7)
    ax.axvline(0, color="k", lw=0.5)
    counts = clip_counts(values, adv, eps)
    ax.text(0.02, 0.98, panel_text(counts), transform=ax.transAxes, va="top", fontsize=5.5, family="monospace")
    return counts


def x_range(part: pd.DataFrame, form: str) -> tuple[float, float]:
    """The data and the clip window of some panels, with a 5% margin."""
    values = form_values(part, form)
    eps = part.clip_eps.max()
    lo, hi = min(values.min(), np.log1p(-eps)), max(values.max(), np.log1p(eps))
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def histogram_figure(samples: pd.DataFrame, form: str = "used", sharex: str = "none",
                     bins: int = 40) -> tuple[plt.Figure, pd.DataFrame]:
    """Columns: denoising steps; rows: (variant, iteration); seeds pooled. Returns the figure and each panel's counts.

    ``sharex``: each panel its own x-range (none), one per row, or one for all; a range spans the data and the clip
    window. Samples with A = 0 (kept when ``drop_zero_advantage`` is off) are in neither colour."""
    if sharex not in ("none", "row", "all"):
        raise ValueError(f"sharex must be none, row or all, got {sharex!r}")
    rows = list(samples[["variant", "iteration"]].drop_duplicates().itertuples(index=False, name=None))
    steps = sorted(samples.step.unique())
    fig, axes = plt.subplots(len(rows), len(steps), figsize=(max(2.2 * len(steps) + 0.6, 4), 1.9 * len(rows) + 0.6),
                             squeeze=False, sharex={"none": False}.get(sharex, sharex))
    table = []
    for r, (variant, iteration) in enumerate(rows):
        row = samples[(samples.variant == variant) & (samples.iteration == iteration)]
        for c, step in enumerate(steps):
            ax, part = axes[r, c], row[row.step == step]
            span = {"none": part, "row": row, "all": samples}[sharex]
            if part.empty:
                ax.set_axis_off()
                continue
            counts = draw_panel(ax, part, form, np.linspace(*x_range(span, form), bins + 1))
            table += [{"variant": variant, "iteration": iteration, "step": step, "sign": sign, "n": k.n,
                       "below": k.lower, "above": k.upper} for sign, k in counts.items()]
            ax.set_title(f"step {step}" if r == 0 else "", fontsize=8)
            ax.tick_params(labelsize=5.5)
            if c == 0:
                ax.set_ylabel(f"{variant}\niteration {iteration}", fontsize=7)
    axes[0, -1].legend(fontsize=6, loc="upper right")
    label = {"raw": "log r", "normalised": "s (log r + b)", "used": "the variant's clipped log-ratio"}[form]
    fig.supxlabel(f"{label}\ndashed: log(1 -+ eps); lines: predicted from b", fontsize=7)
    return fig, pd.DataFrame(table)


def write_figure(fig: plt.Figure, out: Path) -> None:
    """``out``.png or .pdf as named; a path without either suffix gets both (as the workflow's figures)."""
    if out.suffix in (".png", ".pdf"):
        fig.tight_layout()
        fig.savefig(out, dpi=130)
        plt.close(fig)
    else:
        save(fig, out)
