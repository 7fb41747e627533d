"""Set-level metrics of evaluation sets recomputed on every resample of their images (analysis.resample).

A run's evaluations write one row per image (eval_units.jsonl; the final set: scores/units.jsonl): its index,
prompt, per-image scores and what a set-level metric needs. Every run of a setting scores the same prompts
from the same noise, so one draw of weights applies to all of them. Per draw the set metrics are recomputed
as the evaluation computes them: a weighted mean of the per-image scores; GenEval's proxy as the mean over
tags of each tag's accuracy; the nano ``accuracy`` as the mean of ``correct``; the nano ``diversity`` as the
mean over prompts of the mean distance between two drawn images of the prompt (a repeated image gives 0,
as it does in the set). Average(gold) is relative to the base model's metrics under the same draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from analysis.resample import UnitDraws, unit_draws
from eval.nano import relative_gold

ALIASES = {"accuracy": "correct"}
"""Set-level metric -> the per-image score it is the mean of, where the names differ (nano)."""


@dataclass
class UnitTable:
    """Per-image scores of many evaluations of one image set: rows = evaluations (``keys``), columns = images."""

    units: pd.DataFrame
    keys: list[str]
    draws: UnitDraws = field(init=False)
    rows: pd.DataFrame = field(init=False)
    """The evaluations, in the order of the metric arrays' last axis."""
    undefined: dict[str, int] = field(init=False, default_factory=dict)
    """Metric -> draws in which some part of it was undefined (a tag without images) and left out."""

    def __post_init__(self) -> None:
        wide = self.units.set_index([*self.keys, "image"]).sort_index()
        self.rows = wide.index.droplevel("image").unique().to_frame(index=False)
        images = wide.index.get_level_values("image").unique().sort_values()
        prompts = self.units.drop_duplicates("image").set_index("image").prompt.reindex(images)
        if self.units.groupby("image").prompt.nunique().max() > 1:
            raise ValueError("evaluations of one set disagree on an image's prompt: they are not the same set")
        self.images, self.prompts = images, prompts
        self.prompt_of = pd.factorize(prompts, sort=False)[0]
        self.wide = wide
        self.draws = unit_draws(self.prompt_of)

    def values(self, column: str) -> np.ndarray:
        """(N, R) per-image scores of ``column``, NaN where an evaluation lacks an image."""
        table = self.wide[column].unstack(self.keys)
        return table.reindex(index=self.images).reindex(columns=pd.MultiIndex.from_frame(self.rows)
                                                        if len(self.keys) > 1 else self.rows[self.keys[0]]).to_numpy(float)

    def mean(self, column: str, weight: np.ndarray) -> np.ndarray:
        """(D, R) weighted mean over images, NaN scores left out (an unparsable judge answer)."""
        v = self.values(column)
        return (weight @ np.nan_to_num(v)) / (weight @ np.isfinite(v))

    def tag_mean(self, column: str) -> np.ndarray:
        """(D, R) mean over tags of each tag's weighted mean (GenEval); a tag without images in a draw is left out."""
        tags = self.wide.reset_index().drop_duplicates("image").set_index("image").tag.reindex(self.images).to_numpy()
        w = self.draws.weight
        per_tag = np.stack([self.mean(column, w * (tags == t)) for t in pd.unique(tags)])
        empty = np.isnan(per_tag).any(axis=2).any(axis=0)
        if empty.any():
            self.undefined[column] = int(empty.sum())
        return np.nanmean(per_tag, axis=0)

    def diversity(self) -> np.ndarray:
        """(D, R) mean over prompts (weighted by prompt draws) of c' D c / (m (m - 1)), c = image counts in the prompt."""
        pairs = self.wide.pair_distances.unstack(self.keys)
        pairs = pairs.reindex(index=self.images)[pd.MultiIndex.from_frame(self.rows)]
        count, pw = self.draws.image_count, self.draws.prompt_weight
        total = np.zeros((count.shape[0], len(self.rows)))
        for p in range(pw.shape[1]):
            members = np.flatnonzero(self.prompt_of == p)
            d = np.stack([np.stack(pairs.iloc[members, r].to_numpy()) for r in range(len(self.rows))])  # (R, m, m)
            c = count[:, members]
            m = c.sum(axis=1)
            total += pw[:, [p]] * np.einsum("dm,rmn,dn->dr", c, d, c) / (m * (m - 1))[:, None]
        return total / pw.sum(axis=1, keepdims=True)

    def metric(self, name: str) -> np.ndarray:
        """(D, R): set-level ``name`` of every evaluation under every draw (draw 0: the evaluation itself)."""
        if name == "diversity" and "pair_distances" in self.wide:
            return self.diversity()
        if name == "proxy" and "tag" in self.wide:
            return self.tag_mean("proxy")
        column = name if name in self.wide else ALIASES.get(name, name)
        if column not in self.wide:
            raise KeyError(f"the evaluation units have no per-image {column!r} to recompute {name!r} from")
        return self.mean(column, self.draws.weight)


def average_gold(metrics: dict[str, np.ndarray], base: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(D, R) Average(gold) = mean over ``names`` of each metric relative to the base's (D,) under the same draw."""
    return np.mean([relative_gold(n, metrics[n], base[n][:, None]) for n in names], axis=0)
