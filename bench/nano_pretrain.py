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
from guard.backbones.nano import NanoBackbone, NanoConfig, flow_matching_loss, load_or_pretrain, prompts, render
from guard.rollout import sample_ode
from guard.schedule import diffusers_flow_grid


def summarise(gold: NanoGold, images: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Gold metrics and mean proxy rewards of an image set."""
    proxies = {name: float(fn(images, names).mean()) for name, fn in PROXIES.items()}
    return {**gold.score(images, names), **proxies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default="results/bench/nano_base.safetensors")
    parser.add_argument("--steps", type=int, default=NanoConfig().steps, help="pretraining steps")
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
    net, stats = load_or_pretrain(args.cache, NanoConfig(steps=args.steps))
    load_seconds = time.perf_counter() - start

    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.arange(len(prompts())).repeat_interleave(args.per_prompt)
    names = [prompts()[i] for i in ids]
    with torch.no_grad():
        heldout_loss = float(flow_matching_loss(net, render(ids, generator), ids, generator))
    start = time.perf_counter()
    backbone = NanoBackbone(net)
    noise = torch.randn((len(ids), *backbone.latent_shape), generator=generator)
    samples = backbone.decode(sample_ode(backbone, diffusers_flow_grid(10, 3.0), ids, noise))
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
