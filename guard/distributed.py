"""Data parallelism for the GRPO trainer over the processes of ``accelerate launch``.

The result is the one-process update of the same global batch, up to float summation order:

- every process draws the same full-batch prompts and noise from the same CPU generator, so the
  RNG stream (and a resume) is that of one process; each keeps only its ``Shard``, a contiguous
  block of equally many samples (``prompts_per_iteration x group_size`` must be divisible by the
  number of processes; a group may span processes, as in Flow-GRPO's 48 x 24 images on 32 GPUs);
- rewards are all-gathered, so advantages (group or global std) come from the full batch;
- each optimizer step uses the global minibatch (the same random order everywhere) restricted to
  the samples a process holds, its loss scaled by local count / global count, so the SUM of the
  processes' gradients is the one-process gradient of the global minibatch, even where
  ``drop_zero_advantage`` leaves the processes uneven counts.

Gradients are summed by an explicit all-reduce of the trainable parameters' gradients before
clipping (``Processes.sum_grads``), not by DDP: the trainer calls the backbone's velocity, never a
wrapped module; a process may hold no sample of a minibatch and run no backward, where DDP would
wait for it; and the per-step gradient diagnostic reads the gradient between backward calls.
One all-reduce per trainable tensor and optimizer step is cheap for LoRA adapters.

No mixed precision is set here: the backbone applies its own autocast, the step math is fp32.

Nothing here depends on how the processes are spread over machines: ``accelerate launch
--num_machines N`` (one launcher per node, ``workflow/scripts/train_nodes.sh`` on SLURM) gives the
same update as one node, and a checkpoint (written by process 0: the full weights, optimizer state
and the shared generator) resumes on any number of processes and nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Sequence

import torch

from jobs.config import ConfigError

if TYPE_CHECKING:
    from accelerate import PartialState

@dataclass(frozen=True)
class Shard:
    """The rows ``start .. stop - 1`` of a batch of ``total`` samples that one process holds."""

    start: int
    stop: int
    total: int

    @property
    def rows(self) -> slice:
        """The slice of the full batch held here."""
        return slice(self.start, self.stop)

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Of the full-batch sample indices ``index``: which ones are held here (a mask) and their local rows."""
        mine = (index >= self.start) & (index < self.stop)
        return mine, index[mine] - self.start


def sample_shard(groups: int, group_size: int, rank: int, world: int) -> Shard:
    """Process ``rank``'s contiguous block of ``groups * group_size / world`` samples of a rollout of ``groups``
    groups (a group may span processes: its advantages come from the gathered rewards of the whole batch)."""
    total = groups * group_size
    if total % world:
        raise ConfigError(f"config keys 'prompts_per_iteration' x 'group_size' ({groups} x {group_size} = {total} "
                          f"samples) must be divisible by the number of processes ({world}): each process rolls out "
                          f"an equal share; change them or launch a number of processes that divides {total}")
    size = total // world
    return Shard(rank * size, (rank + 1) * size, total)


class Processes:
    """The process group the trainer runs in: one process (no accelerate state) or an accelerate launch."""

    def __init__(self, state: PartialState | None = None) -> None:
        self.state = state
        self.rank = state.process_index if state is not None else 0
        self.world = state.num_processes if state is not None else 1
        self.device = state.device if state is not None else torch.device("cpu")
        """Where collectives run (the process's GPU under NCCL, the CPU under gloo)."""
        self.node_first = self.rank - (state.local_process_index if state is not None else 0)
        """The rank of the first process on this process's machine (ranks are contiguous per machine)."""

    @classmethod
    def launched(cls, timeout: timedelta) -> "Processes":
        """The processes of this launch, from accelerate's environment (one process without a launcher).

        ``timeout`` (config key ``collective_timeout``): how long a collective waits before it raises. The
        others wait in one while the main process evaluates and checkpoints, so it must exceed those;
        a process of a lost node never arrives, and the survivors exit after it.

        Without CUDA the group uses gloo on the CPU (``accelerate launch --multi_gpu`` or ``torchrun``
        on a CPU machine); call this before building the backbone, so its GPU is this process's.
        """
        from accelerate import PartialState

        return cls(PartialState(cpu=not torch.cuda.is_available(), timeout=timeout))

    @property
    def is_main(self) -> bool:
        """Whether this process writes logs, images and checkpoints and runs the evaluation."""
        return self.rank == 0

    @property
    def is_node_main(self) -> bool:
        """Whether this process is the first on its machine (it starts the metric servers of its node)."""
        return self.rank == self.node_first

    def shard(self, groups: int, group_size: int) -> Shard:
        """This process's shard of a rollout of ``groups`` groups."""
        return sample_shard(groups, group_size, self.rank, self.world)

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.world > 1:
            self.state.wait_for_everyone()

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """The processes' equal-sized tensors concatenated along dim 0 in rank order (on ``tensor``'s device)."""
        if self.world == 1:
            return tensor
        from accelerate.utils import gather

        return gather(tensor.to(self.device).contiguous()).to(tensor.device)

    def block(self, n: int) -> slice:
        """This process's contiguous block of ``n`` items split as evenly as possible (ceil(n / world) each, the
        last ones shorter or empty)."""
        size = -(-n // self.world)
        return slice(min(n, self.rank * size), min(n, (self.rank + 1) * size))

    def gather_blocks(self, tensor: torch.Tensor, n: int) -> torch.Tensor:
        """The processes' :meth:`block` parts of ``n`` rows, concatenated in order (every process gets all)."""
        if self.world == 1:
            return tensor
        size = -(-n // self.world)
        shape = torch.tensor(tensor.shape[1:]).to(self.device)  # an empty block does not know the row shape
        torch.distributed.all_reduce(shape, op=torch.distributed.ReduceOp.MAX)
        padded = torch.zeros((size, *shape.tolist()), dtype=tensor.dtype, device=tensor.device)
        padded[: len(tensor)] = tensor
        whole = self.gather(padded)
        return torch.cat([whole[r * size : r * size + len(range(n)[slice(r * size, (r + 1) * size)])]
                          for r in range(self.world)])

    def share(self, value: Any) -> Any:
        """The main process's ``value`` (any picklable object) on every process."""
        if self.world == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]

    def share_in_node(self, value: Any) -> Any:
        """The ``value`` of the first process on this process's machine (any picklable object), e.g. the URLs
        of the metric servers that process started on the machine."""
        if self.world == 1:
            return value
        values = [None] * self.world
        torch.distributed.all_gather_object(values, value)
        return values[self.node_first]

    def sum(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum each tensor over the processes, in place."""
        if self.world == 1:
            return
        for tensor in tensors:
            total = tensor.to(self.device)
            torch.distributed.all_reduce(total)
            if total is not tensor:
                tensor.copy_(total)

    def summed(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each tensor summed over the processes (copies; the tensors themselves when there is one process)."""
        if self.world == 1:
            return list(tensors)
        copies = [t.clone() for t in tensors]
        self.sum(copies)
        return copies

    def sum_floats(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes of equally long lists of numbers."""
        if self.world == 1:
            return values
        total = torch.tensor(values, dtype=torch.float64)
        self.sum([total])
        return total.tolist()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any process (every process gets the same answer)."""
        return bool(self.sum_floats([float(flag)])[0]) if self.world > 1 else flag

    def broadcast(self, params: Sequence[torch.Tensor]) -> None:
        """Copy the main process's tensors (parameters, EMA shadows) to every process (as DDP does for a model), so a
        backbone whose initialisation differs between processes cannot make them drift apart."""
        if self.world == 1:
            return
        with torch.no_grad():
            for p in params:
                value = p.detach().to(self.device)
                torch.distributed.broadcast(value, src=0)
                p.copy_(value)

    def sum_grads(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the processes; one without a gradient anywhere keeps none.

        A process that held no sample of a minibatch has no gradients: it contributes zeros, so every
        process then steps every parameter that some process has a gradient for.
        """
        if self.world == 1:
            return
        present = self.sum_floats([float(p.grad is not None) for p in params])
        for p, count in zip(params, present):
            if count and p.grad is None:
                p.grad = torch.zeros_like(p)
        self.sum([p.grad for p, count in zip(params, present) if count])
