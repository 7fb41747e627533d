"""The backbone interface the GRPO trainer talks to.

A backbone is a conditional flow-matching velocity model ``v = model(x, t, c)`` with flow time
``t`` in [0, 1] (1 = pure noise) and clean estimate ``x0_hat = x - t v``. The trainer only calls
these methods, so the nano CPU model, SD3.5-M and FLUX.1-dev plug into the same loop.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, Sequence

import torch


class Backbone(Protocol):
    """What the trainer needs from a model; conditions are opaque to the trainer."""

    latent_shape: tuple[int, ...]
    """Shape of one latent sample, without the batch dimension."""

    rows_in_one_call: bool
    """Optional (absent = False): whether ``velocity`` passes the batch's rows through each trained layer once,
    unpadded and in order; then each step's gradient norm can come from the backward of all steps
    (guard/stepnorm.py), else one backward per step."""

    def encode(self, prompts: Sequence[str]) -> Any:
        """Condition for a batch of prompts (embeddings computed once per prompt and cached)."""

    def select(self, cond: Any, index: torch.Tensor) -> Any:
        """The rows ``index`` of a batched condition (for minibatches)."""

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """Velocity of the trainable policy at latents ``x`` (B, *latent_shape), times ``t`` (B,)."""

    def reference_velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        """Velocity of the frozen reference policy (for the KL term)."""

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """Parameters the optimizer updates (all weights, or LoRA adapters)."""

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], shape (B, 3, H, W), from final latents."""
