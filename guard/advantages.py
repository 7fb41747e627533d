"""Group-relative advantages: A_i = clip((R_i - mean_group R) / (std + eps), -c, c).

Samples are grouped by prompt (the trainer gathers every process's rewards first, so a group is
whole); GRPO-Guard divides by the group's std, the Flow-GRPO baseline configs by the
population std of all rewards of the epoch ("global").
"""

from __future__ import annotations

from typing import Literal

import torch

StdMode = Literal["group", "global"]


def group_advantages(
    rewards: torch.Tensor,
    groups: torch.Tensor,
    std_mode: StdMode = "group",
    std_eps: float = 1e-4,
    clip: float = 5.0,
    unbiased: bool = False,
) -> torch.Tensor:
    """A_i = clip((R_i - mean_{g(i)} R) / (std_{g(i) or all} R + eps), -clip, clip); groups are ids (B,)."""
    if std_mode not in ("group", "global"):
        raise ValueError(f"std_mode must be 'group' or 'global', got {std_mode!r}")
    rewards = rewards.double()
    advantages = torch.empty_like(rewards)
    global_std = rewards.std(unbiased=unbiased)
    for g in torch.unique(groups):
        member = groups == g
        group = rewards[member]
        std = group.std(unbiased=unbiased) if std_mode == "group" else global_std
        advantages[member] = (group - group.mean()) / (std + std_eps)
    return advantages.clamp(-clip, clip).float()
