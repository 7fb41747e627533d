"""Importance-ratio forms and per-step loss weights: a method variant is a (ratio, weight) pair.

With dmu = mu_old - mu_theta and x' = mu_old + s eps, the per-dim-mean log-ratio is
log r = -mean(dmu^2) / (2 s^2) - mean(dmu eps) / s   (paper.md, "Why clipping fails").
Its mean is negative; GRPO-Guard removes the bias b and the step-dependent scale 1/s:
log r_hat = s (log r + b) = -mean(dmu eps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from guard.sde import Scalar, group_mean, mean_over_dims

RatioForm = Literal["plain", "mean_revised", "normalised"]
StepWeight = Literal["one", "noise_std", "inv_step"]
BiasReduction = Literal["sample", "batch"]


@dataclass(frozen=True)
class Variant:
    """A method: which log-ratio enters the PPO clip and how each step's loss is weighted."""

    ratio: RatioForm
    weight: StepWeight


VARIANTS: dict[str, Variant] = {
    "flowgrpo": Variant("plain", "one"),
    "dancegrpo": Variant("plain", "one"),
    "temp_reweight": Variant("plain", "noise_std"),
    "mean_revised": Variant("mean_revised", "one"),
    "rationorm": Variant("normalised", "one"),
    "grpo_guard": Variant("normalised", "inv_step"),
}


def get_variant(name: str) -> Variant:
    """The registered variant ``name``, or an error listing the valid names."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[name]


def log_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> torch.Tensor:
    """log r = log p_theta(x' | x) - log p_old(x' | x)."""
    return log_prob - old_log_prob


def mean_bias(mu: torch.Tensor, mu_old: torch.Tensor, s: Scalar, reduction: BiasReduction = "sample",
              groups: torch.Tensor | None = None, n_groups: int = 1) -> torch.Tensor:
    """b = mean_dims |mu_theta - mu_old|^2 / (2 s^2); ``batch`` also averages over the samples of a step (public
    script): those with the same ``groups`` id (one step's rows), all of them when ``groups`` is None.

    ``mu`` is the live mean: gradients flow through b (it is not detached).
    """
    b = mean_over_dims((mu.float() - mu_old.float()) ** 2) / (2 * torch.as_tensor(s, dtype=torch.float32) ** 2)
    if reduction == "batch":
        return b.mean().expand_as(b) if groups is None else group_mean(b, groups, n_groups)[groups]
    if reduction != "sample":
        raise ValueError(f"bias_reduction must be 'sample' or 'batch', got {reduction!r}")
    return b


def mean_revised_log_ratio(log_r: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log r + b   (Mean-revised)."""
    return log_r + b


def normalised_log_ratio(log_r: torch.Tensor, b: torch.Tensor, s: Scalar) -> torch.Tensor:
    """log r_hat = s (log r + b)   (RatioNorm; equals -mean(dmu eps))."""
    return torch.as_tensor(s, dtype=log_r.dtype) * (log_r + b)


def variant_log_ratio(
    variant: Variant,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    mu: torch.Tensor,
    mu_old: torch.Tensor,
    s: Scalar,
    bias_reduction: BiasReduction = "sample",
    groups: torch.Tensor | None = None,
    n_groups: int = 1,
) -> torch.Tensor:
    """The log-ratio a variant feeds to the PPO clip, per sample (B,)."""
    log_r = log_ratio(log_prob, old_log_prob)
    if variant.ratio == "plain":
        return log_r
    b = mean_bias(mu, mu_old, s, bias_reduction, groups, n_groups)
    if variant.ratio == "mean_revised":
        return mean_revised_log_ratio(log_r, b)
    return normalised_log_ratio(log_r, b, s)


def step_weight(variant: Variant, s: Scalar, h: Scalar) -> torch.Tensor:
    """w_k = 1, s_k (Temp-Reweight) or 1 / h_k (GRPO-Guard)."""
    s, h = torch.as_tensor(s, dtype=torch.float32), torch.as_tensor(h, dtype=torch.float32)
    if variant.weight == "noise_std":
        return s
    if variant.weight == "inv_step":
        return 1 / h
    return torch.ones_like(h)
