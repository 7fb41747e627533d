"""A task = the prompts to train on, the proxy reward that is optimised, and the gold metrics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Sequence

import torch

Reward = Callable[[torch.Tensor, Sequence[str]], torch.Tensor]
Gold = Callable[[torch.Tensor, Sequence[str]], dict[str, float]]
GoldPerImage = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


@dataclass
class Task:
    """Prompts, the proxy reward (images in [0, 1], prompts) -> (B,), and gold metrics per set and per image."""

    prompts: list[str]
    reward: Reward
    gold: Gold
    gold_per_image: GoldPerImage


@cache
def _nano_gold(options: tuple[tuple[str, Any], ...]) -> Any:
    """The nano gold density, fitted once (about 2 s) and cached at ``cache`` when the options name one."""
    from eval.nano import NanoGold

    options = dict(options)
    cache_path = options.pop("cache", None)
    return NanoGold.load_or_fit(cache_path, **options) if cache_path else NanoGold.fit(**options)


def build_nano_task(options: dict[str, Any]) -> Task:
    """The nano task: colour x shape prompts, a nano proxy reward, gold from a density of real renders."""
    from eval.nano import PROXIES
    from guard.backbones.nano import prompts

    name = options["reward"]
    if name not in PROXIES:
        raise ValueError(f"unknown nano reward {name!r}; choose one of {sorted(PROXIES)}")
    key = tuple(sorted(options.get("gold", {}).items()))
    return Task(prompts(), PROXIES[name], lambda images, names: _nano_gold(key).score(images, names),
                lambda images, names: _nano_gold(key).per_image(images, names))


TASKS: dict[str, Callable[[dict[str, Any]], Task]] = {"nano": build_nano_task}


def build_task(backbone_name: str, options: dict[str, Any]) -> Task:
    """The task for a backbone's domain (the nano backbone has its own task)."""
    if backbone_name not in TASKS:
        raise ValueError(f"no task defined for backbone {backbone_name!r}; known: {sorted(TASKS)}")
    return TASKS[backbone_name](options)
