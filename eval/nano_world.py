"""The nano world: 9 prompts "a {colour} {shape}" and their procedural 16x16 renders.

Shared by the nano backbone (``guard/backbones/nano.py``, its pretraining data) and the nano rewards and
gold metrics (``eval/nano.py``); it imports neither.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

IMAGE_SIZE = 16
LATENT_SHAPE = (3, IMAGE_SIZE, IMAGE_SIZE)
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.95, 0.15, 0.15),
    "green": (0.15, 0.85, 0.15),
    "blue": (0.20, 0.30, 1.00),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUND = 0.5
"""Grey level of the background in [0, 1] (0 in the [-1, 1] latent)."""
POSITION_MODES: tuple[tuple[float, float], ...] = ((0.5, 0.5), (0.36, 0.5), (0.5, 0.36), (0.64, 0.36))
"""Anchor (x, y) of the shape centre as a fraction of the image side, one per position mode."""
POSITION_JITTER = 0.06
"""Half-width of the uniform jitter around the anchor, as a fraction of the image side."""
RADIUS_RANGE = (3.0, 4.5)
"""Shape size in pixels (circle radius; square and triangle scaled to similar area)."""
BRIGHTNESS_RANGE = (0.7, 1.0)
"""Multiplier on the shape colour."""


def prompts() -> list[str]:
    """The 9 nano prompts "a {colour} {shape}", colour-major; a prompt's id is its index here."""
    return [f"a {colour} {shape}" for colour in COLOURS for shape in SHAPES]


def prompt_colour(prompt: str) -> str:
    """The colour word of a nano prompt."""
    return prompt.split()[1]


def prompt_ids(names: Sequence[str]) -> torch.Tensor:
    """LongTensor of prompt ids; ValueError naming an unknown prompt and listing valid ones."""
    table = {p: i for i, p in enumerate(prompts())}
    unknown = [p for p in names if p not in table]
    if unknown:
        raise ValueError(f"unknown nano prompt {unknown[0]!r}; valid prompts: {prompts()}")
    return torch.tensor([table[p] for p in names], dtype=torch.long)


# ----------------------------------------------------------------------------------------------
# Renderer


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """n draws of U(low, high)."""
    return low + (high - low) * torch.rand(n, generator=generator)


def _triangle_sdf(px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance to an upward equilateral triangle of side 2r centred on its centroid."""
    k = math.sqrt(3.0)
    qx = px.abs() - r
    qy = py + r / k
    fold = qx + k * qy > 0
    qx, qy = torch.where(fold, (qx - k * qy) / 2, qx), torch.where(fold, (-k * qx - qy) / 2, qy)
    qx = qx - qx.clamp(min=-2 * r, max=torch.zeros_like(r))
    return -torch.sqrt(qx**2 + qy**2) * torch.sign(qy)


def shape_sdf(shape: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance (pixels) to circle (0), square (1) or triangle (2) of size r at offset (dx, dy)."""
    circle = torch.sqrt(dx**2 + dy**2) - r
    square = torch.maximum(dx.abs(), dy.abs()) - 0.85 * r
    triangle = _triangle_sdf(dx, -dy, 1.15 * r)
    return torch.where(shape == 0, circle, torch.where(shape == 1, square, triangle))


def render(ids: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images (B, 3, 16, 16) in [-1, 1] of prompts ``ids``: img = bg + coverage * (colour - bg)."""
    n = ids.shape[0]
    colour_idx, shape_idx = ids // len(SHAPES), ids % len(SHAPES)
    mode = torch.randint(len(POSITION_MODES), (n,), generator=generator)
    anchors = torch.tensor(POSITION_MODES)[mode] * IMAGE_SIZE
    jitter = (torch.rand(n, 2, generator=generator) * 2 - 1) * POSITION_JITTER * IMAGE_SIZE
    centre = anchors + jitter
    radius = _uniform(n, *RADIUS_RANGE, generator)
    brightness = _uniform(n, *BRIGHTNESS_RANGE, generator)
    grid = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5
    dx = grid.view(1, 1, -1) - centre[:, 0].view(-1, 1, 1)
    dy = grid.view(1, -1, 1) - centre[:, 1].view(-1, 1, 1)
    sdf = shape_sdf(shape_idx.view(-1, 1, 1), dx, dy, radius.view(-1, 1, 1))
    coverage = (0.5 - sdf).clamp(0.0, 1.0).unsqueeze(1)
    colour = torch.tensor(list(COLOURS.values()))[colour_idx] * brightness.unsqueeze(1)
    image = BACKGROUND + coverage * (colour.view(n, 3, 1, 1) - BACKGROUND)
    return image * 2 - 1
