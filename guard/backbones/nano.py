"""The nano CPU domain: procedural 16x16 shape renders and a small conditional flow-matching net.

It stands in for SD3.5-M so the whole GRPO pipeline runs on a laptop CPU. Departures from the
paper's setting, on purpose:

- the "latent" is the image itself (3 x 16 x 16 RGB in [-1, 1], D = 768), no VAE;
- prompts are 3 colours x 3 shapes, embedded by a learned table instead of a text encoder;
- the velocity net is an MLP over the flattened image with adaLN blocks, plus a per-dimension
  skip path ``v = skip(c) * x + out(h)``: without it the prototype's flow-matching loss stalled
  at 0.37 (vs 0.04) and samples were noise.

Conventions (as in ``guard/backbone.py``): ``x_t = (1 - t) x0 + t noise``, target
``v = noise - x0``, clean estimate ``x0_hat = x - t v``, ``t`` in [0, 1] with 1 = pure noise.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from eval.nano_world import COLOURS, LATENT_SHAPE, SHAPES, prompt_ids, prompts, render


# ----------------------------------------------------------------------------------------------
# Velocity network


@dataclass(frozen=True)
class NanoConfig:
    """Nano velocity net and its pretraining; the defaults are the embedded default experiment."""

    width: int = 512
    """Trunk width of the MLP over the flattened 768-dim image."""
    cond_dim: int = 128
    """Width of the condition embedding (time + prompt) feeding adaLN and the skip path."""
    depth: int = 3
    """Number of adaLN residual blocks."""
    steps: int = 3000
    """Pretraining optimizer steps."""
    batch: int = 256
    """Images per pretraining step (rendered on the fly)."""
    lr: float = 1e-3
    """Peak AdamW learning rate (cosine decay to 0 after a linear warmup)."""
    warmup: int = 100
    """Linear lr warmup steps."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    ema: float = 0.999
    """EMA decay of the returned weights (ramped as min(ema, (1+k)/(10+k)) over step k)."""
    seed: int = 0
    """Seed of the weight init, the data stream and the noise."""

    def __post_init__(self) -> None:
        if min(self.width, self.cond_dim, self.depth, self.steps, self.batch) < 1:
            raise ValueError(f"width, cond_dim, depth, steps and batch must be >= 1, got {self}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.warmup >= self.steps:
            raise ValueError(f"warmup ({self.warmup}) must be shorter than steps ({self.steps})")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [cos(1000 t f_i), sin(1000 t f_i)], f_i = 10000^(-i/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = 1000.0 * t.float().unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class AdaLNBlock(nn.Module):
    """Residual MLP block: h + gate(c) * mlp(LN(h) * (1 + scale(c)) + shift(c)), gate zero-init."""

    def __init__(self, width: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Linear(cond_dim, 3 * width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(c).chunk(3, dim=1)
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class VelocityNet(nn.Module):
    """v(x, t, p) = skip(c) * x + out(h), c = SiLU(time_mlp(emb(t)) + prompt_emb(p)), h = adaLN MLP trunk."""

    def __init__(self, config: NanoConfig, n_prompts: int = len(COLOURS) * len(SHAPES)) -> None:
        super().__init__()
        dim = math.prod(LATENT_SHAPE)
        self.cond_dim = config.cond_dim
        cond = config.cond_dim
        self.time_mlp = nn.Sequential(nn.Linear(cond, cond), nn.SiLU(), nn.Linear(cond, cond))
        self.prompt_embedding = nn.Embedding(n_prompts, config.cond_dim)
        self.input = nn.Linear(dim, config.width)
        self.blocks = nn.ModuleList(AdaLNBlock(config.width, config.cond_dim) for _ in range(config.depth))
        self.out_norm = nn.LayerNorm(config.width, elementwise_affine=False)
        self.out_modulation = nn.Linear(config.cond_dim, 2 * config.width)
        self.output = nn.Linear(config.width, dim)
        self.skip = nn.Linear(config.cond_dim, dim)
        for layer in (self.out_modulation, self.output, self.skip):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        c = nn.functional.silu(
            self.time_mlp(timestep_embedding(t, self.cond_dim)) + self.prompt_embedding(ids)
        )
        flat = x.flatten(1)
        h = self.input(flat)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.out_modulation(c).chunk(2, dim=1)
        out = self.output(self.out_norm(h) * (1 + scale) + shift)
        return (self.skip(c) * flat + out).view_as(x)


def parameter_count(net: nn.Module) -> int:
    """Number of scalar parameters of ``net``."""
    return sum(p.numel() for p in net.parameters())


# ----------------------------------------------------------------------------------------------
# Pretraining


def flow_matching_loss(
    net: VelocityNet, x0: torch.Tensor, ids: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """mean |net(x_t, t, p) - (noise - x0)|^2 with x_t = (1 - t) x0 + t noise, t ~ U(0, 1)."""
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.rand(x0.shape[0], generator=generator)
    tb = t.view(-1, 1, 1, 1)
    x_t = (1 - tb) * x0 + tb * noise
    return (net(x_t, t, ids) - (noise - x0)).pow(2).mean()


def cosine_lr(step: int, config: NanoConfig) -> float:
    """lr * k/warmup during warmup, then lr * (1 + cos(pi * progress)) / 2."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / (config.steps - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay(step: int, config: NanoConfig) -> float:
    """min(ema, (1 + k) / (10 + k)): the early average does not keep the random init."""
    return min(config.ema, (1 + step) / (10 + step))


def pretrain(config: NanoConfig) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Flow-matching pretraining on fresh renders; returns (EMA state dict, stats)."""
    torch.set_flush_denormal(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = VelocityNet(config)
    generator = torch.Generator().manual_seed(config.seed)
    ema = copy.deepcopy(net).requires_grad_(False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_prompts = len(prompts())
    losses = []
    start = time.perf_counter()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, config)
        ids = torch.randint(n_prompts, (config.batch,), generator=generator)
        loss = flow_matching_loss(net, render(ids, generator), ids, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - ema_decay(step, config))
        losses.append(loss.item())
    tail = losses[-max(1, config.steps // 10):]
    stats = {
        "seconds": time.perf_counter() - start,
        "first_loss": losses[0],
        "final_loss": sum(tail) / len(tail),
        "parameters": float(parameter_count(net)),
    }
    return ema.state_dict(), stats


def load_or_pretrain(path: str | os.PathLike, config: NanoConfig) -> tuple[VelocityNet, dict[str, float]]:
    """The pretrained EMA net cached at ``path`` (safetensors), pretraining and writing it if absent."""
    path = Path(path)
    if path.exists():
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        saved = json.loads(meta.get("config", "{}"))
        if saved != asdict(config):
            diff = {k: (saved.get(k), v) for k, v in asdict(config).items() if saved.get(k) != v}
            raise ValueError(
                f"cached nano weights {path} were trained with another config "
                f"(field: (saved, requested)) {diff}; delete the file or use the saved config"
            )
        stats = json.loads(meta["stats"])
    else:
        state, stats = pretrain(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        metadata = {"config": json.dumps(asdict(config)), "stats": json.dumps(stats)}
        save_file(state, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    net = VelocityNet(config)
    net.load_state_dict(state)
    return net.eval(), stats


# ----------------------------------------------------------------------------------------------
# Backbone


class NanoBackbone:
    """``guard.backbone.Backbone`` over the nano net: a trainable copy and a frozen reference copy."""

    latent_shape: tuple[int, ...] = LATENT_SHAPE
    rows_in_one_call: bool = True

    def __init__(self, net: VelocityNet) -> None:
        torch.set_flush_denormal(True)
        self.policy = copy.deepcopy(net).train().requires_grad_(True)
        self.reference = copy.deepcopy(net).eval().requires_grad_(False)

    @classmethod
    def pretrained(cls, path: str | os.PathLike, config: NanoConfig) -> "NanoBackbone":
        """Backbone around the cached (or freshly pretrained) nano net at ``path``."""
        return cls(load_or_pretrain(path, config)[0])

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompt ids (B,); unknown prompts raise ValueError."""
        return prompt_ids(prompts)

    def select(self, cond: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The rows ``index`` of the prompt ids."""
        return cond[index]

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Trainable policy velocity; ``t`` (B,) or a scalar broadcast over the batch."""
        return self.policy(x, t.expand(x.shape[0]), cond)

    def reference_velocity(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Frozen pretrained velocity, without autograd."""
        with torch.no_grad():
            return self.reference(x, t.expand(x.shape[0]), cond)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        """All weights of the policy net."""
        return self.policy.parameters()

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Images clamp((x + 1) / 2, 0, 1)."""
        return ((x + 1) / 2).clamp(0.0, 1.0)
