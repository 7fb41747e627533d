"""Measure the nano backbone: pretrain (or load) the default config, then score its ODE samples.

Run: ``python bench/nano_pretrain.py --cache results/nano/backbone.safetensors``. Prints one JSON
object: pretraining stats, held-out flow-matching loss, and proxy / gold of the base model's
10-step Euler ODE samples next to the same metrics of real renders.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from eval.nano import PROXIES, NanoGold, average_gold
from guard.backbones.nano import (
    NanoConfig,
    VelocityNet,
    flow_matching_loss,
    load_or_pretrain,
    prompts,
    render,
)


def shifted(u: torch.Tensor, shift: float = 3.0) -> torch.Tensor:
    """SD3 time shift s(u) = shift u / (1 + (shift - 1) u)."""
    return shift * u / (1 + (shift - 1) * u)


def ode_grid(steps: int = 10) -> torch.Tensor:
    """t = s(linspace(1, s(1/1000), steps)) followed by a final 0; (steps + 1,)."""
    head = shifted(torch.linspace(1.0, float(shifted(torch.tensor(1e-3))), steps))
    return torch.cat([head, torch.zeros(1)])


@torch.no_grad()
def euler_sample(
    net: VelocityNet, ids: torch.Tensor, grid: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """x_{k+1} = x_k + (t_{k+1} - t_k) v(x_k, t_k) from x_0 ~ N(0, I) at t = 1."""
    x = torch.randn((ids.shape[0], 3, 16, 16), generator=generator)
    for t, t_next in zip(grid[:-1], grid[1:]):
        x = x + (t_next - t) * net(x, t.expand(ids.shape[0]), ids)
    return x


def summarise(gold: NanoGold, images: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Gold metrics and mean proxy rewards of an image set."""
    proxies = {name: float(fn(images, names).mean()) for name, fn in PROXIES.items()}
    return {**gold.score(images, names), **proxies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default="results/nano/backbone.safetensors")
    parser.add_argument("--per-prompt", type=int, default=100, help="samples per prompt")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads; 2 threads on a shared 2-core machine ran 100-200x slower than 1",
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    start = time.perf_counter()
    net, stats = load_or_pretrain(args.cache, NanoConfig())
    load_seconds = time.perf_counter() - start

    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.arange(len(prompts())).repeat_interleave(args.per_prompt)
    names = [prompts()[i] for i in ids]
    with torch.no_grad():
        heldout_loss = float(flow_matching_loss(net, render(ids, generator), ids, generator))
    start = time.perf_counter()
    samples = (euler_sample(net, ids, ode_grid(), generator) + 1).div(2).clamp(0, 1)
    sample_seconds = time.perf_counter() - start
    real = (render(ids, generator) + 1) / 2

    start = time.perf_counter()
    gold = NanoGold.fit()
    fit_seconds = time.perf_counter() - start
    base, reference = summarise(gold, samples, names), summarise(gold, real, names)
    print(json.dumps({
        "pretrain": stats,
        "load_or_pretrain_seconds": load_seconds,
        "heldout_flow_matching_loss": heldout_loss,
        "sample_seconds": sample_seconds,
        "gold_fit_seconds": fit_seconds,
        "ode_samples": base,
        "real_renders": reference,
        "average_gold_samples_vs_real": average_gold(base, reference),
    }, indent=2))


if __name__ == "__main__":
    main()
