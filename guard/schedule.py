"""Flow-matching time grids and the per-step quantities of paper.md's notation.

Flow time t in [0, 1], 1 = pure noise. A grid runs t_0 = 1 > t_1 > ... > t_T = 0; the step size
is h_k = t_k - t_{k+1} > 0 ("dt" in the paper). sigma_k is the SDE noise scale of step k and
s_k = sigma_k sqrt(h_k) the transition std.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def shift_time(u: torch.Tensor, shift: float) -> torch.Tensor:
    """shifted(u) = shift u / (1 + (shift - 1) u)  (SD3 / diffusers time shift)."""
    return shift * u / (1 + (shift - 1) * u)


def diffusers_flow_grid(num_steps: int, shift: float = 3.0, num_train_timesteps: int = 1000) -> torch.Tensor:
    """t = shifted(linspace(1, shifted(1/N_train), T)) then a final 0, as FlowMatchEulerDiscreteScheduler.

    The end point is shifted in float32 (diffusers keeps its training sigmas in float32), the rest in
    float64: the grid then equals the scheduler's sigmas bit for bit.
    """
    t_min = shift_time(torch.tensor(1.0 / num_train_timesteps, dtype=torch.float32), shift)
    u = torch.linspace(1.0, float(t_min), num_steps, dtype=torch.float64)
    return torch.cat([shift_time(u, shift), torch.zeros(1, dtype=torch.float64)]).float()


def dancegrpo_grid(num_steps: int, shift: float = 3.0) -> torch.Tensor:
    """t = shifted(linspace(1, 0, T + 1)), DanceGRPO's grid (not the diffusers one), in float32 as DanceGRPO."""
    return shift_time(torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float32), shift)


def step_sizes(t: torch.Tensor) -> torch.Tensor:
    """h_k = t_k - t_{k+1}."""
    return t[:-1] - t[1:]


def flowgrpo_noise_scale(t: torch.Tensor, a: float) -> torch.Tensor:
    """sigma_k = a sqrt(t_k / (1 - t_k)), with 1 - t_1 in the denominator where t_k = 1 (Flow-GRPO)."""
    t_k = t[:-1]
    denom = 1 - torch.where(t_k == 1, t[1], t_k)
    return a * torch.sqrt(t_k / denom)


def dancegrpo_noise_scale(t: torch.Tensor, eta: float) -> torch.Tensor:
    """sigma_k = eta for every step (DanceGRPO)."""
    return torch.full_like(t[:-1], eta)


def transition_std(sigma: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """s_k = sigma_k sqrt(h_k)."""
    return sigma * torch.sqrt(h)


@dataclass(frozen=True)
class SDESchedule:
    """All per-step quantities of one sampler: t (T+1,), h, sigma, s (T,) and the sampler kind."""

    kind: str
    t: torch.Tensor
    h: torch.Tensor
    sigma: torch.Tensor
    s: torch.Tensor

    @property
    def num_steps(self) -> int:
        return int(self.h.numel())


def flowgrpo_schedule(num_steps: int = 10, shift: float = 3.0, a: float = 0.7) -> SDESchedule:
    """Flow-GRPO (SD3.5-M): diffusers shift grid, sigma_k = a sqrt(t_k / (1 - t_k))."""
    t = diffusers_flow_grid(num_steps, shift)
    h, sigma = step_sizes(t), flowgrpo_noise_scale(t, a)
    return SDESchedule("flowgrpo", t, h, sigma, transition_std(sigma, h))


def dancegrpo_schedule(num_steps: int = 16, shift: float = 3.0, eta: float = 0.3) -> SDESchedule:
    """DanceGRPO (FLUX.1-dev): shifted linspace grid, sigma_k = eta."""
    t = dancegrpo_grid(num_steps, shift)
    h, sigma = step_sizes(t), dancegrpo_noise_scale(t, eta)
    return SDESchedule("dancegrpo", t, h, sigma, transition_std(sigma, h))


SCHEDULES = {"flowgrpo": flowgrpo_schedule, "dancegrpo": dancegrpo_schedule}
