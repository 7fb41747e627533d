"""A sweep of trainer keys around chosen variants: each grid point becomes an ordinary variant entry.

Experiment YAML (validated by workflow/schemas/config.schema.yaml, and here at load)::

    sweep:
      nano/composition:                               # backbone/task of the grid
        temp_reweight:                                # a declared variant of that setting
          clip_eps: [0.25, 1, 4]                      # a list: factors x the variant's own value
          lr: ["1/3", 1, 3]                           # a factor may be a fraction "a/b" (exact)
        grpo_guard:
          bias_reduction: {values: [sample, batch]}   # {values: [...]}: the values themselves

The grid is the product of the listed keys (the first key varies slowest). A point's entry is the variant's
own entry with the swept keys set and ``variant:`` naming its method, so a point is trained, sampled, scored
and planned like any variant (run folder results/<exp>/<backbone>/<task>/<point name>/seed<n>). Its name is
``<variant>@<key>=<label>+...`` with label ``x<factor>`` (3 significant digits; the exact value is in the
run's config) or the value, e.g. ``temp_reweight@clip_eps=x0.25+lr=x3``. The point whose factors are all 1
(or whose values are the variant's own) is the variant itself: it adds no entry and no run. Points are
appended after the declared variants, so a point never takes the paper-faithful role of its method (the
first variant of a (method, sampler); analysis.evidence).
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

from jobs.config import ConfigError, TrainConfig, grid_settings, resolve_run

SEPARATOR, JOIN = "@", "+"
"""Between the swept variant's name and its point's keys (not allowed in a declared variant name), and between keys
(not a comma: the claims tables list variants joined by commas)."""
NOT_SWEPT = ("variant", "seed", "backbone", "task", "metrics")
"""TrainConfig keys a sweep may not name: the method and seed define the run; the domain dicts are not values."""
LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class Point:
    """One grid point of a swept variant: its variant entry's name, per swept key a label (``x0.25`` or the value)
    and the value the run gets, and whether it is the variant itself (all factors 1 / its own values)."""

    variant: str
    name: str
    labels: dict[str, str]
    values: dict[str, Any]
    default: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "labels": dict(self.labels), "values": dict(self.values), "default": self.default}


def factor_of(raw: Any, where: str) -> Fraction:
    """A factor given as a number or an exact fraction "a/b"."""
    try:
        factor = Fraction(str(raw)) if isinstance(raw, str) else Fraction(raw)
    except (ValueError, ZeroDivisionError, TypeError) as err:
        raise ConfigError(f"{where}: factor {raw!r} is not a number or a fraction 'a/b'") from err
    if factor <= 0 or isinstance(raw, bool):
        raise ConfigError(f"{where}: factor {raw!r} must be a positive number")
    return factor


def scaled(value: Any, factor: Fraction, where: str) -> Any:
    """``value`` x ``factor``: an int stays an int (rounded), a float is rounded to 12 significant digits (so that
    3e-4 x 1/3 is 1e-4, not 9.999999999999999e-05)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: a factor needs a number, the variant's value is {value!r}; "
                          "give the values themselves ({values: [...]})")
    if isinstance(value, int):
        return round(value * factor)
    return float(f"{float(Fraction(value) * factor):.12g}")


def label_of(value: Any, where: str) -> str:
    text = f"{value:.3g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)
    if not LABEL.match(text):
        raise ConfigError(f"{where}: value {value!r} cannot name a run folder (letters, digits, _ . + - only)")
    return text


def key_points(experiment: dict[str, Any], setting: str, variant: str, key: str, spec: Any) -> list[tuple[str, Any, bool]]:
    """(label, value, is the variant's own value) per listed factor or value of one swept key."""
    where = f"sweep.{setting}.{variant}.{key}"
    known = {f.name for f in fields(TrainConfig)}
    if key not in known or key in NOT_SWEPT:
        raise ConfigError(f"{where}: {key!r} is not a trainer key a sweep can vary (jobs.config.TrainConfig); "
                          f"valid keys: {sorted(known - set(NOT_SWEPT))}")
    resolved = resolve_run(experiment, variant, setting)
    own = resolved.get(key, next(f.default for f in fields(TrainConfig) if f.name == key))
    if isinstance(spec, dict):
        if set(spec) != {"values"} or not isinstance(spec["values"], list) or not spec["values"]:
            raise ConfigError(f"{where}: give a list of factors or {{values: [...]}}; got {spec!r}")
        points = [(label_of(v, where), v, v == own) for v in spec["values"]]
    elif isinstance(spec, list) and spec:
        factors = [factor_of(f, where) for f in spec]
        points = [(f"x{float(f):.3g}", scaled(own, f, where), f == 1) for f in factors]
    else:
        raise ConfigError(f"{where}: give a list of factors or {{values: [...]}}; got {spec!r}")
    labels = [p[0] for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where}: two points share the label {sorted(l for l in labels if labels.count(l) > 1)[0]!r} "
                          "(labels keep 3 significant digits); drop the repeated one")
    return points


def sweep_points(experiment: dict[str, Any]) -> dict[str, dict[str, list[Point]]]:
    """"backbone/task" -> swept variant -> its grid points in grid order (the default point included), checked
    against the grid: an unknown setting, variant or trainer key fails, naming it."""
    settings = ["/".join(s) for s in grid_settings(experiment)]
    out: dict[str, dict[str, list[Point]]] = {}
    for setting, variants in (experiment.get("sweep") or {}).items():
        if setting not in settings:
            raise ConfigError(f"sweep.{setting}: not a setting (backbone/task) of the grid; settings: {settings}")
        backbone, task = setting.split("/", 1)
        declared = experiment["grid"][backbone][task]["variants"]
        out[setting] = {}
        for variant, keys in (variants or {}).items():
            if variant not in declared:
                raise ConfigError(f"sweep.{setting}.{variant}: not a variant of {setting}; declared: {sorted(declared)}")
            if not keys:
                raise ConfigError(f"sweep.{setting}.{variant}: name at least one trainer key to sweep")
            axes = {key: key_points(experiment, setting, variant, key, spec) for key, spec in keys.items()}
            points = []
            for combo in itertools.product(*axes.values()):
                labels = {k: p[0] for k, p in zip(axes, combo)}
                default = all(p[2] for p in combo)
                name = variant if default else variant + SEPARATOR + JOIN.join(f"{k}={v}" for k, v in labels.items())
                points.append(Point(variant, name, labels, {k: p[1] for k, p in zip(axes, combo)}, default))
            out[setting][variant] = points
    return out


def with_sweep(experiment: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``experiment`` whose grid holds every non-default sweep point as a variant entry, after the
    declared variants (``experiment`` is not changed; without a sweep the copy equals it)."""
    points = sweep_points(experiment)
    out = copy.deepcopy(experiment)
    for setting, by_variant in points.items():
        backbone, task = setting.split("/", 1)
        variants = out["grid"][backbone][task]["variants"]
        for variant, grid in by_variant.items():
            entry = dict(experiment["grid"][backbone][task]["variants"][variant] or {})
            for p in grid:
                if p.default:
                    continue
                if p.name in variants:
                    raise ConfigError(f"sweep.{setting}.{variant}: point {p.name!r} is already a variant of {setting}")
                variants[p.name] = {"variant": entry.get("variant", variant), **entry, **p.values}
    return out


def swept_entries(experiment: dict[str, Any], backbone: str, task: str) -> list[str]:
    """Names of the variant entries a setting's sweep adds (its non-default points), in grid order."""
    return [p.name for grid in sweep_points(experiment).get(f"{backbone}/{task}", {}).values() for p in grid
            if not p.default]
