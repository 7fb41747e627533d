"""The per-epoch K-repeat draw of prompts (strings or records), as Flow-GRPO samples them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Sequence, TypeVar, Union

import torch

from eval.prompts.records import HasPrompt


P = TypeVar("P", bound=Union[str, HasPrompt])


def prompt_text(item: str | HasPrompt) -> str:
    """The prompt of a plain string or of a record."""
    return item if isinstance(item, str) else item.prompt


@dataclass(frozen=True)
class EpochDraw(Generic[P]):
    """One epoch's samples, group-contiguous: samples ``g*K .. g*K+K-1`` form group ``g``."""

    epoch: int
    index: tuple[int, ...]
    """Per sample, the position of its prompt in the sampler's prompt list."""
    group: tuple[int, ...]
    """Per sample, its group id in ``0 .. n_prompts-1``; a group's samples share one prompt."""
    items: tuple[P, ...]
    """Per sample, the prompt string or record."""

    @property
    def prompts(self) -> list[str]:
        """Per sample, the prompt text."""
        return [prompt_text(item) for item in self.items]


@dataclass(frozen=True)
class KRepeatSampler(Generic[P]):
    """Flow-GRPO's K-repeat draw: each epoch, ``n_prompts`` distinct prompts ``group_size`` times.

    The prompts of epoch ``e`` are ``torch.randperm(len(items), generator=g)[:n_prompts]`` with
    ``g`` seeded ``seed + epoch``, the same prompts Flow-GRPO's ``DistributedKRepeatSampler`` draws
    for that seed and epoch when its ``m`` (unique prompts per epoch, after its lcm rounding)
    equals ``n_prompts``.
    Departures: samples are laid out group by group instead of shuffled across ranks, and groups
    are identified by index rather than by prompt string, so repeated prompts never merge groups.
    Each draw depends on (seed, epoch) alone, so a resumed run sees the prompts of an
    uninterrupted one. As in the reference, (seed, epoch + 1) draws what (seed + 1, epoch) draws.
    "Distinct" means distinct positions in ``items``: a prompt repeated in the file can be drawn
    twice in one epoch, as in the reference.
    """

    items: Sequence[P]
    n_prompts: int
    group_size: int
    seed: int = 0

    def __post_init__(self) -> None:
        """Freeze the prompt list and check sizes once, with errors that say what to change."""
        object.__setattr__(self, "items", tuple(self.items))
        if self.n_prompts < 1:
            raise ValueError(f"n_prompts must be >= 1, got {self.n_prompts}")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {self.group_size}")
        if self.n_prompts > len(self.items):
            raise ValueError(
                f"n_prompts={self.n_prompts} exceeds the {len(self.items)} prompts available; "
                "lower n_prompts (prompts per epoch) or use a larger prompt file"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    @property
    def samples_per_epoch(self) -> int:
        """``n_prompts * group_size``."""
        return self.n_prompts * self.group_size

    def draw(self, epoch: int) -> EpochDraw[P]:
        """The samples of ``epoch`` (>= 0), from (seed, epoch) alone."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        generator = torch.Generator().manual_seed(self.seed + epoch)
        chosen = torch.randperm(len(self.items), generator=generator)[: self.n_prompts].tolist()
        index = tuple(i for i in chosen for _ in range(self.group_size))
        group = tuple(g for g in range(self.n_prompts) for _ in range(self.group_size))
        return EpochDraw(epoch, index, group, tuple(self.items[i] for i in index))


# ---------------------------------------------------------------------------- manifest CLI
