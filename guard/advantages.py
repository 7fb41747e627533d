"""Group-relative advantages: A_i = clip((R_i - mean_group R) / (std + eps), -c, c).

Flow-GRPO groups samples by prompt (a prompt's group may span minibatches or GPUs, hence the
stat tracker); GRPO-Guard divides by the group's std, the Flow-GRPO baseline configs by the
population std of all rewards of the epoch ("global").
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal, Sequence

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


class PromptStatTracker:
    """Collects an epoch's rewards by prompt string across minibatches, then normalises per prompt."""

    def __init__(self, std_mode: StdMode = "group", std_eps: float = 1e-4, clip: float = 5.0) -> None:
        self.std_mode, self.std_eps, self.clip = std_mode, std_eps, clip
        self.rewards: dict[str, list[float]] = defaultdict(list)

    def add(self, prompts: Sequence[str], rewards: torch.Tensor) -> None:
        """Record one batch of (prompt, reward) pairs."""
        for prompt, reward in zip(prompts, rewards.tolist(), strict=True):
            self.rewards[prompt].append(reward)

    def advantages(self, prompts: Sequence[str], rewards: torch.Tensor) -> torch.Tensor:
        """Advantages of a batch against the statistics of every reward recorded for its prompts."""
        every = torch.tensor([r for rs in self.rewards.values() for r in rs], dtype=torch.float64)
        out = torch.empty(len(prompts), dtype=torch.float64)
        for i, (prompt, reward) in enumerate(zip(prompts, rewards.tolist(), strict=True)):
            if prompt not in self.rewards:
                raise KeyError(f"prompt {prompt!r} was never added to the tracker")
            group = torch.tensor(self.rewards[prompt], dtype=torch.float64)
            std = group.std(unbiased=False) if self.std_mode == "group" else every.std(unbiased=False)
            out[i] = (reward - group.mean()) / (std + self.std_eps)
        return out.clamp(-self.clip, self.clip).float()

    def clear(self) -> None:
        """Forget the epoch's statistics."""
        self.rewards.clear()
