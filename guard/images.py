"""Images to PNG files as ``torchvision.utils.save_image`` writes them, without importing torchvision
(whose import costs each sampling or training job about 1.5 s of CPU time)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image


def image_grid(images: torch.Tensor, nrow: int, padding: int = 2) -> torch.Tensor:
    """Images (N, C, H, W) tiled ``nrow`` to a row with ``padding`` black pixels between and around them
    (torchvision's ``make_grid``); one image is returned as it is."""
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    tiles = torch.cat([images, images.new_zeros(rows * cols - n, c, h, w)])
    tiles = torch.nn.functional.pad(tiles, (padding, 0, padding, 0)).view(rows, cols, c, h + padding, w + padding)
    grid = tiles.permute(2, 0, 3, 1, 4).reshape(c, rows * (h + padding), cols * (w + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding))


def save_png(images: torch.Tensor, path: str | Path, nrow: int = 8) -> None:
    """One image (C, H, W) or a grid of images (N, C, H, W) in [0, 1] as an 8-bit PNG, rounded as
    torchvision: floor(255 x + 0.5)."""
    grid = image_grid(images, nrow) if images.dim() == 4 else images
    pixels = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()
    Image.fromarray(pixels).save(path)
