"""How a minibatch is cut: micro-batches of samples, the trained steps of each sample, gradient sums."""

from __future__ import annotations

import torch

from jobs.config import TrainConfig


def micro_batches(n: int, size: int) -> list[torch.Tensor]:
    """Row indices 0..n-1 in consecutive chunks of at most ``size`` (one chunk when size is 0; none when n is 0)."""
    return list(torch.arange(n).split(size or max(n, 1))) if n else []


def accumulate(total: list[torch.Tensor | None], grads: list[torch.Tensor | None]) -> list[torch.Tensor | None]:
    """total + grads per parameter, in place where total has a tensor, as autograd accumulates (None: no gradient)."""
    return [None if g is None and t is None else g.clone() if t is None else t if g is None else t.add_(g)
            for t, g in zip(total, grads)]


def trained_step_indices(batch: int, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Per-sample trained steps (B, trained): the first ones, or a random subset of the trainable ones."""
    if config.trained_steps == config.trainable_steps:
        return torch.arange(config.trained_steps).expand(batch, -1)
    return torch.stack([torch.randperm(config.trainable_steps, generator=generator)[: config.trained_steps]
                        for _ in range(batch)])
