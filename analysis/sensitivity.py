"""A verdict map across a sweep: the claims that concern a swept variant, evaluated at every grid point.

A point stands in for its variant: the setting's analysis settings with the point's name in the variant's place
(in ``variants``, every comparison, ``baseline`` and ``normalised``), so that analysis.claims.claims_table gives
it the variant's role (the first variant of a (method, sampler) is the paper-faithful one) and computes every
claim as in the claims table, matched-proxy levels over the same comparison group included. The rows kept are those
whose ``variants`` name the point (C5's row for it, C8 for Mean-revised, C9 RatioNorm, C10 Temp-Reweight, C4
RatioNorm, C7 / C11 for a swept baseline or GRPO-Guard, ...). The default point (all factors 1) is the variant
itself, evaluated with the settings unchanged, so its verdicts are the claims table's.

A claim row is identified across points by (variant, id, k): the k-th row of claim ``id`` that names the point
(checks may quote numbers measured at the point, e.g. C11's proxy tolerance, so their text can differ).

The summary of a claim row over its points (verdicts v(p)):
- ``holds across the sweep``: every point reproduced; ``fails across the sweep``: every point not reproduced;
  ``inconclusive across the sweep`` / ``not tested across the sweep``: every point so;
- ``depends on <key>: <verdict> at <key>=<labels>; ...``: the verdicts differ, and one swept key alone determines
  them (the verdict is the same at every point that shares that key's value);
- ``mixed: <verdict> at n of N points; ...``: the verdicts differ and no single key determines them.
"""

from __future__ import annotations

import math
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from analysis.claims import claims_table  # noqa: E402
from analysis.forest import COLOURS  # noqa: E402
from analysis.stats import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTED, REPRODUCED  # noqa: E402

VALUES = ["verdict", "mean", "ci95_low", "ci95_high", "band_low", "band_high", "seeds", "reason"]
"""Columns of a claims row kept per point."""
ACROSS = {REPRODUCED: "holds across the sweep", NOT_REPRODUCED: "fails across the sweep",
          INCONCLUSIVE: "inconclusive across the sweep", NOT_TESTED: "not tested across the sweep"}
ORDER = [REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTED]


def renamed(names: Any, old: str, new: str) -> Any:
    return [new if n == old else n for n in names] if isinstance(names, list) else new if names == old else names


def point_settings(settings: dict[str, Any], variant: str, point: str) -> dict[str, Any]:
    """The analysis settings with ``point`` in ``variant``'s place (same position, so the same role)."""
    out = {**settings, "variants": renamed(list(settings["variants"]), variant, point)}
    for key in ("baseline", "normalised"):
        if key in out:
            out[key] = renamed(out[key], variant, point)
    if out.get("comparisons"):
        out["comparisons"] = {name: renamed(list(v), variant, point) for name, v in out["comparisons"].items()}
    return out


def names_of(variants: Any) -> list[str]:
    return [] if pd.isna(variants) else [v.strip() for v in str(variants).split(",") if v.strip()]


def rows_of_point(claims: pd.DataFrame, variant: str, point: str) -> pd.DataFrame:
    """The claims rows naming ``point``, with ``row`` (k-th such row of its id) and the point's name replaced by the
    variant's in ``variants`` and ``check``."""
    mine = claims[[point in names_of(v) for v in claims.variants]].copy()
    mine["row"] = mine.groupby("id").cumcount()
    mine["variants"] = [", ".join(renamed(names_of(v), point, variant)) for v in mine.variants]
    mine["check"] = [str(c).replace(point, variant) for c in mine.check]
    return mine[["id", "row", "check", "variants", *VALUES]]


def collect(per_point: dict[tuple[str, str], pd.DataFrame], sweep: dict[str, Any]) -> pd.DataFrame:
    """One row per (swept variant, grid point, claim row naming it) from each point's claims table
    (``per_point[(variant, point name)]``), with the point's labels per swept key and ``summary``."""
    frames = []
    for variant, spec in sweep.items():
        for p in spec["points"]:
            rows = rows_of_point(per_point[(variant, p["name"])], variant, p["name"])
            frames.append(rows.assign(swept=variant, point=p["name"], default=p["default"],
                                      **{k: p["labels"][k] for k in spec["keys"]}))
    table = pd.concat(frames, ignore_index=True)
    keys = list(dict.fromkeys(k for spec in sweep.values() for k in spec["keys"]))
    table = table[["swept", "id", "row", "point", "default", *keys, "check", "variants", *VALUES]]
    summaries = {}
    for (variant, id_, k), part in table.groupby(["swept", "id", "row"], sort=False):
        grid = pd.DataFrame([{"point": p["name"], **p["labels"]} for p in sweep[variant]["points"]])
        verdicts = grid.point.map(part.set_index("point").verdict)  # a point without the row: not tested
        summaries[(variant, id_, k)] = summary(grid.assign(verdict=verdicts), sweep[variant]["keys"])
    table["summary"] = [summaries[key] for key in zip(table.swept, table.id, table.row)]
    return table


def summary(points: pd.DataFrame, keys: Sequence[str]) -> str:
    """The verdict of one claim row over the grid (module docstring). ``points``: one row per grid point (a point
    without the row, e.g. a claim not computed there, counts as not tested) with a column per key and ``verdict``."""
    verdicts = points.verdict.fillna(NOT_TESTED)
    if verdicts.nunique() == 1:
        return ACROSS.get(verdicts.iloc[0], f"{verdicts.iloc[0]} across the sweep")
    frame = points.assign(verdict=verdicts)
    deciding = [k for k in keys if frame[k].notna().all() and frame.groupby(k, sort=False).verdict.nunique().max() == 1]
    if len(deciding) == 1:
        key = deciding[0]
        by_verdict: dict[str, list[str]] = {}
        for label, v in frame.groupby(key, sort=False).verdict.first().items():
            by_verdict.setdefault(v, []).append(str(label))
        return f"depends on {key}: " + "; ".join(f"{v} at {key}={', '.join(labels)}" for v, labels in by_verdict.items())
    counts = verdicts.value_counts()
    order = [v for v in ORDER if v in counts.index] + sorted(v for v in counts.index if v not in ORDER)
    return "mixed: " + "; ".join(f"{v} at {counts[v]} of {len(verdicts)} points" for v in order)


def sensitivity_table(root: Path, settings: dict[str, Any], sweep: dict[str, Any], seeds: Sequence[int] | None = None,
                      claims: Callable[..., pd.DataFrame] = claims_table, workers: int = 1) -> pd.DataFrame:
    """The verdict map of a setting's runs under ``root``: each point's claims table (``claims``; in ``workers``
    processes where more than 1), collected."""
    moved = {(variant, p["name"]): settings if p["default"] else point_settings(settings, variant, p["name"])
             for variant, spec in sweep.items() for p in spec["points"]}
    unique = {repr(m): m for m in moved.values()}  # the default points of several swept variants share one table
    if workers > 1 and len(unique) > 1:
        with ProcessPoolExecutor(min(workers, len(unique))) as pool:
            tables = list(pool.map(claims, [Path(root)] * len(unique), list(unique.values()), [seeds] * len(unique)))
    else:
        tables = [claims(Path(root), m, seeds) for m in unique.values()]
    computed = dict(zip(unique, tables))
    return collect({key: computed[repr(m)] for key, m in moved.items()}, sweep)


def cell(r: pd.Series) -> str:
    if not isinstance(r["mean"], float) or not math.isfinite(r["mean"]):
        return r.verdict
    ci = f" [{r.ci95_low:.3g}, {r.ci95_high:.3g}]" if math.isfinite(r.ci95_low) else ""
    return f"{r.verdict}: {r['mean']:.3g}{ci}"


def axes_of(part: pd.DataFrame, keys: Sequence[str]) -> tuple[str, list[str], str, list[str], pd.Series, pd.Series]:
    """Grid axes of one claim row: x = the first key's labels, y = the second's (the remaining keys joined)."""
    x = part[keys[0]].astype(str)
    y = (part[list(keys[1:])].astype(str).apply(lambda r: ",".join(f"{k}={v}" for k, v in r.items()), axis=1)
         if len(keys) > 2 else part[keys[1]].astype(str) if len(keys) == 2 else pd.Series("", index=part.index))
    ylabel = keys[1] if len(keys) == 2 else ", ".join(keys[1:])
    return keys[0], list(dict.fromkeys(x)), ylabel, list(dict.fromkeys(y)), x, y


def write_markdown(table: pd.DataFrame, sweep: dict[str, Any], path: Path) -> None:
    """Per claim row its summary, then a grid of 'verdict: mean [95% interval]' (the default point marked *)."""
    lines = ["The claims that concern each swept variant, at every point of the sweep (the point's runs in the "
             "variant's place; * = the default point, the variant as configured). Cell: verdict: mean [95% interval].",
             ""]
    for (variant, id_, k), part in table.groupby(["swept", "id", "row"], sort=False):
        keys = sweep[variant]["keys"]
        check = part.loc[part.default, "check"].iloc[0] if part.default.any() else part.check.iloc[0]
        lines += [f"### {variant}: {id_} ({check})", "", f"**{part.summary.iloc[0]}**", ""]
        xkey, xs, ykey, ys, x, y = axes_of(part, keys)
        grid = pd.DataFrame("", index=ys, columns=xs)
        for (_, r), xi, yi in zip(part.iterrows(), x, y):
            grid.loc[yi, xi] = ("* " if r.default else "") + cell(r)
        grid = grid.rename_axis(f"{ykey} \\ {xkey}" if ykey else xkey)
        lines += [grid.to_markdown(), ""]
    path.write_text("\n".join(lines))


def figure(table: pd.DataFrame, sweep: dict[str, Any], path: Path) -> None:
    """One panel per (swept variant, claim row): a grid over the swept keys coloured by verdict, the mean written
    in each cell, the default point framed, the summary under the title."""
    groups = list(table.groupby(["swept", "id", "row"], sort=False))
    columns = min(3, max(1, len(groups)))
    rows = math.ceil(len(groups) / columns) if groups else 1
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    for ax, ((variant, id_, k), part) in zip(axes.flat, groups):
        xkey, xs, ykey, ys, x, y = axes_of(part, sweep[variant]["keys"])
        for (_, r), xi, yi in zip(part.iterrows(), x, y):
            i, j = xs.index(xi), ys.index(yi)
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, color=COLOURS.get(r.verdict, "#ffffff"), alpha=0.75))
            if r.default:
                ax.add_patch(Rectangle((i - 0.46, j - 0.46), 0.92, 0.92, fill=False, lw=2.5, ec="black"))
            value = f"{r['mean']:.3g}" if isinstance(r["mean"], float) and math.isfinite(r["mean"]) else "-"
            ax.text(i, j, value + ("\n(default)" if r.default else ""), ha="center", va="center", fontsize=8)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
        ax.set_aspect("equal")
        ax.set_xticks(range(len(xs)), xs, fontsize=8)
        ax.set_yticks(range(len(ys)), ys, fontsize=8)
        ax.set_xlabel(xkey)
        ax.set_ylabel(ykey)
        check = part.loc[part.default, "check"].iloc[0] if part.default.any() else part.check.iloc[0]
        title = textwrap.fill(f"{variant} {id_}: {check}", 52)
        ax.set_title(f"{title}\n{textwrap.fill(part.summary.iloc[0], 60)}", fontsize=7.5)
    fig.legend(handles=[Patch(color=c, alpha=0.75, label=v) for v, c in COLOURS.items()], loc="lower center",
               ncol=len(COLOURS), fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_sensitivity(table: pd.DataFrame, sweep: dict[str, Any], out: Path, figure_path: Path) -> None:
    """``out``/claims_sensitivity.{csv,md} and the figure."""
    out.mkdir(parents=True, exist_ok=True)
    figure_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "claims_sensitivity.csv", index=False)
    write_markdown(table, sweep, out / "claims_sensitivity.md")
    figure(table, sweep, figure_path)
