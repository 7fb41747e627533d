"""C6-C8, C11, C12: proxy and gold over training (eval.jsonl) and at the end (scores/), with intervals over the
evaluation images inside each run (paired across variants: the same prompts and noise) and over seeds."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from analysis.evidence import Draws, Setting, Values, curves, finals, row, untested
from analysis.tables import PAPER_BACKBONE, PAPER_MAIN, PAPER_TASK
from eval.nano import relative_gold

PROXY_TOLERANCE = 0.1     # C11/C12: a proxy "no lower" within 10% of the baseline's proxy gain over the base
GOLD_TOLERANCE = 0.05     # C12: Average(gold) unchanged within 0.05 (5% of the base model)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
"""Matched proxy levels: base + f (reachable - base), as analysis.tables.matched_proxy."""

SRC_CURVES = "figures/training_curves"
SRC_MATCHED = "tables/ablation.md (matched proxy); figures/gold_vs_proxy"
SRC_MAIN = "tables/main.md"


def group_of(s: Setting, variants: Sequence[str]) -> list[str]:
    """The first comparison holding ``variants`` (its proxy levels are the table's), else the variants alone."""
    return next((list(c) for c in (s.settings.get("comparisons") or {}).values() if set(variants) <= set(c)),
                list(variants))


def matched(s: Setting, d: Draws, variants: Sequence[str]) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    """analysis.tables.matched_proxy under every draw: per run of the group holding ``variants``, (D, F) arrays of
    'iteration' and 'avg_gold' where its proxy first reaches each level (NaN where it does not or starts above)."""
    group = [v for v in group_of(s, variants) if v in set(d.rows.variant)]
    runs = {(v, seed): d.run(v, seed, "proxy") for v in group for seed in d.seeds(v)}
    best = np.stack([np.mean([p.max(axis=1) for (v2, _), (_, p) in runs.items() if v2 == v], axis=0) for v in group])
    reachable, base = best.min(axis=0), d.base["proxy"]
    level = base[:, None] + np.asarray(FRACTIONS)[None, :] * (reachable - base)[:, None]  # (D, F)
    out = {}
    for (v, seed), (its, proxy) in runs.items():
        above = proxy[:, None, :] >= level[:, :, None]  # (D, F, E)
        first = above.argmax(axis=2)
        ok = above.any(axis=2) & (first > 0)
        i = np.where(ok, first, 1)

        def interp(a: np.ndarray) -> np.ndarray:
            """(1 - w) a[i - 1] + w a[i] at each level's crossing, NaN where the run does not cross."""
            after, before = np.take_along_axis(a, i, axis=1), np.take_along_axis(a, i - 1, axis=1)
            return np.where(ok, (1 - w) * before + w * after, np.nan)

        p1, p0 = np.take_along_axis(proxy, i, axis=1), np.take_along_axis(proxy, i - 1, axis=1)
        w = (level - p0) / np.where(p1 != p0, p1 - p0, 1.0)
        avg = np.mean([relative_gold(n, interp(d.run(v, seed, n)[1]), d.base[n][:, None]) for n in s.gold], axis=0)
        out[(v, seed)] = {"iteration": interp(np.broadcast_to(its, proxy.shape).astype(float)), "avg_gold": avg}
    return out


def per_seed(d: Draws, variants: Sequence[str], fn) -> dict[int, np.ndarray]:
    """fn(seed) -> (D,) for every seed that all ``variants`` have."""
    seeds = sorted(set.intersection(*(set(d.seeds(v)) for v in variants)))
    return {seed: fn(seed) for seed in seeds}


def nanmean_where(a: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Mean over the last axis of ``a`` where ``ok``; NaN where no entry is."""
    count = ok.sum(axis=-1)
    return np.where(count > 0, np.where(ok, a, 0.0).sum(axis=-1) / np.maximum(count, 1), np.nan)


def level_gap(s: Setting, d: Draws, a: str, b: str, column: str) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per seed (D, F) of ``column`` for runs a and b at the matched levels, NaN where either misses a level."""
    m = matched(s, d, [b, a])
    seeds = sorted({seed for v, seed in m if v == a} & {seed for v, seed in m if v == b})
    return {seed: m[(a, seed)][column] for seed in seeds}, {seed: m[(b, seed)][column] for seed in seeds}


C6 = "Over training the baseline's proxy rises while gold falls"


def c6_baseline_hacking(s: Setting) -> list[dict[str, Any]]:
    """C6: baseline proxy final - first > 0 and Average(gold) final - first < 0."""
    b, d = s.baseline, curves(s)
    if d is None or b not in set(d.rows.variant):
        return [untested("C6", C6, "baseline proxy and gold over training", "no baseline run with eval.jsonl", SRC_CURVES)]

    def change(column: str) -> Values:
        return d.values({seed: (lambda v: v[:, -1] - v[:, 0])(d.run(b, seed, column)[1]) for seed in d.seeds(b)})

    return [row("C6", C6, "proxy: last minus first evaluation > 0", [b], change("proxy"), 0.0, math.inf, SRC_CURVES,
                strict=True),
            row("C6", C6, "Average(gold): last minus first evaluation < 0", [b], change("avg_gold"), -math.inf, 0.0,
                SRC_CURVES, strict=True)]


def missing(s: Setting, d: Draws | None, variants: Sequence[str | None], names: Sequence[str]) -> str:
    """Why a matched-proxy claim cannot run, or '' where it can."""
    present = set(d.rows.variant) if d is not None else set()
    absent = [n for v, n in zip(variants, names) if v not in present]
    return f"no {', '.join(absent)} run on the baseline's sampler with eval.jsonl" if absent else ""


C7 = "GRPO-Guard is the most stable"


def c7_guard_at_matched_proxy(s: Setting) -> list[dict[str, Any]]:
    """C7, per (baseline, GRPO-Guard) pair: min over matched proxy levels of Average(gold) guard - baseline > 0."""
    d = curves(s)
    if not s.pairs or d is None:
        return [untested("C7", C7, "Average(gold) at matched proxy", "no baseline and GRPO-Guard pair with eval.jsonl",
                         SRC_MATCHED)]
    out = []
    for b, g in s.pairs:
        guard, base = level_gap(s, d, g, b, "avg_gold")
        diff = {seed: np.nanmin(np.where(np.isnan(guard[seed] - base[seed]), np.inf, guard[seed] - base[seed]), axis=1)
                for seed in guard}
        diff = {seed: np.where(np.isinf(v), np.nan, v) for seed, v in diff.items()}
        both = {seed: ~np.isnan(guard[seed] - base[seed]) for seed in guard}
        x = d.values({seed: nanmean_where(guard[seed], both[seed]) for seed in guard})
        y = d.values({seed: nanmean_where(base[seed], both[seed]) for seed in guard})
        out.append(row("C7", C7, "GRPO-Guard minus baseline Average(gold), its minimum over the matched proxy levels both "
                       "runs reach, > 0", [g, b], d.values(diff), 0.0, math.inf, SRC_MATCHED, strict=True, versus=(x, y)))
    return out


C8 = "Mean-revised already stops most of the gold decline"


def c8_mean_revised(s: Setting) -> list[dict[str, Any]]:
    """C8: at matched proxy, Mean-revised's Average(gold) above the midpoint of the baseline's and GRPO-Guard's."""
    d = curves(s)
    b, mr, g = s.baseline, s.role("mean_revised"), s.role("grpo_guard")
    why = missing(s, d, [b, mr, g], ["baseline", "Mean-revised", "GRPO-Guard"])
    if why:
        return [untested("C8", C8, "Mean-revised at matched proxy", why, SRC_MATCHED)]
    m = matched(s, d, [b, mr, g])

    def midpoint_gap(seed: int) -> np.ndarray:
        gap = m[(mr, seed)]["avg_gold"] - (m[(b, seed)]["avg_gold"] + m[(g, seed)]["avg_gold"]) / 2
        return nanmean_where(gap, ~np.isnan(gap))

    return [row("C8", C8, "Mean-revised minus the midpoint of baseline and GRPO-Guard Average(gold), mean over the "
                "matched proxy levels all three reach, > 0 (closer to GRPO-Guard)", [mr, b, g],
                d.values(per_seed(d, [b, mr, g], midpoint_gap)), 0.0, math.inf, SRC_MATCHED, strict=True)]


# --- C11-C12: the final evaluation (scores/, the main table) ----------------------------------------------------

C11 = ("Main table: GRPO-Guard keeps more Avg(gold) than FlowGRPO / DanceGRPO at a similar proxy "
       "(GenEval 0.89 vs 0.84, OCR 0.99 vs 0.88, FLUX PickScore 1.02 vs 0.88)")


def final_of(d: Draws, variant: str, column: str) -> dict[int, np.ndarray]:
    """Per seed, (D,) final ``column`` of a variant."""
    return {seed: d.run(variant, seed, column)[1][:, 0] for seed in d.seeds(variant)}


def final_pairs(d: Draws, a: str, b: str, column: str) -> Values:
    """Per seed both variants have: final ``column`` of a minus b."""
    x, y = final_of(d, a, column), final_of(d, b, column)
    return d.values({seed: x[seed] - y[seed] for seed in sorted(set(x) & set(y))})


def proxy_tolerance(s: Setting, d: Draws, baseline: str | None) -> float:
    """PROXY_TOLERANCE x the baseline's mean final proxy gain over the base model; NaN without its final scores."""
    values = final_of(d, baseline, "proxy") if baseline else {}
    if not values:
        return math.nan
    return PROXY_TOLERANCE * abs(float(np.mean([v[0] for v in values.values()])) - float(d.base["proxy"][0]))


def paper_pair(s: Setting, baseline: str, guard: str, column: str) -> str:
    """The paper's GRPO-Guard minus baseline ``column`` where the setting is in its main table, else ''."""
    c = s.configs[guard]
    rows = PAPER_MAIN[(PAPER_MAIN.backbone == PAPER_BACKBONE.get(c["backbone"]["name"]))
                      & (PAPER_MAIN.task == PAPER_TASK.get(c["task"]["reward"]))].set_index("method")[column]
    method = s.configs[baseline]["variant"]
    if {method, "grpo_guard"} <= set(rows.index):
        return f"{rows['grpo_guard']:.2f} - {rows[method]:.2f} = {rows['grpo_guard'] - rows[method]:+.2f}"
    return ""


def c11_main_table(s: Setting) -> list[dict[str, Any]]:
    """C11, per pair: final Average(gold) guard - baseline > 0, and final proxy guard - baseline >= -tolerance."""
    d = finals(s)
    if not s.pairs or d is None:
        return [untested("C11", C11, "final Average(gold) and proxy", "no scored baseline and GRPO-Guard pair", SRC_MAIN)]
    out = []
    for b, g in s.pairs:
        tol = proxy_tolerance(s, d, b)
        versus = (d.values(final_of(d, g, "avg_gold")), d.values(final_of(d, b, "avg_gold")))
        out.append(row("C11", C11, "final Average(gold), GRPO-Guard minus baseline > 0", [g, b],
                       final_pairs(d, g, b, "avg_gold"), 0.0, math.inf, SRC_MAIN,
                       paper_pair(s, b, g, "avg_gold_printed"), strict=True, versus=versus))
        out.append(row("C11", C11, f"final proxy, GRPO-Guard minus baseline >= -{tol:.3g} ({PROXY_TOLERANCE:g} x the "
                       "baseline's proxy gain over the base)", [g, b], final_pairs(d, g, b, "proxy"), -tol, math.inf,
                       SRC_MAIN, paper_pair(s, b, g, "proxy")))
    return out


C12 = ("(harness check) the public-script preset gives the paper-faithful variant's result; the deviation is one the "
       "paper does not state (paper.md 'What the public code does that the paper does not say')")


def c12_public_presets(s: Setting) -> list[dict[str, Any]]:
    """C12: per preset, final Average(gold) and proxy minus its paper-faithful variant's within tolerance."""
    d = finals(s)
    presets = [(v, s.faithful[(c["variant"], c["sampler"])]) for v, c in s.configs.items()
               if s.faithful[(c["variant"], c["sampler"])] != v]
    if not presets or d is None:
        return [untested("C12", C12, "preset vs paper-faithful variant",
                         "no public-script preset ran" if not presets else "no scored runs", SRC_MAIN)]
    out = []
    for preset, ref in presets:
        keys = sorted(k for k in set(s.configs[preset]) | set(s.configs[ref])
                      if k != "seed" and s.configs[preset].get(k) != s.configs[ref].get(k))
        deviation = ", ".join(f"{k}: {s.configs[preset].get(k)}" for k in keys)
        tol = proxy_tolerance(s, d, s.baseline)
        out.append(row("C12", C12, f"{deviation}: final Average(gold) minus {ref}'s within +-{GOLD_TOLERANCE:g}",
                       [preset, ref], final_pairs(d, preset, ref, "avg_gold"), -GOLD_TOLERANCE, GOLD_TOLERANCE, SRC_MAIN))
        check = f"{deviation}: final proxy minus {ref}'s within +-{tol:.3g} ({PROXY_TOLERANCE:g} x the baseline's proxy gain)"
        out.append(row("C12", C12, check, [preset, ref], final_pairs(d, preset, ref, "proxy"), -tol, tol, SRC_MAIN)
                   if math.isfinite(tol) else
                   untested("C12", C12, check, "no scored baseline run: the tolerance is a share of its proxy gain",
                            SRC_MAIN, [preset, ref]))
    return out
