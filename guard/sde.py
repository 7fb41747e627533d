"""One denoising transition x_k -> x_{k+1}: SDE means, sampling, Gaussian log-prob, ODE step.

Symbols (paper.md): x = x_k, v = model(x, t_k, c), t = t_k, h = h_k, sigma = sigma_k,
s = sigma sqrt(h), mu = mean of x_{k+1}, eps ~ N(0, I), x' = mu + s eps.
Per-step quantities may be scalars or per-sample tensors of shape (B,) (DanceGRPO trains a
different random step per sample); they are broadcast over the latent dimensions.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Scalar = float | torch.Tensor


def per_sample(value: Scalar, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or (B,) per-step value against a (B, ...) latent."""
    value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.reshape(value.shape + (1,) * (like.dim() - value.dim())) if value.dim() else value


def mean_over_dims(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch: (B, ...) -> (B,)."""
    return x.flatten(1).mean(dim=1)


def group_sum(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """sum_{r: groups_r = g} x_r for each group g: (B,) -> (G,)."""
    return x.new_zeros(n_groups).index_add(0, groups, x)


def group_mean(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of x over the rows of each group: (B,) -> (G,)."""
    count = group_sum(torch.ones_like(x), groups, n_groups)
    return group_sum(x, groups, n_groups) / count


def flowgrpo_sde_mean(x: torch.Tensor, v: torch.Tensor, t: Scalar, h: Scalar, sigma: Scalar) -> torch.Tensor:
    """mu = x (1 - sigma^2 h / (2t)) - v (1 + sigma^2 (1 - t) / (2t)) h   (Flow-GRPO)."""
    t, h, sigma = (per_sample(q, x) for q in (t, h, sigma))
    return x * (1 - sigma**2 * h / (2 * t)) - v * (1 + sigma**2 * (1 - t) / (2 * t)) * h


def dancegrpo_sde_mean(x: torch.Tensor, v: torch.Tensor, t: Scalar, h: Scalar, sigma: Scalar) -> torch.Tensor:
    """mu = x - h v + (eta^2 / 2) h score, score = -(x - (1 - t) x0_hat) / t^2, x0_hat = x - t v  (DanceGRPO)."""
    t, h, eta = (per_sample(q, x) for q in (t, h, sigma))
    score = -(x - (1 - t) * (x - t * v)) / t**2
    return x - h * v + eta**2 / 2 * h * score


SDE_MEANS: dict[str, Callable[..., torch.Tensor]] = {
    "flowgrpo": flowgrpo_sde_mean,
    "dancegrpo": dancegrpo_sde_mean,
}


def ode_step(x: torch.Tensor, v: torch.Tensor, t: Scalar, t_next: Scalar) -> torch.Tensor:
    """x_{k+1} = x + (t_{k+1} - t_k) v   (deterministic Euler step, for evaluation)."""
    return x + (per_sample(t_next, x) - per_sample(t, x)) * v


def sde_sample(mean: torch.Tensor, s: Scalar, noise: torch.Tensor) -> torch.Tensor:
    """x' = mu + s eps."""
    return mean + per_sample(s, mean) * noise


def gaussian_log_prob(x_next: torch.Tensor, mean: torch.Tensor, s: Scalar) -> torch.Tensor:
    """log N(x'; mu, s^2 I) averaged over latent dims (not summed), in fp32: (B, ...) -> (B,).

    Both reference codes average; ``x_next`` is the stored sample and is detached.
    """
    x_next, mean = x_next.detach().float(), mean.float()
    s = per_sample(s, mean)
    log_density = -((x_next - mean) ** 2) / (2 * s**2) - torch.log(s) - 0.5 * math.log(2 * math.pi)
    return mean_over_dims(log_density)
