"""Exponential moving average of the trainable weights, used for evaluation and checkpoints only."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch


def ema_decay(n_updates: int, cap: float) -> float:
    """decay_n = min((1 + n) / (10 + n), cap)   (Flow-GRPO's EMA warm-up)."""
    return min((1 + n_updates) / (10 + n_updates), cap)


class EMA:
    """Shadow copies of a parameter list, updated every ``every`` optimizer steps."""

    def __init__(self, params: Sequence[torch.nn.Parameter], cap: float, every: int) -> None:
        self.params = list(params)
        self.shadow = [p.detach().clone() for p in self.params]
        self.cap, self.every, self.optimizer_steps, self.updates = cap, every, 0, 0

    @torch.no_grad()
    def step(self) -> None:
        """Count one optimizer step; every ``every`` steps, shadow <- d shadow + (1 - d) param."""
        self.optimizer_steps += 1
        if self.optimizer_steps % self.every:
            return
        d = ema_decay(self.updates, self.cap)
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1 - d)
        self.updates += 1

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Use the EMA weights inside the block, restore the live weights after."""
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(self.params, live):
                    p.copy_(w)
