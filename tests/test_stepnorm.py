"""Each row group's gradient norm from one backward (guard.stepnorm) against one backward per group."""

import pytest
import torch
from torch import nn

from guard.stepnorm import GroupGradNorms, column_groups, set_column_values


class Net(nn.Module):
    """Rows of (x, id) -> a scalar per row, through an embedding, linear layers and a token dimension."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 6)
        self.first = nn.Linear(6, 8)
        self.tokens = nn.Linear(8, 4)  # applied to 3 tokens per row
        self.norm = nn.LayerNorm(4, elementwise_affine=False)
        self.last = nn.Linear(4, 1, bias=False)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.first(x + self.embed(ids)))
        t = self.tokens(h[:, None, :] * torch.linspace(0.5, 1.5, 3)[:, None])
        return self.last(self.norm(t)).sum((1, 2))


def per_group_norms(net: nn.Module, loss_of_rows, groups: torch.Tensor, n: int) -> torch.Tensor:
    """|grad L_c| by one backward per group c."""
    norms = []
    for c in range(n):
        grads = torch.autograd.grad(loss_of_rows()[groups == c].sum(), list(net.parameters()))
        norms.append(torch.stack([g.norm() for g in grads]).norm())
    return torch.stack(norms)


@pytest.mark.parametrize("chunk", [12, 5])  # the rows in one call, or in calls of 5 rows (groups span calls)
def test_group_norms_from_one_backward_equal_one_backward_per_group(chunk):
    torch.manual_seed(0)
    net = Net()
    x, ids = torch.randn(12, 6), torch.randint(5, (12,))
    groups = column_groups(3, 4)
    weights = torch.randn(12)  # each row's loss weight, so the groups' gradients differ
    loss_of_rows = lambda: weights * torch.cat([net(*rows) for rows in zip(x.split(chunk), ids.split(chunk))])  # noqa: E731
    with GroupGradNorms(list(net.parameters())).tracking(groups, 3) as sq:
        loss_of_rows().sum().backward()
    expected = per_group_norms(net, loss_of_rows, groups, 3)
    torch.testing.assert_close(sq.sqrt().float(), expected, rtol=1e-5, atol=0)
    # the summed gradient is the ordinary one
    full = torch.autograd.grad(loss_of_rows().sum(), list(net.parameters()))
    for p, g in zip(net.parameters(), full):
        torch.testing.assert_close(p.grad, g)


def test_only_the_tracked_parameters_count():
    torch.manual_seed(1)
    net = Net()
    net.first.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    x, ids, groups = torch.randn(6, 6), torch.randint(5, (6,)), column_groups(2, 3)
    with GroupGradNorms(params).tracking(groups, 2) as sq:
        net(x, ids).sum().backward()
    norms = []
    for c in range(2):
        grads = torch.autograd.grad(net(x, ids)[groups == c].sum(), params)
        norms.append(torch.stack([g.norm() for g in grads]).norm())
    torch.testing.assert_close(sq.sqrt().float(), torch.stack(norms), rtol=1e-5, atol=0)


def test_weights_outside_linear_layers_or_used_twice_are_refused():
    affine = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    with pytest.raises(ValueError, match="LayerNorm holds trained parameters.*steps_per_backward: 1"):
        with GroupGradNorms(list(affine.parameters())).tracking(column_groups(2, 2), 2):
            affine(torch.randn(4, 3)).sum().backward()
    shared = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="a Linear saw 8 rows in one forward, not the batch's 4"):
        with GroupGradNorms(list(shared.parameters())).tracking(column_groups(2, 2), 2):
            shared(shared(torch.randn(4, 3))).sum().backward()
    scale = nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="1 trained parameters were used by no linear layer"):
        with GroupGradNorms([*shared.parameters(), scale]).tracking(column_groups(2, 2), 2):
            (shared(torch.randn(4, 3)) * scale).sum().backward()


def test_column_values_go_to_the_columns_of_one_step():
    k = torch.tensor([[0, 3, 5], [0, 4, 5]])  # column 1 holds two steps: two rows, no value
    rows = [{"step": 0}, {"step": 3}, {"step": 4}, {"step": 5}]
    set_column_values(rows, k, torch.tensor([1.0, 2.0, 3.0]), "norm")
    assert [r.get("norm") for r in rows] == [1.0, None, None, 3.0]
    assert column_groups(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
