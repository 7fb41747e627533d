"""The paper's diagnostics as figures (matplotlib, PNG + PDF), from the trainer's JSONL files."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402


def save(fig: plt.Figure, stem: Path) -> None:
    """Write ``stem``.png and ``stem``.pdf and close the figure."""
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(f"{stem}.{ext}", dpi=130)
    plt.close(fig)


def off_policy(steps: pd.DataFrame) -> pd.DataFrame:
    """Rows of minibatches after the first of a rollout (the first is exactly on-policy)."""
    return steps[steps["update"] > 0]


def per_step_lines(steps: pd.DataFrame, columns: Sequence[tuple[str, str]], stem: Path, spread: bool = False) -> None:
    """One panel per column: the seed-mean of that diagnostic per denoising step, a line per variant."""
    data = off_policy(steps)
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
    for ax, (column, title) in zip(axes[0], columns):
        for variant, part in data.groupby("variant", sort=False):
            curve = part.groupby("step")[column].mean().dropna()
            if curve.empty:
                continue
            label = variant
            if spread:
                label += f" (max/min {curve.max() / curve.min():.1f}x)"
            ax.plot(curve.index, curve.to_numpy(), marker="o", ms=3, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("denoising step k (0 = pure noise)")
        ax.legend(fontsize=6)
    save(fig, stem)


def training_curves(evals: pd.DataFrame, metrics: Sequence[str], stem: Path) -> None:
    """Proxy and each gold metric vs training iteration; mean +- std over seeds per variant."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for variant, part in evals.groupby("variant", sort=False):
            stats = part.groupby("iteration")[metric].agg(["mean", "std"])
            ax.plot(stats.index, stats["mean"], label=variant)
            ax.fill_between(stats.index, stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0), alpha=0.15)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("iteration")
    axes[0, 0].legend(fontsize=6)
    save(fig, stem)


def gold_vs_proxy(evals: pd.DataFrame, matched: pd.DataFrame, stem: Path) -> None:
    """Average(gold) against the proxy along training (lines) and at matched proxy levels (markers)."""
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for i, (variant, part) in enumerate(evals.groupby("variant", sort=False)):
        curve = part.groupby("iteration")[["proxy", "avg_gold"]].mean()
        ax.plot(curve.proxy, curve.avg_gold, color=f"C{i}", alpha=0.6, label=variant)
        at = matched[matched.variant == variant].groupby("proxy_level").avg_gold.agg(["mean", "std"])
        ax.errorbar(at.index, at["mean"], yerr=at["std"].fillna(0), fmt="o", color=f"C{i}", ms=4, capsize=2)
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xlabel("proxy reward (eval)")
    ax.set_ylabel("Average(gold) vs base")
    ax.legend(fontsize=6)
    save(fig, stem)


def sample_grid_over_training(runs: Sequence[tuple[str, Path]], stem: Path, columns: int = 4) -> None:
    """Rows = variants (one seed), columns = evaluation iterations spread over training."""
    fig, axes = plt.subplots(len(runs), columns, figsize=(3.0 * columns, 1.2 * len(runs) + 0.5), squeeze=False)
    for r, (variant, folder) in enumerate(runs):
        files = sorted((folder / "samples").glob("iter_*.png"))
        picks = [files[round(i)] for i in np.linspace(0, len(files) - 1, columns)] if files else []
        for c, path in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(Image.open(path), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"iteration {int(path.stem.removeprefix('iter_'))}", fontsize=7)
            if c == 0:
                ax.set_ylabel(variant, fontsize=7)
    save(fig, stem)
