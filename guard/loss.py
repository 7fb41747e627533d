"""The per-step GRPO loss: PPO clip on the variant's log-ratio, step weight, optional KL.

loss_k = w_k * mean_B max(-A r, -A clip(r, 1 - eps, 1 + eps)) + beta * mean_B KL_k, with
r = exp(variant log-ratio). The weight multiplies the clipped loss after the clip (never the
ratio) and is not normalised; the KL term gets no weight (paper.md, public-code notes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from guard.ratio import BiasReduction, Variant, log_ratio, mean_bias, normalised_log_ratio, step_weight, variant_log_ratio
from guard.sde import Scalar, mean_over_dims


def clipped_surrogate(log_r: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """max(-A r, -A clip(r, 1 - eps, 1 + eps)) per sample, r = exp(log r), in fp32 without a clamp."""
    ratio = torch.exp(log_r.float())
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    return torch.maximum(unclipped, clipped)


def kl_to_reference(mu: torch.Tensor, mu_ref: torch.Tensor, sigma: Scalar) -> torch.Tensor:
    """KL = mean_dims |mu_theta - mu_ref|^2 / (2 sigma^2), per sample (sigma_k, not s_k)."""
    return mean_over_dims((mu.float() - mu_ref.float()) ** 2) / (2 * torch.as_tensor(sigma, dtype=torch.float32) ** 2)


def clip_fractions(log_r: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> dict[str, torch.Tensor]:
    """Fraction of samples outside [1 - eps, 1 + eps], split by advantage sign (within that sign) and side."""
    ratio = torch.exp(log_r.detach().float())
    above, below = ratio > 1 + clip_eps, ratio < 1 - clip_eps
    pos, neg = advantages > 0, advantages < 0

    def frac(side: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        return (side & sign).float().sum() / sign.float().sum().clamp_min(1)

    return {
        "clip_frac": (above | below).float().mean(),
        "clip_pos_upper": frac(above, pos),  # A > 0 above 1 + eps: the clip that stops over-optimisation
        "clip_pos_lower": frac(below, pos),
        "clip_neg_lower": frac(below, neg),  # A < 0 below 1 - eps
        "clip_neg_upper": frac(above, neg),
    }


def policy_shift(mu: torch.Tensor, mu_old: torch.Tensor, s: Scalar) -> torch.Tensor:
    """u = |mu_old - mu_theta| / s (full L2 norm over latent dims, in units of the step's noise std)."""
    return (mu_old.float() - mu.float()).flatten(1).norm(dim=1) / torch.as_tensor(s, dtype=torch.float32)


@dataclass
class StepLoss:
    """A step's scalar loss and its detached diagnostics."""

    loss: torch.Tensor
    diagnostics: dict[str, torch.Tensor]


def grpo_step_loss(
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
    kl_beta: float = 0.0,
    mu_ref: torch.Tensor | None = None,
    bias_reduction: BiasReduction = "sample",
) -> StepLoss:
    """loss_k = w_k mean_B max(-A r, -A clip(r)) + beta mean_B KL_k for one denoising step."""
    advantages = advantages.float()
    used = variant_log_ratio(variant, log_prob, old_log_prob, mu, mu_old, s, bias_reduction)
    weight = step_weight(variant, s, h).to(used.device)
    policy_loss = (weight * clipped_surrogate(used, advantages, clip_eps)).mean()
    loss = policy_loss
    raw = log_ratio(log_prob, old_log_prob).detach()
    b = mean_bias(mu.detach(), mu_old, s, bias_reduction)
    normalised = normalised_log_ratio(raw, b, s)
    diagnostics = {
        "policy_loss": policy_loss.detach(),
        "log_ratio_mean": raw.mean(),
        "log_ratio_std": raw.std(unbiased=False),
        "norm_log_ratio_mean": normalised.mean(),
        "norm_log_ratio_std": normalised.std(unbiased=False),
        "approx_kl": 0.5 * (raw**2).mean(),
        "bias_mean": b.mean(),  # E_eps[log r] = -b: the predicted shift of the raw log-ratio
        "policy_shift_u": policy_shift(mu.detach(), mu_old, s).mean(),
        "step_weight": weight.float().mean(),
        **clip_fractions(used, advantages, clip_eps),
    }
    if kl_beta > 0:
        if mu_ref is None:
            raise ValueError("kl_beta > 0 needs the reference mean mu_ref")
        kl = kl_to_reference(mu, mu_ref, sigma).mean()
        loss = loss + kl_beta * kl
        diagnostics["kl"] = kl.detach()
    return StepLoss(loss, diagnostics)
