"""Binary masks on the wire: row-major run lengths (numpy only, so both environments can use it).

``{"size": [H, W], "counts": [r0, r1, ...]}``: runs over the mask flattened row by row, alternating
False/True and starting with a (possibly empty) False run; the runs sum to H x W.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) boolean mask -> run-length dict."""
    flat = np.asarray(mask, dtype=bool).ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs.insert(0, 0)
    return {"size": list(mask.shape), "counts": runs}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """Run-length dict -> (H, W) boolean mask; the runs must cover the mask exactly."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"mask runs sum to {counts.sum()}, expected {height}x{width}={height * width}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(height, width)
