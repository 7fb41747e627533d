"""Rollouts: SDE sampling that stores x_k, mu_old and log p for every step, and ODE sampling for evaluation.

The stored means and log-probs are the old policy's: no extra forward pass is needed for it.
Latents live on the backbone's ``device`` (the CPU for a backbone without one); noise is always
drawn from a CPU generator and then moved, so the random streams do not depend on the device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator

import torch

from guard.backbone import Backbone
from guard.distributed import Shard
from guard.schedule import SDESchedule, diffusers_flow_grid
from guard.sde import SDE_MEANS, gaussian_log_prob, ode_step, sde_sample


@dataclass
class Trajectory:
    """A batch of SDE trajectories: latents x_0..x_T (B, T+1, ...), means (B, T, ...), log-probs (B, T)."""

    latents: torch.Tensor
    means: torch.Tensor
    log_probs: torch.Tensor
    final: torch.Tensor


def backbone_device(backbone: Backbone) -> torch.device:
    """The device of the backbone's velocity inputs and outputs (``device`` attribute; the CPU if absent)."""
    return getattr(backbone, "device", torch.device("cpu"))


def schedule_on(sched: SDESchedule, device: torch.device) -> SDESchedule:
    """The schedule with its per-step tensors on ``device``."""
    return replace(sched, t=sched.t.to(device), h=sched.h.to(device), sigma=sched.sigma.to(device),
                   s=sched.s.to(device))


def initial_noise(batch: int, shape: tuple[int, ...], generator: torch.Generator, group_size: int = 1) -> torch.Tensor:
    """x_T ~ N(0, I); with group_size > 1 each consecutive group of samples shares one draw."""
    noise = torch.randn((batch // group_size, *shape), generator=generator)
    return noise.repeat_interleave(group_size, dim=0)


def step_mean(backbone: Backbone, sched: SDESchedule, x: torch.Tensor, k: torch.Tensor, cond: Any, reference: bool = False) -> torch.Tensor:
    """mu_k(x) of the policy (or the reference) for per-sample step indices k (B,), in fp32."""
    velocity = backbone.reference_velocity if reference else backbone.velocity
    v = velocity(x, sched.t[k], cond).float()
    return SDE_MEANS[sched.kind](x.float(), v, sched.t[k], sched.h[k], sched.sigma[k])


@torch.no_grad()
def sample_sde(backbone: Backbone, sched: SDESchedule, cond: Any, x: torch.Tensor, generator: torch.Generator,
               decode_x0_hat: bool = False, shard: Shard | None = None) -> Trajectory:
    """Run the SDE from x_T = x over every step, storing what training needs.

    ``x`` holds the rows ``shard`` of a batch of ``shard.total`` samples (default: the whole batch).
    Each step draws the whole batch's noise from ``generator`` (on the CPU) and keeps those rows, so a
    process that samples a shard consumes the generator exactly as one that samples the whole batch.
    """
    batch = x.shape[0]
    shard = shard or Shard(0, batch, batch)
    latents, means, log_probs = [x.float()], [], []
    x0_hat = x
    for k in range(sched.num_steps):
        v = backbone.velocity(latents[-1], sched.t[k].expand(batch), cond).float()
        mean = SDE_MEANS[sched.kind](latents[-1], v, sched.t[k], sched.h[k], sched.sigma[k])
        noise = torch.randn((shard.total, *mean.shape[1:]), generator=generator)[shard.rows].to(mean.device)
        x_next = sde_sample(mean, sched.s[k], noise)
        log_probs.append(gaussian_log_prob(x_next, mean, sched.s[k]))
        if decode_x0_hat and k == sched.num_steps - 1:
            x0_hat = latents[-1] - sched.t[k] * v
        latents.append(x_next)
        means.append(mean)
    final = x0_hat if decode_x0_hat else latents[-1]
    return Trajectory(torch.stack(latents, 1), torch.stack(means, 1), torch.stack(log_probs, 1), final)


@torch.no_grad()
def sample_ode(backbone: Backbone, t_grid: torch.Tensor, cond: Any, x: torch.Tensor) -> torch.Tensor:
    """Deterministic Euler sampling over t_grid (evaluation), on ``x``'s device."""
    t_grid = t_grid.to(x.device)
    for k in range(len(t_grid) - 1):
        t = t_grid[k].expand(x.shape[0])
        x = ode_step(x, backbone.velocity(x, t, cond).float(), t_grid[k], t_grid[k + 1])
    return x


def evaluation_names(prompts: list[str], per_prompt: int) -> list[str]:
    """The prompt of each image of the evaluation set: every prompt ``per_prompt`` times."""
    return [p for p in prompts for _ in range(per_prompt)]


@torch.no_grad()
def evaluation_batches(backbone: Backbone, prompts: list[str], per_prompt: int, steps: int, shift: float, seed: int,
                       batch_size: int = 0, rows: slice | None = None) -> Iterator[tuple[list[str], torch.Tensor]]:
    """The fixed-seed evaluation set, every prompt ``per_prompt`` times, ODE-sampled and decoded to [0, 1] (CPU).

    The noise of the whole set is drawn first, so an image depends on the seed and its position
    only; ``rows`` restricts the set to a block of it (one process's share); ``batch_size`` images
    (0: all) are sampled and decoded at a time.
    """
    names = evaluation_names(prompts, per_prompt)
    noise = torch.randn((len(names), *backbone.latent_shape), generator=torch.Generator().manual_seed(seed))
    if rows is not None:
        names, noise = names[rows], noise[rows]
    grid = diffusers_flow_grid(steps, shift)
    for start in range(0, len(names), batch_size or max(len(names), 1)):
        chunk = names[start : start + (batch_size or len(names))]
        x = noise[start : start + len(chunk)].to(backbone_device(backbone))
        yield chunk, backbone.decode(sample_ode(backbone, grid, backbone.encode(chunk), x)).cpu()


def evaluation_images(backbone: Backbone, prompts: list[str], per_prompt: int, steps: int, shift: float,
                      seed: int, batch_size: int = 0, rows: slice | None = None) -> tuple[list[str], torch.Tensor]:
    """All of :func:`evaluation_batches` at once: (prompt per image, images (N, 3, H, W))."""
    parts = list(evaluation_batches(backbone, prompts, per_prompt, steps, shift, seed, batch_size, rows))
    if not parts:
        return [], torch.zeros(0, 3, 1, 1)
    return [name for names, _ in parts for name in names], torch.cat([images for _, images in parts])
