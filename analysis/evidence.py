"""One setting's run files as evidence for the claims: the frames (``Setting``), per-seed values with their
within-run resamples (``Values``) and a claims-table row with its interval, its source and its verdict.

Variants take their roles from their own run config (``config.yaml``: method ``variant`` and ``sampler``): the
first variant of a (method, sampler) in the setting's order is the paper-faithful one, later ones are presets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import yaml

from analysis.resample import improvement_interval, interval, probability_of_improvement
from analysis.runs import read_runs, run_folders
from analysis.stats import INCONCLUSIVE, NOT_TESTED, band_verdict, seeds_needed
from analysis.tables import base_metrics, with_average_gold
from analysis.units import UnitTable, average_gold
from guard.schedule import SCHEDULES

BASELINE_METHODS = ("flowgrpo", "dancegrpo")
COLUMNS = ["id", "claim", "check", "variants", "per_seed", "seeds", "mean", "ci95_low", "ci95_high", "band_low",
           "band_high", "strict", "verdict", "reason", "covers", "units", "seed_sd", "seeds_needed", "p_improvement",
           "p_improvement_low", "p_improvement_high", "paper", "source"]
NO_UNITS = "no per-image scores (a run written before eval_units.jsonl / scores/units.jsonl): interval over seeds only"


def config_of(folder: Path) -> dict[str, Any]:
    """The trainer's resolved config of one run (config.yaml in the run folder)."""
    path = folder / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the trainer writes it at the start of every run")
    return yaml.safe_load(path.read_text())


def first_configs(root: Path, variants: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run config of each variant's first finished seed under ``root``, in the order of ``variants``."""
    first = {}
    for variant, _, folder in run_folders(root):
        first.setdefault(variant, folder)
    return {v: config_of(first[v]) for v in variants if v in first}


def faithful_variants(configs: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(method, sampler) -> the first variant running it (the paper-faithful one; later ones are presets)."""
    out: dict[tuple[str, str], str] = {}
    for variant, c in configs.items():
        out.setdefault((c["variant"], c["sampler"]), variant)
    return out


def read_or_empty(root: Path, name: str, variants: Sequence[str], seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """``name`` of every finished run of ``variants`` (of ``seeds``, all if None); empty where no run has it."""
    try:
        frame = read_runs(root, name, list(variants))
    except FileNotFoundError:
        return pd.DataFrame(columns=["variant", "seed"])
    return frame[frame.seed.isin(seeds)].reset_index(drop=True) if seeds is not None else frame


def read_base(root: Path, name: str) -> pd.DataFrame | None:
    """base/scores/``name`` (the base model's final scores), None before the score rule wrote it."""
    path = root / "base" / "scores" / name
    return pd.read_json(path, lines=True) if path.is_file() and path.stat().st_size else None


def runs_of(frame: pd.DataFrame, keys: Sequence[str] = ("variant", "seed")) -> set[tuple]:
    """The (variant, seed[, iteration]) keys present in ``frame``."""
    return set(zip(*(frame[k] for k in keys))) if len(frame) else set()


@dataclass
class Setting:
    """One setting's finished runs, read by ``Setting.read`` from results/<exp>/<backbone>/<task>, and its
    analysis settings; every claim is computed from these frames."""

    settings: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    raw_steps: pd.DataFrame
    raw_evals: pd.DataFrame
    raw_scores: pd.DataFrame
    base_row: pd.DataFrame | None
    eval_units: pd.DataFrame
    final_units: pd.DataFrame
    base_units: pd.DataFrame | None

    @classmethod
    def read(cls, root: Path, settings: dict[str, Any], seeds: Sequence[int] | None = None) -> Setting:
        """Every finished run of the setting's variants under ``root`` (only ``seeds`` where given)."""
        root, variants = Path(root), settings["variants"]
        read = lambda name: read_or_empty(root, name, variants, seeds)  # noqa: E731
        return cls(settings, first_configs(root, variants), read("steps.jsonl"), read("eval.jsonl"),
                   read(str(Path("scores") / "summary.jsonl")), read_base(root, "summary.jsonl"),
                   read("eval_units.jsonl"), read(str(Path("scores") / "units.jsonl")), read_base(root, "units.jsonl"))

    # --- roles ------------------------------------------------------------------------------------
    @cached_property
    def faithful(self) -> dict[tuple[str, str], str]:
        return faithful_variants(self.configs)

    @property
    def baseline(self) -> str | None:
        return self.settings.get("baseline") if self.settings.get("baseline") in self.configs else None

    @property
    def sampler(self) -> str | None:
        """The baseline's sampler (else the first variant's): the roles of the ablation rows are taken on it."""
        first = self.baseline or next(iter(self.configs), None)
        return self.configs[first]["sampler"] if first else None

    def role(self, method: str, sampler: str | None = None) -> str | None:
        """The paper-faithful variant of a method on the baseline's sampler (or the one given)."""
        return self.faithful.get((method, sampler or self.sampler))

    @cached_property
    def pairs(self) -> list[tuple[str, str]]:
        """(baseline, GRPO-Guard) per sampler: the paper's FlowGRPO / DanceGRPO rows and their GRPO-Guard rows."""
        out = []
        for (method, sampler), variant in self.faithful.items():
            guard = self.faithful.get(("grpo_guard", sampler))
            if method in BASELINE_METHODS and guard:
                out.append((variant, guard))
        return out

    def schedule_h(self, variant: str) -> pd.Series:
        """h_k of a variant's own SDE schedule, indexed by step k."""
        c = self.configs[variant]
        return pd.Series(SCHEDULES[c["sampler"]](c["num_steps"], c["shift"], c["noise_level"]).h.double().numpy())

    # --- frames -----------------------------------------------------------------------------------
    @cached_property
    def steps(self) -> pd.DataFrame:
        """Off-policy rows of steps.jsonl (minibatches after the first of a rollout)."""
        return self.raw_steps[self.raw_steps["update"] > 0] if "update" in self.raw_steps else self.raw_steps

    @cached_property
    def gold(self) -> list[str]:
        """The setting's gold metrics that the training-time evaluation scores."""
        return [g for g in self.settings["gold"] if g in self.raw_evals.columns]

    @cached_property
    def evals(self) -> pd.DataFrame:
        """eval.jsonl of every run with avg_gold relative to the iteration-0 evaluation (as the comparison tables)."""
        if self.raw_evals.empty:
            return self.raw_evals
        return with_average_gold(self.raw_evals, base_metrics(self.raw_evals, self.gold), self.gold)

    @cached_property
    def base(self) -> dict[str, float] | None:
        return self.base_row.iloc[0].to_dict() if self.base_row is not None else None

    @cached_property
    def scores(self) -> pd.DataFrame:
        """Final scores of every run with avg_gold vs the base model's (the main table)."""
        if self.raw_scores.empty or self.base is None:
            return pd.DataFrame(columns=["variant", "seed"])
        return with_average_gold(self.raw_scores, self.base, self.settings["gold"])

    # --- per-image evaluation units under every draw ------------------------------------------------
    @cached_property
    def eval_draws(self) -> Draws | None:
        """Every evaluation's proxy, gold and Average(gold) under every draw; None unless every run has its units."""
        keys = ("variant", "seed", "iteration")
        if self.raw_evals.empty or runs_of(self.eval_units, keys) != runs_of(self.raw_evals, keys):
            return None  # a run without units, or with units of only some of its evaluations (resumed across versions)
        table = UnitTable(self.eval_units, ["variant", "seed", "iteration"])
        first = (table.rows.iteration == 0).to_numpy()
        return Draws.of(table, self.gold, lambda v: v[:, first].mean(axis=1))  # base: the iteration-0 evaluations

    @cached_property
    def final_draws(self) -> Draws | None:
        """Final scores of every run and of the base model under every draw; None unless all have their units."""
        if self.raw_scores.empty or self.base_units is None or runs_of(self.final_units) != runs_of(self.raw_scores):
            return None
        units = pd.concat([self.final_units, self.base_units.assign(variant="base", seed=-1)], ignore_index=True)
        table = UnitTable(units.drop(columns=["file"], errors="ignore"), ["variant", "seed"])
        is_base = (table.rows.variant == "base").to_numpy()
        return Draws.of(table, self.settings["gold"], lambda v: v[:, is_base][:, 0])  # base: the base model's row


@dataclass
class Draws:
    """Set metrics (D, R) of evaluations ``rows`` (variant, seed[, iteration]) under draw 0 (the data) and resamples."""

    rows: pd.DataFrame
    metrics: dict[str, np.ndarray]
    base: dict[str, np.ndarray]
    covers: str
    undefined: dict[str, int]
    units: str = ""
    """How many units one run's set has, e.g. '144 images'."""
    resampled: bool = True
    """False: seed-only evidence (draw 0 alone)."""

    @classmethod
    def of(cls, table: UnitTable, gold: Sequence[str], base_of: Callable[[np.ndarray], np.ndarray]) -> Draws:
        """Proxy, ``gold`` and Average(gold) of ``table``'s evaluations under every draw; ``base_of`` picks the base
        model's (D,) values of a metric's (D, R) array (relative to which Average(gold) is taken)."""
        metrics = {n: table.metric(n) for n in ["proxy", *gold]}
        base = {n: base_of(v) for n, v in metrics.items()}
        metrics["avg_gold"] = average_gold(metrics, base, gold)
        return cls(table.rows, metrics, base, table.draws.covers, table.undefined, f"{len(table.images)} images")

    def values(self, arrays: dict[int, np.ndarray], note: str = "") -> Values:
        """Values of a check from its per-seed (D,) arrays under these draws."""
        if not self.resampled:
            return Values({seed: float(a[0]) for seed, a in arrays.items()}, None, note=note)
        left_out = "; ".join(f"{n} of {len(next(iter(self.metrics.values()))) - 1} resamples left a tag of {m} without "
                             "images (its mean over tags leaves that tag out)" for m, n in self.undefined.items())
        return Values.of(arrays, self.covers, self.units, "; ".join(x for x in (note, left_out) if x))

    def run(self, variant: str, seed: int, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(iterations (E,), values (D, E)) of one run's evaluations, by iteration."""
        mask = ((self.rows.variant == variant) & (self.rows.seed == seed)).to_numpy()
        order = np.argsort(self.rows.iteration.to_numpy()[mask]) if "iteration" in self.rows else slice(None)
        its = self.rows.iteration.to_numpy()[mask][order] if "iteration" in self.rows else np.zeros(mask.sum())
        return its, self.metrics[column][:, mask][:, order]

    def seeds(self, variant: str) -> list[int]:
        return sorted(int(s) for s in self.rows.seed[self.rows.variant == variant].unique())


@dataclass
class Values:
    """A check's value per seed, and per seed its within-run resamples (None: seed-only evidence)."""

    per_seed: dict[int, float]
    replicates: dict[int, np.ndarray] | None = None
    covers: str = "seeds"
    units: str = ""
    note: str = ""

    @classmethod
    def of(cls, arrays: dict[int, np.ndarray], covers: str, units: str, note: str = "") -> Values:
        """From per-seed (D,) arrays whose draw 0 is the data."""
        return cls({s: float(a[0]) for s, a in arrays.items()}, {s: a[1:] for s, a in arrays.items()}, covers, units, note)

    def finite(self) -> tuple[list[int], np.ndarray]:
        seeds = sorted(s for s, v in self.per_seed.items() if v is not None and math.isfinite(v))
        return seeds, np.array([self.per_seed[s] for s in seeds], dtype=float)


def describe(values: Values, seeds: list[int]) -> tuple[str, str]:
    """(covers, units) columns: what the interval resamples and how many of each."""
    n = len(seeds)
    if values.replicates is None:
        return "seeds", f"{n} seeds"
    if n == 1:
        return f"{values.covers} (one seed: evaluation or iteration noise only)", values.units
    return f"seeds x {values.covers}", f"{n} seeds x {values.units}"


def undefined_note(values: Values, seeds: list[int]) -> str:
    """How many resamples left the value undefined (reported, not hidden)."""
    if values.replicates is None:
        return ""
    bad = sum(int((~np.isfinite(values.replicates[s])).sum()) for s in seeds)
    total = sum(len(values.replicates[s]) for s in seeds)
    return f"{bad} of {total} resamples undefined and left out" if bad else ""


def improvement(x: Values, y: Values) -> tuple[float, float, float]:
    """P(X > Y) over the seeds both have (rliable's probability of improvement) with its two-stage bootstrap
    interval; with one seed, the share of the within-run resamples in which X > Y (no interval)."""
    seeds = sorted(set(x.finite()[0]) & set(y.finite()[0]))
    if not seeds:
        return math.nan, math.nan, math.nan
    point = probability_of_improvement([x.per_seed[s] for s in seeds], [y.per_seed[s] for s in seeds])
    if x.replicates is None or y.replicates is None:
        return point, math.nan, math.nan
    xs, ys = np.stack([x.replicates[s] for s in seeds]), np.stack([y.replicates[s] for s in seeds])
    if len(seeds) == 1:
        return float(np.mean(xs[0] > ys[0])), math.nan, math.nan
    return (point, *improvement_interval(xs, ys))


def row(id_: str, claim: str, check: str, variants: Sequence[str], values: Values, lo: float, hi: float,
        source: str, paper: str = "", strict: bool = False, versus: tuple[Values, Values] | None = None) -> dict[str, Any]:
    """One table row: the check's per-seed values, their interval and its verdict against the band [lo, hi]
    ((lo, hi) if ``strict``); ``versus`` = (X, Y) adds P(X > Y)."""
    seeds, v = values.finite()
    base = {"id": id_, "claim": claim, "check": check, "variants": ", ".join(variants),
            "per_seed": "; ".join(f"s{s}: {x:.4g}" for s, x in zip(seeds, v)), "seeds": len(seeds),
            "band_low": lo, "band_high": hi, "strict": strict, "paper": paper, "source": source}
    if len(seeds) == 0:
        return {**untested(id_, claim, check, "no seed has this value", source, variants), **base, "reason": "no seed has this value"}
    replicates = None if values.replicates is None else np.stack([values.replicates[s] for s in seeds])
    if replicates is None and len(seeds) == 1:
        return {**untested(id_, claim, check, f"one seed and {NO_UNITS}", source, variants), **base,
                "mean": float(v[0]), "reason": f"one seed and {NO_UNITS}"}
    low, high = interval(v, replicates)
    verdict = band_verdict(low, high, lo, hi, strict)
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    needed = seeds_needed(float(v.mean()), sd, lo, hi) if verdict == INCONCLUSIVE and len(v) > 1 else None
    reasons = [r for r in (values.note, NO_UNITS if values.replicates is None else "", undefined_note(values, seeds)) if r]
    covers, units = describe(values, seeds)
    p = improvement(*versus) if versus else (math.nan,) * 3
    return {**base, "mean": float(v.mean()), "ci95_low": low, "ci95_high": high, "verdict": verdict,
            "reason": "; ".join(reasons), "covers": covers, "units": units, "seed_sd": sd, "seeds_needed": needed,
            "p_improvement": p[0], "p_improvement_low": p[1], "p_improvement_high": p[2]}


def untested(id_: str, claim: str, check: str, reason: str, source: str, variants: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": id_, "claim": claim, "check": check, "variants": ", ".join(variants), "per_seed": "", "seeds": 0,
            "mean": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "band_low": math.nan, "band_high": math.nan,
            "strict": False, "verdict": NOT_TESTED, "reason": reason, "covers": "", "units": "", "seed_sd": math.nan,
            "seeds_needed": None, "p_improvement": math.nan, "p_improvement_low": math.nan,
            "p_improvement_high": math.nan, "paper": "", "source": source}


def frame_draws(frame: pd.DataFrame, keys: list[str], columns: Sequence[str]) -> Draws:
    """Seed-only evidence in the shape of ``Draws``: the logged set metrics as draw 0, no resamples."""
    frame = frame.sort_values(keys).reset_index(drop=True)
    metrics = {c: frame[c].to_numpy(float)[None, :] for c in columns if c in frame}
    return Draws(frame[keys], metrics, {}, "", {}, resampled=False)


def curves(s: Setting) -> Draws | None:
    """The training-time evaluations: per-image resamples where every run has its units, else the logged means."""
    if s.evals.empty:
        return None
    if s.eval_draws is not None:
        return s.eval_draws
    d = frame_draws(s.evals, ["variant", "seed", "iteration"], ["proxy", *s.gold, "avg_gold"])
    d.base = {n: np.array([v]) for n, v in base_metrics(s.raw_evals, s.gold).items()}
    return d


def finals(s: Setting) -> Draws | None:
    """The final evaluations (and the base model's): resampled where all have units, else the logged means."""
    if s.scores.empty:
        return None
    if s.final_draws is not None:
        return s.final_draws
    d = frame_draws(s.scores, ["variant", "seed"], ["proxy", *s.settings["gold"], "avg_gold"])
    d.base = {"proxy": np.array([s.base["proxy"]])}
    return d
