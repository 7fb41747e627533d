"""The per-step GRPO loss: PPO clip on the variant's log-ratio, step weight, optional KL.

loss_k = w_k * mean_B max(-A r, -A clip(r, 1 - eps, 1 + eps)) + beta * mean_B KL_k, with
r = exp(variant log-ratio). ``grpo_group_loss`` sums it over rows at any mix of steps (a forward of
several steps, or DanceGRPO's per-sample steps) and gives the diagnostics of each step's rows. The weight multiplies the clipped loss after the clip (never the
ratio) and is not normalised; the KL term gets no weight (paper.md, public-code notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from guard.ratio import BiasReduction, Variant, log_ratio, mean_bias, normalised_log_ratio, step_weight, variant_log_ratio
from guard.sde import Scalar, group_mean, group_sum, mean_over_dims


def clipped_surrogate(log_r: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """max(-A r, -A clip(r, 1 - eps, 1 + eps)) per sample, r = exp(log r), in fp32 without a clamp."""
    ratio = torch.exp(log_r.float())
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return torch.maximum(unclipped, clipped)


def kl_to_reference(mu: torch.Tensor, mu_ref: torch.Tensor, sigma: Scalar) -> torch.Tensor:
    """KL = mean_dims |mu_theta - mu_ref|^2 / (2 sigma^2), per sample (sigma_k, not s_k)."""
    return mean_over_dims((mu.float() - mu_ref.float()) ** 2) / (2 * torch.as_tensor(sigma, dtype=torch.float32) ** 2)


def clip_fractions(log_r: torch.Tensor, advantages: torch.Tensor, clip_eps: float, groups: torch.Tensor,
                   n_groups: int) -> dict[str, torch.Tensor]:
    """Per group of rows (G,): the fraction outside [1 - eps, 1 + eps], split by advantage sign (within that sign) and side."""
    ratio = torch.exp(log_r.detach().float())
    above, below = ratio > 1 + clip_eps, ratio < 1 - clip_eps
    pos, neg = advantages > 0, advantages < 0

    def count(mask: torch.Tensor) -> torch.Tensor:
        return group_sum(mask.float(), groups, n_groups)

    def frac(side: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        return count(side & sign) / count(sign).clamp_min(1)

    return {
        "clip_frac": count(above | below) / count(torch.ones_like(above)),
        "clip_pos_upper": frac(above, pos),  # A > 0 above 1 + eps: the clip that stops over-optimisation
        "clip_pos_lower": frac(below, pos),
        "clip_neg_lower": frac(below, neg),  # A < 0 below 1 - eps
        "clip_neg_upper": frac(above, neg),
    }


def policy_shift(mu: torch.Tensor, mu_old: torch.Tensor, s: Scalar) -> torch.Tensor:
    """u = |mu_old - mu_theta| / s (full L2 norm over latent dims, in units of the step's noise std)."""
    return (mu_old.float() - mu.float()).flatten(1).norm(dim=1) / torch.as_tensor(s, dtype=torch.float32)


@dataclass
class GroupLoss:
    """The summed loss of rows at several steps, and the detached diagnostics of each group of rows (G,)."""

    loss_sum: torch.Tensor
    diagnostics: dict[str, torch.Tensor]


def grpo_group_loss(
    variant: Variant,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    mu: torch.Tensor,
    mu_old: torch.Tensor,
    advantages: torch.Tensor,
    s: Scalar,
    h: Scalar,
    sigma: Scalar,
    clip_eps: float,
    groups: torch.Tensor,
    n_groups: int,
    kl_beta: float = 0.0,
    mu_ref: torch.Tensor | None = None,
    bias_reduction: BiasReduction = "sample",
) -> GroupLoss:
    """sum_rows [w_k max(-A r, -A clip(r)) + beta KL_k], each row at its own step; diagnostics per group.

    ``s``, ``h``, ``sigma`` are scalars or per-row (B,); ``groups`` (B,) gives each row's group in
    [0, n_groups): the rows of one denoising step (``bias_reduction: batch`` averages b within a group).
    """
    advantages = advantages.float()
    used = variant_log_ratio(variant, log_prob, old_log_prob, mu, mu_old, s, bias_reduction, groups, n_groups)
    weight = step_weight(variant, s, h).to(used.device).expand_as(used)
    policy = weight * clipped_surrogate(used, advantages, clip_eps)
    per_row = policy
    raw = log_ratio(log_prob, old_log_prob).detach()
    b = mean_bias(mu.detach(), mu_old, s, bias_reduction, groups, n_groups)
    normalised = normalised_log_ratio(raw, b, s)

    def mean(x: torch.Tensor) -> torch.Tensor:
        return group_mean(x, groups, n_groups)

    def std(x: torch.Tensor) -> torch.Tensor:  # population std, two-pass as torch.std
        return mean((x - mean(x)[groups]) ** 2).sqrt()

    diagnostics = {
        "policy_loss": mean(policy.detach()),
        "log_ratio_mean": mean(raw),
        "log_ratio_std": std(raw),
        "norm_log_ratio_mean": mean(normalised),
        "norm_log_ratio_std": std(normalised),
        "approx_kl": 0.5 * mean(raw**2),
        "bias_mean": mean(b),  # E_eps[log r] = -b: the predicted shift of the raw log-ratio
        "policy_shift_u": mean(policy_shift(mu.detach(), mu_old, s)),
        "step_weight": mean(weight.detach().float()),
        **clip_fractions(used, advantages, clip_eps, groups, n_groups),
    }
    if kl_beta > 0:
        if mu_ref is None:
            raise ValueError("kl_beta > 0 needs the reference mean mu_ref")
        kl = kl_to_reference(mu, mu_ref, sigma)
        per_row = per_row + kl_beta * kl
        diagnostics["kl"] = mean(kl.detach())
    return GroupLoss(per_row.sum(), diagnostics)
