"""The paper's claims as checks on one setting's run files: per-seed values, a 95% t-interval over seeds and a verdict.

Each claim C1..C12 is a function of a ``Setting`` returning rows (one per variant or pair it concerns). A
row quotes the paper (``claim``), says what is measured and the band in which the claim holds (``check``),
lists the per-seed values, their mean and t-interval (analysis.stats) and the verdict; a claim whose inputs
the setting lacks is ``not tested`` with the reason. Variants take their roles from their own run config
(``config.yaml``: method ``variant`` and ``sampler``): the first variant of a (method, sampler) in the
setting's order is the paper-faithful one, later ones are presets (e.g. the public script's).
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
from scipy import stats as sps

from analysis.runs import read_runs, run_folders
from analysis.stats import NOT_TESTED, judge
from analysis.tables import PAPER_BACKBONE, PAPER_MAIN, PAPER_TASK, base_metrics, matched_proxy, with_average_gold
from guard.schedule import SCHEDULES

BASELINE_METHODS = ("flowgrpo", "dancegrpo")
FAR_LESS = 0.5            # C3: A>0 upper clips at most half as often as A<0 lower clips
SYMMETRIC = (2 / 3, 3 / 2)  # C4: ratio of the two clip fractions
ABOUT = 2.0               # C5: "about x" = within a factor 2 of x
PAPER_SPREAD = {"baseline": 20.0, "grpo_guard": 2.5}
RELATIVE_ERROR = 0.2      # C2: |measured + b| / b at the low-noise steps, where the shift is resolved
COLLAPSE = 0.5            # C10: a run has collapsed once Average(gold) falls below half the base model's
PROXY_TOLERANCE = 0.1     # C11/C12: a proxy "no lower" within 10% of the baseline's proxy gain over the base
GOLD_TOLERANCE = 0.05     # C12: Average(gold) unchanged within 0.05 (5% of the base model)

COLUMNS = ["id", "claim", "check", "variants", "per_seed", "seeds", "mean", "ci95_low", "ci95_high", "verdict",
           "reason", "seeds_needed", "paper", "source"]


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


def read_or_empty(root: Path, name: str, variants: Sequence[str]) -> pd.DataFrame:
    """``name`` of every finished run of ``variants``; empty where no run has it."""
    try:
        return read_runs(root, name, list(variants))
    except FileNotFoundError:
        return pd.DataFrame(columns=["variant", "seed"])


def base_scores(root: Path) -> dict[str, float] | None:
    """The base model's final scores (base/scores/summary.jsonl), None before the score rule wrote them."""
    path = root / "base" / "scores" / "summary.jsonl"
    return pd.read_json(path, lines=True).iloc[0].to_dict() if path.is_file() else None


@dataclass
class Setting:
    """One setting's finished runs, as read by ``Setting.read`` from results/<exp>/<backbone>/<task>, and its
    analysis settings; every claim is computed from these frames."""

    settings: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    """Run config of each variant's first seed, in the setting's variant order."""
    raw_steps: pd.DataFrame
    """steps.jsonl of every run, with variant and seed columns."""
    raw_evals: pd.DataFrame
    """eval.jsonl of every run."""
    raw_scores: pd.DataFrame
    """scores/summary.jsonl (final scores) of every run."""
    base: dict[str, float] | None
    """The base model's final scores; None where the score rule has not scored it."""

    @classmethod
    def read(cls, root: Path, settings: dict[str, Any]) -> Setting:
        """Every finished run of the setting's variants under ``root``."""
        root, variants = Path(root), settings["variants"]
        return cls(settings, first_configs(root, variants), read_or_empty(root, "steps.jsonl", variants),
                   read_or_empty(root, "eval.jsonl", variants),
                   read_or_empty(root, str(Path("scores") / "summary.jsonl"), variants), base_scores(root))

    @cached_property
    def faithful(self) -> dict[tuple[str, str], str]:
        """(method, sampler) -> the first variant running it."""
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

    @cached_property
    def steps(self) -> pd.DataFrame:
        """Off-policy rows of steps.jsonl (minibatches after the first of a rollout)."""
        return self.raw_steps[self.raw_steps["update"] > 0] if "update" in self.raw_steps else self.raw_steps

    @cached_property
    def per_step(self) -> pd.DataFrame:
        """Mean of each step diagnostic per variant, seed and denoising step."""
        columns = [c for c in self.steps.columns if c not in ("variant", "seed", "step", "iteration", "update")]
        return self.steps.groupby(["variant", "seed", "step"])[columns].mean()

    @cached_property
    def gold(self) -> list[str]:
        """The setting's gold metrics that the training-time evaluation scores (a setting may score some only at the end)."""
        return [g for g in self.settings["gold"] if g in self.raw_evals.columns]

    @cached_property
    def evals(self) -> pd.DataFrame:
        """eval.jsonl of every run with avg_gold relative to the iteration-0 evaluation (as the comparison tables)."""
        if self.raw_evals.empty:
            return self.raw_evals
        return with_average_gold(self.raw_evals, base_metrics(self.raw_evals, self.gold), self.gold)

    @cached_property
    def scores(self) -> pd.DataFrame:
        """Final scores (scores/summary.jsonl) of every run with avg_gold vs the base model's (the main table)."""
        if self.raw_scores.empty or self.base is None:
            return pd.DataFrame(columns=["variant", "seed"])
        return with_average_gold(self.raw_scores, self.base, self.settings["gold"])

    @property
    def base_proxy(self) -> float:
        return float(self.base["proxy"])

    def matched(self, variants: Sequence[str]) -> pd.DataFrame:
        """matched_proxy over the first comparison holding ``variants`` (as its table), else over them alone."""
        group = next((list(c) for c in (self.settings.get("comparisons") or {}).values() if set(variants) <= set(c)),
                     list(variants))
        part = self.evals[self.evals.variant.isin(group)]
        return matched_proxy(part, self.gold, base_metrics(self.evals, self.gold))

    def schedule_h(self, variant: str) -> pd.Series:
        """h_k of a variant's own SDE schedule, indexed by step k."""
        c = self.configs[variant]
        return pd.Series(SCHEDULES[c["sampler"]](c["num_steps"], c["shift"], c["noise_level"]).h.double().numpy())


def row(id_: str, claim: str, check: str, variants: Sequence[str], per_seed: dict[int, float], lo: float, hi: float,
        source: str, paper: str = "", strict: bool = False) -> dict[str, Any]:
    """One table row: the check's per-seed values and its verdict against the band [lo, hi] ((lo, hi) if ``strict``)."""
    v = judge(per_seed, lo, hi, strict)
    return {"id": id_, "claim": claim, "check": check, "variants": ", ".join(variants),
            "per_seed": "; ".join(f"s{s}: {x:.4g}" for s, x in sorted(per_seed.items())), "seeds": v.seeds,
            "mean": v.mean, "ci95_low": v.low, "ci95_high": v.high, "verdict": v.verdict, "reason": v.reason,
            "seeds_needed": v.seeds_needed, "paper": paper, "source": source}


def untested(id_: str, claim: str, check: str, reason: str, source: str, variants: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": id_, "claim": claim, "check": check, "variants": ", ".join(variants), "per_seed": "", "seeds": 0,
            "mean": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "verdict": NOT_TESTED, "reason": reason,
            "seeds_needed": None, "paper": "", "source": source}


def per_seed(frame: pd.DataFrame, variant: str, fn: Callable[[pd.DataFrame], float]) -> dict[int, float]:
    """fn of each seed's per-step table (or rows) of one variant."""
    part = frame[frame.index.get_level_values("variant") == variant] if "variant" in frame.index.names \
        else frame[frame.variant == variant]
    return {int(seed): float(fn(g)) for seed, g in part.groupby("seed")}  # a column or an index level


def low_noise(steps: pd.Index) -> np.ndarray:
    """The lower-noise half of the trained steps: k >= their median."""
    k = np.asarray(steps)
    return k >= np.median(k)


def has_steps(s: Setting, variant: str | None, column: str) -> bool:
    return variant is not None and not s.steps.empty and column in s.steps and \
        s.steps.loc[s.steps.variant == variant, column].notna().any()


# --- C1-C5: the off-policy ratio per denoising step (steps.jsonl) -------------------------------------------

SRC_STEPS = "tables/step_diagnostics.csv; figures/logratio_per_step"
C1 = ("Baseline log-ratio mean < 0 at every step once the policy moves, worst at low-noise steps; the per-step "
      "std differs strongly across steps")


def c1_baseline_shift(s: Setting) -> list[dict[str, Any]]:
    """C1: max_k mean log r_k < 0, and |shift/std| larger at the low-noise half of the steps than at the high-noise half."""
    b = s.baseline
    if not has_steps(s, b, "log_ratio_mean"):
        return [untested("C1", C1, "baseline log-ratio mean per step", "no baseline run with steps.jsonl", SRC_STEPS)]

    def growth(g: pd.DataFrame) -> float:
        ratio = (g.log_ratio_mean / g.log_ratio_std).abs().to_numpy()
        low = low_noise(g.index.get_level_values("step"))
        return float(ratio[low].mean() / ratio[~low].mean())

    return [row("C1", C1, "max over trained steps of the off-policy log-ratio mean < 0", [b],
                per_seed(s.per_step, b, lambda g: g.log_ratio_mean.max()), -math.inf, 0.0, SRC_STEPS, strict=True),
            row("C1", C1, "|shift/std| at the low-noise half of the steps over the high-noise half > 1", [b],
                per_seed(s.per_step, b, growth), 1.0, math.inf, SRC_STEPS, strict=True)]


C2 = "E[log r_k] = -|dmu|^2 / (2 s_k^2) < 0: the ratio is shifted below 1 by a step-dependent amount"


def c2_predicted_shift(s: Setting) -> list[dict[str, Any]]:
    """C2: measured mean log r_k = -b_k within its standard error at every step (Bonferroni over the steps), and
    relative error |mean log r_k + b_k| / b_k below RELATIVE_ERROR where the shift is resolved (low-noise half)."""
    b = s.baseline
    if not has_steps(s, b, "bias_mean"):
        return [untested("C2", C2, "measured vs predicted mean", "no baseline run with steps.jsonl", SRC_STEPS)]
    raw = s.steps[s.steps.variant == b]
    z_max = bonferroni_z(raw.step.nunique())
    z = {int(seed): max_z(part.log_ratio_mean + part.bias_mean, part.log_ratio_std, part)
         for seed, part in raw.groupby("seed")}

    def relative(g: pd.DataFrame) -> float:
        low = low_noise(g.index.get_level_values("step"))
        return float(((g.log_ratio_mean + g.bias_mean).abs() / g.bias_mean.abs()).to_numpy()[low].max())

    return [row("C2", C2, f"max over steps of |measured mean - predicted (-b)| / its standard error < {z_max:.2f} "
                "(Bonferroni 95%)", [b], z, -math.inf, z_max, SRC_STEPS + " (predicted_mean)", strict=True),
            row("C2", C2, f"low-noise half of the steps: max of |measured mean - predicted (-b)| / b < {RELATIVE_ERROR:g}",
                [b], per_seed(s.per_step, b, relative), -math.inf, RELATIVE_ERROR, SRC_STEPS + " (predicted_mean)",
                strict=True)]


C3 = ("Positive-advantage samples almost never pass 1 + eps_clip, so their updates are never clipped; negative ones "
      "are clipped too often")
SRC_CLIP = "tables/step_diagnostics.csv; figures/clip_fractions"


def clip_ratio(g: pd.DataFrame) -> float:
    """Over the low-noise half of the steps: fraction of A>0 above 1+eps over fraction of A<0 below 1-eps."""
    low = low_noise(g.index.get_level_values("step"))
    below = g.clip_neg_lower.to_numpy()[low].mean()
    return float(g.clip_pos_upper.to_numpy()[low].mean() / below) if below > 0 else math.nan


def c3_clip_asymmetry(s: Setting) -> list[dict[str, Any]]:
    """C3: baseline clip fraction (A>0, above 1+eps) / (A<0, below 1-eps) at the low-noise steps <= FAR_LESS."""
    b = s.baseline
    if not has_steps(s, b, "clip_pos_upper"):
        return [untested("C3", C3, "clip fractions by advantage sign", "no baseline run with steps.jsonl", SRC_CLIP)]
    return [row("C3", C3, f"low-noise half of the steps: (A>0 above 1+eps) / (A<0 below 1-eps) <= {FAR_LESS:g} "
                "('far less often': at most half)", [b], per_seed(s.per_step, b, clip_ratio), -math.inf, FAR_LESS, SRC_CLIP)]


C4 = "RatioNorm centres the log-ratio at 0 with a step-independent spread; clipping fires symmetrically"


def bonferroni_z(steps: int, level: float = 0.95) -> float:
    """z_{1 - (1 - level) / (2 K)}: a two-sided bound that all K steps' z-scores stay below under the null."""
    return float(sps.norm.ppf(1 - (1 - level) / (2 * steps)))


def max_z(value: pd.Series, std: pd.Series, raw: pd.DataFrame) -> float:
    """max_k |mean_k| / SE_k of a per-minibatch mean ``value`` with per-minibatch std ``std`` over n samples:
    mean_k = sum_i n_i value_i / N, SE_k = sqrt(sum_i n_i std_i^2) / N (samples reused across inner epochs make
    the SE optimistic)."""
    frame = pd.DataFrame({"step": raw.step, "n": raw.n, "nv": raw.n * value, "nvar": raw.n * std ** 2})
    sums = frame.groupby("step")[["n", "nv", "nvar"]].sum()
    return float(((sums.nv / sums.n).abs() / (np.sqrt(sums.nvar) / sums.n)).max())


def c4_normalised(s: Setting) -> list[dict[str, Any]]:
    """C4, per normalised variant: |mean|/SE below the Bonferroni 95% z over the steps; clip ratio in SYMMETRIC."""
    out = []
    for method in ("rationorm", "grpo_guard"):
        v = s.role(method)
        if not has_steps(s, v, "norm_log_ratio_mean"):
            out.append(untested("C4", C4, f"{method}: normalised mean and clip symmetry",
                                f"no {method} run on the baseline's sampler with steps.jsonl", SRC_STEPS, [method]))
            continue
        raw = s.steps[s.steps.variant == v]
        z_max = bonferroni_z(raw.step.nunique())
        z = {int(seed): max_z(part.norm_log_ratio_mean, part.norm_log_ratio_std, part) for seed, part in raw.groupby("seed")}
        out.append(row("C4", C4, f"max over steps of |normalised mean| / its standard error < {z_max:.2f} "
                       "(Bonferroni 95%)", [v], z, -math.inf, z_max, SRC_STEPS, strict=True))
        out.append(row("C4", C4, f"low-noise half: (A>0 above 1+eps) / (A<0 below 1-eps) in "
                       f"[{SYMMETRIC[0]:.2f}, {SYMMETRIC[1]:.2f}]", [v], per_seed(s.per_step, v, clip_ratio),
                       *SYMMETRIC, SRC_CLIP))
    return out


C5 = ("Per-step gradient magnitude grows as noise falls (about 20x spread); the 1/h weight reduces the spread to "
      "about 2.5x. Gradient scale per step: baseline beta (dmu + s eps) / sigma^2; RatioNorm beta h eps; "
      "GRPO-Guard beta eps")
SRC_GRAD = "grad_norm_spread.csv; figures/grad_norm"


def spread(g: pd.DataFrame) -> float:
    """max_k / min_k of the mean per-step gradient norm."""
    norms = g.step_grad_norm.dropna()
    return float(norms.max() / norms.min()) if len(norms) > 1 else math.nan


def about(x: float) -> tuple[float, float]:
    """'about x': within a factor ABOUT of x."""
    return x / ABOUT, x * ABOUT


def c5_gradient_spread(s: Setting) -> list[dict[str, Any]]:
    """C5: per-step gradient-norm spread vs the paper's numbers and vs the schedule-only predictions."""
    out = []
    for v in s.configs:
        method = s.configs[v]["variant"]
        if not has_steps(s, v, "step_grad_norm"):
            out.append(untested("C5", C5, f"{v}: gradient-norm spread", "no step_grad_norm logged", SRC_GRAD, [v]))
            continue
        measured = per_seed(s.per_step, v, spread)
        steps = s.per_step.loc[v].step_grad_norm.dropna().index.get_level_values("step").unique()
        paper_row = method in BASELINE_METHODS and v == s.faithful[(method, s.configs[v]["sampler"])]
        if paper_row:
            out.append(row("C5", C5, f"max/min over steps within a factor {ABOUT:g} of the paper's "
                           f"{PAPER_SPREAD['baseline']:g}x", [v], measured, *about(PAPER_SPREAD["baseline"]), SRC_GRAD,
                           f"{PAPER_SPREAD['baseline']:g}x"))
        if method == "grpo_guard":
            out.append(row("C5", C5, f"max/min over steps within a factor {ABOUT:g} of the paper's "
                           f"{PAPER_SPREAD['grpo_guard']:g}x", [v], measured, *about(PAPER_SPREAD["grpo_guard"]),
                           SRC_GRAD, f"{PAPER_SPREAD['grpo_guard']:g}x"))
        h = s.schedule_h(v).loc[steps]
        predicted = {"rationorm": float(h.max() / h.min()), "grpo_guard": 1.0}.get(method)
        if predicted is None and not paper_row:
            out.append({**row("C5", C5, f"{v} ({method}): max/min over steps; the paper's scale depends on dmu, not on "
                              "the schedule alone", [v], measured, -math.inf, math.inf, SRC_GRAD),
                        "verdict": NOT_TESTED, "reason": "no schedule-only prediction"})  # an infinite band needs no seeds
        elif predicted is not None:
            out.append(row("C5", C5, f"{v} ({method}): max/min within a factor {ABOUT:g} of the schedule's prediction "
                           f"{predicted:.2f}x ({'max h / min h' if method == 'rationorm' else 'constant'} over the "
                           "trained steps)", [v], measured, *about(predicted), SRC_GRAD, f"predicted {predicted:.2f}x"))
    return out


# --- C6-C10: proxy and gold over training (eval.jsonl) ---------------------------------------------------------

SRC_CURVES = "figures/training_curves"
SRC_MATCHED = "tables/ablation.md (matched proxy); figures/gold_vs_proxy"
C6 = "Over training the baseline's proxy rises while gold falls"


def change(s: Setting, variant: str, column: str) -> dict[int, float]:
    """Final minus first evaluation of ``column``, per seed."""
    runs = s.evals[s.evals.variant == variant].sort_values("iteration").groupby("seed")[column]
    return {int(seed): float(values.iloc[-1] - values.iloc[0]) for seed, values in runs}


def c6_baseline_hacking(s: Setting) -> list[dict[str, Any]]:
    """C6: baseline proxy final - first > 0 and Average(gold) final - first < 0."""
    b = s.baseline
    if b not in set(s.evals.variant):
        return [untested("C6", C6, "baseline proxy and gold over training", "no baseline run with eval.jsonl", SRC_CURVES)]
    return [row("C6", C6, "proxy: last minus first evaluation > 0", [b], change(s, b, "proxy"), 0.0, math.inf, SRC_CURVES,
                strict=True),
            row("C6", C6, "Average(gold): last minus first evaluation < 0", [b], change(s, b, "avg_gold"), -math.inf, 0.0,
                SRC_CURVES, strict=True)]


def paired(matched: pd.DataFrame, column: str, a: str, b: str) -> pd.DataFrame:
    """Per seed and level reached by both runs: ``column`` of a and of b."""
    wide = matched.pivot_table(index=["seed", "fraction"], columns="variant", values=column)
    return wide.reindex(columns=[a, b]).dropna()


def by_seed(frame: pd.DataFrame, fn: Callable[[pd.DataFrame], float]) -> dict[int, float]:
    return {int(seed): float(fn(g)) for seed, g in frame.groupby(level="seed")}


def iteration_gap(s: Setting, a: str, b: str) -> dict[int, float]:
    """Per seed: iterations run ``a`` needs to reach the matched proxy levels minus run ``b``'s (mean over the
    levels both reach)."""
    diff = paired(s.matched([b, a]), "iteration", a, b)
    return by_seed(diff, lambda d: (d[a] - d[b]).mean())


def missing(s: Setting, variants: Sequence[str | None], names: Sequence[str]) -> str:
    """Why a matched-proxy claim cannot run, or '' where it can."""
    absent = [n for v, n in zip(variants, names) if v not in set(s.evals.variant)]
    return f"no {', '.join(absent)} run on the baseline's sampler with eval.jsonl" if absent else ""


C7 = "GRPO-Guard is the most stable"


def c7_guard_at_matched_proxy(s: Setting) -> list[dict[str, Any]]:
    """C7, per (baseline, GRPO-Guard) pair: min over matched proxy levels of Average(gold) guard - baseline > 0."""
    if not s.pairs or s.evals.empty:
        return [untested("C7", C7, "Average(gold) at matched proxy", "no baseline and GRPO-Guard pair with eval.jsonl",
                         SRC_MATCHED)]
    out = []
    for b, g in s.pairs:
        diff = paired(s.matched([b, g]), "avg_gold", g, b)
        out.append(row("C7", C7, "GRPO-Guard minus baseline Average(gold), its minimum over the matched proxy levels both "
                       "runs reach, > 0", [g, b], by_seed(diff, lambda d: (d[g] - d[b]).min()), 0.0, math.inf, SRC_MATCHED,
                       strict=True))
    return out


C8 = "Mean-revised already stops most of the gold decline"


def c8_mean_revised(s: Setting) -> list[dict[str, Any]]:
    """C8: at matched proxy, Mean-revised's Average(gold) above the midpoint of the baseline's and GRPO-Guard's."""
    b, mr, g = s.baseline, s.role("mean_revised"), s.role("grpo_guard")
    why = missing(s, [b, mr, g], ["baseline", "Mean-revised", "GRPO-Guard"])
    if why:
        return [untested("C8", C8, "Mean-revised at matched proxy", why, SRC_MATCHED)]
    wide = s.matched([b, mr, g]).pivot_table(index=["seed", "fraction"], columns="variant", values="avg_gold")
    wide = wide.reindex(columns=[b, mr, g]).dropna()
    return [row("C8", C8, "Mean-revised minus the midpoint of baseline and GRPO-Guard Average(gold), mean over the "
                "matched proxy levels all three reach, > 0 (closer to GRPO-Guard)", [mr, b, g],
                by_seed(wide, lambda d: (d[mr] - (d[b] + d[g]) / 2).mean()), 0.0, math.inf, SRC_MATCHED, strict=True)]


C9 = "RatioNorm stops more but raises the proxy slightly slower"


def c9_rationorm_slower(s: Setting) -> list[dict[str, Any]]:
    """C9: iterations to reach each matched proxy level, RatioNorm minus baseline, mean over levels > 0."""
    b, rn = s.baseline, s.role("rationorm")
    why = missing(s, [b, rn], ["baseline", "RatioNorm"])
    if why:
        return [untested("C9", C9, "iterations to reach the proxy levels", why, SRC_MATCHED)]
    return [row("C9", C9, "iterations to reach each matched proxy level, RatioNorm minus baseline, mean over levels > 0 "
                "('slightly' is not tested)", [rn, b], iteration_gap(s, rn, b), 0.0, math.inf, SRC_MATCHED, strict=True)]


C10 = "Temp-Reweight optimizes faster but collapses earlier"


def collapse_iteration(run: pd.DataFrame) -> float:
    """First evaluation iteration with Average(gold) < COLLAPSE; inf where the run never gets there."""
    run = run.sort_values("iteration")
    below = run.iteration[run.avg_gold < COLLAPSE]
    return float(below.iloc[0]) if len(below) else math.inf


def c10_temp_reweight(s: Setting) -> list[dict[str, Any]]:
    """C10: Temp-Reweight reaches the proxy levels in fewer iterations, and falls below COLLAPSE earlier, than the baseline."""
    b, tr = s.baseline, s.role("temp_reweight")
    why = missing(s, [b, tr], ["baseline", "Temp-Reweight"])
    if why:
        return [untested("C10", C10, "Temp-Reweight speed and collapse", why, SRC_MATCHED)]
    runs = s.evals[s.evals.variant.isin([b, tr])].groupby(["seed", "variant"])[["iteration", "avg_gold"]]
    collapse = runs.apply(collapse_iteration).unstack("variant")
    cap = float(s.evals.iteration.max()) + 1  # a run that never collapses counts as collapsing after the last evaluation
    seen = np.isfinite(collapse[[b, tr]]).any(axis=1)
    capped = collapse.clip(upper=cap)
    earlier = {int(seed): float(capped.loc[seed, tr] - capped.loc[seed, b]) for seed in collapse.index[seen]}
    speed = row("C10", C10, "iterations to reach each matched proxy level, Temp-Reweight minus baseline, mean over "
                "levels < 0", [tr, b], iteration_gap(s, tr, b), -math.inf, 0.0, SRC_MATCHED, strict=True)
    check = (f"first evaluation with Average(gold) < {COLLAPSE:g}, Temp-Reweight minus baseline < 0 (a run that never "
             f"gets there counts as iteration {cap:g})")
    if not earlier:
        return [speed, untested("C10", C10, check, f"neither run of any seed falls below Average(gold) {COLLAPSE:g}",
                                SRC_CURVES, [tr, b])]
    return [speed, row("C10", C10, check, [tr, b], earlier, -math.inf, 0.0, SRC_CURVES, strict=True)]


# --- C11-C12: the final evaluation (scores/summary.jsonl, the main table) ------------------------------------

SRC_MAIN = "tables/main.md"
C11 = ("Main table: GRPO-Guard keeps more Avg(gold) than FlowGRPO / DanceGRPO at a similar proxy "
       "(GenEval 0.89 vs 0.84, OCR 0.99 vs 0.88, FLUX PickScore 1.02 vs 0.88)")


def final_pairs(s: Setting, a: str, b: str, column: str) -> dict[int, float]:
    """Per seed both variants have: final ``column`` of a minus b."""
    wide = s.scores[s.scores.variant.isin([a, b])].pivot_table(index="seed", columns="variant", values=column)
    wide = wide.reindex(columns=[a, b]).dropna()
    return {int(seed): float(r[a] - r[b]) for seed, r in wide.iterrows()}


def proxy_tolerance(s: Setting, baseline: str) -> float:
    """PROXY_TOLERANCE x the baseline's mean final proxy gain over the base model; NaN without its final scores."""
    gain = float(s.scores[s.scores.variant == baseline].proxy.mean()) - s.base_proxy
    return PROXY_TOLERANCE * abs(gain)


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
    if not s.pairs or s.scores.empty:
        return [untested("C11", C11, "final Average(gold) and proxy", "no scored baseline and GRPO-Guard pair", SRC_MAIN)]
    out = []
    for b, g in s.pairs:
        tol = proxy_tolerance(s, b)
        out.append(row("C11", C11, "final Average(gold), GRPO-Guard minus baseline > 0", [g, b],
                       final_pairs(s, g, b, "avg_gold"), 0.0, math.inf, SRC_MAIN,
                       paper_pair(s, b, g, "avg_gold_printed"), strict=True))
        out.append(row("C11", C11, f"final proxy, GRPO-Guard minus baseline >= -{tol:.3g} ({PROXY_TOLERANCE:g} x the "
                       "baseline's proxy gain over the base)", [g, b], final_pairs(s, g, b, "proxy"), -tol, math.inf,
                       SRC_MAIN, paper_pair(s, b, g, "proxy")))
    return out


C12 = ("(harness check) the public-script preset gives the paper-faithful variant's result; the deviation is one the "
       "paper does not state (paper.md 'What the public code does that the paper does not say')")


def c12_public_presets(s: Setting) -> list[dict[str, Any]]:
    """C12: per preset, final Average(gold) and proxy minus its paper-faithful variant's within tolerance."""
    presets = [(v, s.faithful[(c["variant"], c["sampler"])]) for v, c in s.configs.items()
               if s.faithful[(c["variant"], c["sampler"])] != v]
    if not presets or s.scores.empty:
        return [untested("C12", C12, "preset vs paper-faithful variant",
                         "no public-script preset ran" if not presets else "no scored runs", SRC_MAIN)]
    out = []
    for preset, ref in presets:
        keys = sorted(k for k in set(s.configs[preset]) | set(s.configs[ref])
                      if k != "seed" and s.configs[preset].get(k) != s.configs[ref].get(k))
        deviation = ", ".join(f"{k}: {s.configs[preset].get(k)}" for k in keys)
        tol = proxy_tolerance(s, s.baseline)
        out.append(row("C12", C12, f"{deviation}: final Average(gold) minus {ref}'s within +-{GOLD_TOLERANCE:g}",
                       [preset, ref], final_pairs(s, preset, ref, "avg_gold"), -GOLD_TOLERANCE, GOLD_TOLERANCE, SRC_MAIN))
        check = f"{deviation}: final proxy minus {ref}'s within +-{tol:.3g} ({PROXY_TOLERANCE:g} x the baseline's proxy gain)"
        out.append(row("C12", C12, check, [preset, ref], final_pairs(s, preset, ref, "proxy"), -tol, tol, SRC_MAIN)
                   if math.isfinite(tol) else
                   untested("C12", C12, check, "no scored baseline run: the tolerance is a share of its proxy gain",
                            SRC_MAIN, [preset, ref]))
    return out


CLAIMS = [c1_baseline_shift, c2_predicted_shift, c3_clip_asymmetry, c4_normalised, c5_gradient_spread,
          c6_baseline_hacking, c7_guard_at_matched_proxy, c8_mean_revised, c9_rationorm_slower, c10_temp_reweight,
          c11_main_table, c12_public_presets]


def claims_table(root: Path, settings: dict[str, Any]) -> pd.DataFrame:
    """Every claim's rows for one setting."""
    s = Setting.read(root, settings)
    return pd.DataFrame([r for claim in CLAIMS for r in claim(s)], columns=COLUMNS)


def formatted(claims: pd.DataFrame) -> pd.DataFrame:
    """The table for reading: verdict first, the paper's words once per claim ('"' below), 'mean [95% interval]',
    per-seed values and where each row comes from."""
    def value(r: pd.Series) -> str:
        if not math.isfinite(r["mean"]):
            return ""
        ci = f" [{r.ci95_low:.3g}, {r.ci95_high:.3g}]" if math.isfinite(r.ci95_low) else ""
        return f"{r['mean']:.3g}{ci}"

    text = ["claim", "check", "variants", "per_seed", "reason", "paper", "source"]
    claims = claims.assign(**{c: claims[c].fillna("").astype(str) for c in text})  # a CSV read back has NaN for ''
    verdict = [v + (f" ({r})" if r else "") + (f"; about {int(n)} seeds would decide" if pd.notna(n) else "")
               for v, r, n in zip(claims.verdict, claims.reason, claims.seeds_needed)]
    keys = [c for c in ("backbone", "task") if c in claims]
    repeated = claims.duplicated(subset=[*keys, "id", "claim"])
    return pd.DataFrame({**{k: claims[k] for k in keys}, "id": claims.id, "verdict": verdict,
                         "claim (paper)": claims.claim.where(~repeated, '"'), "check (holds inside the stated band)": claims.check,
                         "variants": claims.variants, "mean [95% t-interval over seeds]": [value(r) for _, r in claims.iterrows()],
                         "per seed": claims.per_seed, "paper": claims.paper, "from": claims.source})


CAPTION = ("The paper's claims as checks. Each row: the paper's words, what is measured and the band in which the claim "
           "holds, the per-seed values, their mean and 95% t-interval over seeds (Student t, n - 1 degrees of freedom). "
           "Verdict: interval inside the band = reproduced, outside = not reproduced, across an edge = inconclusive (with "
           "the seeds a decisive verdict would need at the measured mean and spread); not tested = inputs missing or one seed. "
           "A strict check (< or >) excludes its edge.")


def write_claims(claims: pd.DataFrame, stem: Path) -> None:
    """``stem``.csv (raw values), .md and .tex (formatted)."""
    claims.to_csv(f"{stem}.csv", index=False)
    table = formatted(claims)
    with open(f"{stem}.md", "w") as f:
        f.write(f"{CAPTION}\n\n{table.to_markdown(index=False)}\n")
    with open(f"{stem}.tex", "w") as f:
        f.write(table.to_latex(index=False, caption=CAPTION, escape=True, longtable=True))
