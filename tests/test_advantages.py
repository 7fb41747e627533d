"""Group-relative advantages on hand-computed batches."""

import pytest
import torch

from guard.advantages import group_advantages


def test_group_std_two_groups_by_hand():
    rewards = torch.tensor([1.0, 3.0, 10.0, 30.0])
    groups = torch.tensor([0, 0, 1, 1])
    adv = group_advantages(rewards, groups, "group", std_eps=0.0)
    # group 0: mean 2, population std 1; group 1: mean 20, std 10 -> both +-1
    assert torch.allclose(adv, torch.tensor([-1.0, 1.0, -1.0, 1.0]))


def test_global_std_two_groups_by_hand():
    rewards = torch.tensor([1.0, 3.0, 10.0, 30.0])
    groups = torch.tensor([0, 0, 1, 1])
    adv = group_advantages(rewards, groups, "global", std_eps=1e-4)
    # population std of all four rewards: mean 11, deviations -10 -8 -1 19 -> var 526/4
    std = (526 / 4) ** 0.5 + 1e-4
    assert torch.allclose(adv, torch.tensor([-1 / std, 1 / std, -10 / std, 10 / std]), atol=1e-6)


def test_eps_clip_and_unbiased_option():
    rewards = torch.tensor([0.0, 0.0, 0.0, 1.0])
    groups = torch.zeros(4, dtype=torch.long)
    adv = group_advantages(rewards, groups, "group", std_eps=1e-4)
    std = (3 / 16) ** 0.5 + 1e-4
    assert torch.allclose(adv, torch.tensor([-0.25, -0.25, -0.25, 0.75]) / std, atol=1e-5)
    identical = group_advantages(torch.ones(3), torch.zeros(3, dtype=torch.long))
    assert torch.equal(identical, torch.zeros(3))  # eps keeps 0/0 finite
    outlier = torch.tensor([0.0] * 63 + [1.0])
    assert float(group_advantages(outlier, torch.zeros(64, dtype=torch.long)).max()) == 5.0
    assert float(group_advantages(-outlier, torch.zeros(64, dtype=torch.long)).min()) == -5.0
    assert float(group_advantages(outlier, torch.zeros(64, dtype=torch.long), clip=2.0).max()) == 2.0
    unbiased = group_advantages(torch.tensor([1.0, 3.0]), torch.tensor([0, 0]), std_eps=1e-8, unbiased=True)
    assert torch.allclose(unbiased, torch.tensor([-1.0, 1.0]) / 2**0.5, atol=1e-6)
    with pytest.raises(ValueError, match="std_mode"):
        group_advantages(rewards, groups, "batch")
