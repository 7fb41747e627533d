"""A forest plot of a claims table: each check's 95% interval against the band in which its claim holds.

Checks measure different quantities on different scales, so every row has its own thin x-axis: the band
shaded (to the axis end where an edge is infinite; a dashed edge is excluded, ``strict``), the interval
as a bar and the mean as a point, coloured by verdict; beside it what the interval covers. Rows without
a value (not tested) are listed below the axes with their reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

NEEDED = ["id", "check", "verdict", "mean", "ci95_low", "ci95_high", "band_low", "band_high", "strict", "reason",
          "covers", "units"]
"""Columns of claims.csv the plot reads."""

COLOURS = {"reproduced": "#2ca02c", "not reproduced": "#d62728", "inconclusive": "#ff7f0e", "not tested": "#7f7f7f"}
"""One colour per verdict."""

LABEL_CHARS = 56
"""Check text beyond this many characters is cut at a word (the full text is in claims.md)."""


def check_columns(claims: pd.DataFrame, source: str) -> None:
    """Raise ValueError naming ``source`` and the columns the plot needs that ``claims`` lacks."""
    missing = [c for c in NEEDED if c not in claims.columns]
    if missing:
        raise ValueError(f"{source}: no column {', '.join(missing)} (a claims table of python -m analysis claims "
                         f"has {', '.join(NEEDED)})")


def read_claims(path: Path) -> pd.DataFrame:
    """A claims.csv with the columns the plot needs ('inf' / '-inf' band edges read as floats)."""
    claims = pd.read_csv(path, keep_default_na=False, na_values=[""])
    check_columns(claims, str(path))
    return claims


def short(text: str) -> str:
    """``text`` cut at a word to at most LABEL_CHARS characters, with an ellipsis where cut."""
    if len(text) <= LABEL_CHARS:
        return text
    return text[:LABEL_CHARS].rsplit(" ", 1)[0] + " …"


def text(value: object) -> str:
    """A table cell as text; empty for a missing one."""
    return "" if pd.isna(value) else str(value)


def limits(row: pd.Series) -> tuple[float, float]:
    """x-limits of a row's axis: its finite band edges, interval and mean, padded by 15% of their span."""
    values = [float(row[c]) for c in ("mean", "ci95_low", "ci95_high", "band_low", "band_high")
              if math.isfinite(float(row[c]))]
    low, high = min(values), max(values)
    pad = 0.15 * (high - low) if high > low else 0.1 * max(abs(low), 1.0)
    return low - pad, high + pad


def draw_row(ax: plt.Axes, row: pd.Series) -> None:
    """One check on its own axis: band, its finite edges, the interval as a bar and the mean as a point."""
    low, high = limits(row)
    ax.set_xlim(low, high)
    band_low, band_high = max(float(row.band_low), low), min(float(row.band_high), high)
    ax.axvspan(band_low, band_high, color="#9ecae1", alpha=0.45, lw=0)
    style = "--" if str(row.strict).lower() == "true" else "-"
    for edge in (row.band_low, row.band_high):
        if math.isfinite(float(edge)):
            ax.axvline(float(edge), color="#3182bd", lw=0.9, ls=style)
    colour = COLOURS.get(row.verdict, "k")
    if math.isfinite(float(row.ci95_low)) and math.isfinite(float(row.ci95_high)):
        ax.plot([row.ci95_low, row.ci95_high], [0, 0], color=colour, lw=3, solid_capstyle="butt")
    ax.plot([row["mean"]], [0], "o", color=colour, ms=6, mec="k", mew=0.5)
    ax.set_ylim(-1, 1)
    ax.set_yticks([])
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(axis="x", labelsize=6, length=2, pad=1)
    ax.text(-0.02, 0.5, f"{row.id} {text(row.variants)}\n{short(text(row.check))}", transform=ax.transAxes,
            ha="right", va="center", fontsize=7)
    note = [text(row.covers), text(row.units)] + ([text(row.reason)] if row.verdict == "not tested" else [])
    ax.text(1.02, 0.5, "\n".join(n for n in note if n), transform=ax.transAxes, ha="left", va="center", fontsize=6.5,
            color="#444444")


def untested_lines(claims: pd.DataFrame) -> list[str]:
    """'C5 <check>: <reason>' for each row without a value."""
    return [f"{r.id} {short(text(r.check))}: {text(r.reason) or r.verdict}" for r in claims.itertuples()]


def forest_plot(claims: pd.DataFrame, path: Path) -> None:
    """Write the forest plot of ``claims`` (rows of python -m analysis claims) to ``path`` (PNG)."""
    check_columns(claims, "the claims table")
    tested = claims[[math.isfinite(float(m)) for m in claims["mean"]]]
    untested = untested_lines(claims.drop(tested.index))
    if tested.empty:
        raise ValueError("the claims table has no row with a finite mean: nothing to plot")
    height = 0.5 * len(tested) + 0.16 * len(untested) + 1.3
    fig, axes = plt.subplots(len(tested), 1, figsize=(11, height), squeeze=False)
    for ax, (_, row) in zip(axes[:, 0], tested.iterrows()):
        draw_row(ax, row)
    bottom = (0.16 * len(untested) + 0.45) / height
    fig.subplots_adjust(left=0.36, right=0.8, top=1 - 0.75 / height, bottom=bottom, hspace=1.1)
    if untested:
        fig.text(0.01, bottom - 0.3 / height, "Not tested:\n" + "\n".join(untested), ha="left", va="top", fontsize=7)
    fig.suptitle("Claims: mean and 95% interval of each check against the band where the claim holds "
                 "(shaded; a dashed edge is excluded)", x=0.01, y=1 - 0.1 / height, ha="left", va="top", fontsize=8.5)
    handles = [Line2D([], [], color=c, marker="o", lw=3, label=v) for v, c in COLOURS.items()]
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 1 - 0.3 / height), ncol=4, fontsize=7,
               frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
