"""Each row group's gradient norm from one batched backward (per-example "ghost" norms, Goodfellow 2015).

A linear layer y_r = W a_r + b applied to rows r gets the weight gradient sum_r g_r a_r^T (g_r = dL/dy_r).
When the loss is a sum of terms L_c that each read only the rows of group c (a denoising step's
samples), the gradient of L_c is the sum over c's rows alone, so its squared norm needs only the
rows' inner products: |sum_{r in c} g_r a_r^T|^2 = sum_{r,s in c} (a_r . a_s)(g_r . g_s). The
trainer uses this to log each step's gradient norm from the same forward/backward that trains all
steps at once, instead of one backward per step.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn

from guard.sde import group_sum


def group_sum_norms_sq(gram: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """|sum_{r in c} x_r|^2 = sum_{r,s in c} <x_r, x_s> per group c, from the Gram matrix <x_r, x_s> (R, R)."""
    same = groups[:, None] == groups[None, :]
    return group_sum((gram * same).sum(1), groups, n_groups)


def row_gradient_gram(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """<G_r, G_s> of the rows' weight gradients G_r = sum_t g_rt a_rt^T (t: tokens, if any), in float64.

    Rows without tokens: (a_r . a_s)(g_r . g_s); with tokens the rows' gradients are formed first.
    """
    a, g = a.double(), g.double()
    if a.dim() == 2:
        return (a @ a.T) * (g @ g.T)
    grads = torch.einsum("rto,rti->roi", g.flatten(1, -2), a.flatten(1, -2)).flatten(1)
    return grads @ grads.T


def row_bias_gram(g: torch.Tensor) -> torch.Tensor:
    """<db_r, db_s> of the rows' bias gradients db_r = sum_t g_rt, in float64."""
    db = g.double().flatten(1, -2).sum(1) if g.dim() > 2 else g.double()
    return db @ db.T


class GroupGradNorms:
    """Squared gradient norms of row groups for the parameters ``params``, from hooks on their layers.

    Every parameter must be the weight or bias of an ``nn.Linear`` or the weight of an ``nn.Embedding``
    whose calls in one forward see the batch rows once, in order (one call, or consecutive chunks);
    anything else raises ValueError naming it.
    """

    def __init__(self, params: Sequence[nn.Parameter]) -> None:
        self.params = {id(p) for p in params}

    @contextmanager
    def tracking(self, groups: torch.Tensor, n_groups: int) -> Iterator[torch.Tensor]:
        """Within the block, one forward/backward; on leaving, the yielded (n_groups,) tensor holds each group's
        squared gradient norm summed over ``params`` (row r of every layer's input belongs to group ``groups[r]``)."""
        total = torch.zeros(n_groups, dtype=torch.float64)
        calls: dict[nn.Module, list[list[torch.Tensor]]] = {}  # per layer and call: [input, output gradient]

        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if not any(id(p) in self.params for p in module.parameters(recurse=False)):
                return
            if not isinstance(module, (nn.Linear, nn.Embedding)):
                raise ValueError(f"step gradient norms from one backward need linear layers; {type(module).__name__} "
                                 "holds trained parameters: set steps_per_backward: 1 to log them per step")
            if not output.requires_grad:
                return
            a = inputs[0].detach()
            call = [nn.functional.one_hot(a, module.num_embeddings) if isinstance(module, nn.Embedding) else a]
            calls.setdefault(module, []).append(call)
            output.register_hook(call.append)

        handle = nn.modules.module.register_module_forward_hook(hook)
        try:
            yield total
        finally:
            handle.remove()
        groups = groups.cpu()
        seen = {id(p) for module in calls for p in module.parameters(recurse=False)}
        if not self.params <= seen:
            raise ValueError(f"step gradient norms from one backward: {len(self.params - seen)} trained parameters "
                             "were used by no linear layer in the forward; set steps_per_backward: 1 to log them per step")
        for module, chunks in calls.items():
            a, g = (torch.cat([c[i] for c in chunks]) for i in (0, 1))
            if len(a) != len(groups):
                raise ValueError(f"step gradient norms from one backward: a {type(module).__name__} saw {len(a)} rows in "
                                 f"one forward, not the batch's {len(groups)} (a weight used twice, or gradient "
                                 "checkpointing); set steps_per_backward: 1 to log them per step")
            if module.weight.requires_grad:
                total.add_(group_sum_norms_sq(row_gradient_gram(a, g).cpu(), groups, n_groups))
            if getattr(module, "bias", None) is not None and module.bias.requires_grad:
                total.add_(group_sum_norms_sq(row_bias_gram(g).cpu(), groups, n_groups))


def column_groups(columns: int, rows_per_column: int) -> torch.Tensor:
    """The group (column) of each row of a step-major forward: row r holds column r // rows_per_column."""
    return torch.arange(columns).repeat_interleave(rows_per_column)


def set_column_values(rows: list[dict], k: torch.Tensor, values: torch.Tensor, key: str) -> None:
    """rows[i][key] = values[j] for each column j of steps ``k`` (P, S) that is one denoising step; ``rows`` holds one
    diagnostic row per column and distinct step in it, in order (as ``Trainer.step_loss`` returns them)."""
    i = 0
    for j in range(k.shape[1]):
        distinct = len(torch.unique(k[:, j]))
        if distinct == 1:
            rows[i][key] = values[j]
        i += distinct
