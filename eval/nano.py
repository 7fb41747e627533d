"""Rewards and gold metrics of the nano domain (16x16 shape renders, see ``eval.nano_world``).

Every reward has the signature ``(images (B, 3, H, W) in [0, 1], prompts) -> (B,)``.

- Proxy rewards (what GRPO optimises; hackable, they can rise while quality falls):
  ``composition`` pulls the prompted colour's centre of mass toward the top-left quadrant, which
  the training renders never reach, and can be raised by smearing colour there;
  ``saturation`` rewards colourful pixels anywhere.
- Gold metrics (what the proxy should not destroy), fitted to many real renders: exact
  per-dimension log-likelihood under a per-prompt mixture of probabilistic-PCA Gaussians, prompt
  accuracy (argmax over prompts of that likelihood), and within-prompt diversity.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from eval.nano_world import COLOURS, prompt_colour, prompt_ids, prompts, render

TARGET = (0.25, 0.25)
"""Composition target (x, y) as a fraction of the image side: centre of the top-left quadrant."""
CENTROID_PRIOR = 1e-3
"""Weight of a pseudo-pixel at the image centre, so an image without the colour has a centroid."""

Reward = Callable[[torch.Tensor, Sequence[str]], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# Proxy rewards


def colour_weight(images: torch.Tensor, colours: Sequence[str]) -> torch.Tensor:
    """w = relu(c_k - max of the other two channels), k = each image's colour channel; (B, H, W)."""
    channel = torch.tensor([list(COLOURS).index(c) for c in colours])
    own = images[torch.arange(images.shape[0]), channel]
    others = images.masked_fill(
        torch.nn.functional.one_hot(channel, 3).bool().view(-1, 3, 1, 1), float("-inf")
    ).amax(dim=1)
    return (own - others).clamp(min=0.0)


def colour_centroid(images: torch.Tensor, colours: Sequence[str]) -> torch.Tensor:
    """(sum w p + eps * centre) / (sum w + eps) over pixel centres p, in pixels; (B, 2) as (x, y)."""
    _, _, height, width = images.shape
    w = colour_weight(images, colours)
    ys = torch.arange(height, dtype=images.dtype) + 0.5
    xs = torch.arange(width, dtype=images.dtype) + 0.5
    mass = w.sum(dim=(1, 2)) + CENTROID_PRIOR
    cx = ((w * xs.view(1, 1, -1)).sum(dim=(1, 2)) + CENTROID_PRIOR * width / 2) / mass
    cy = ((w * ys.view(1, -1, 1)).sum(dim=(1, 2)) + CENTROID_PRIOR * height / 2) / mass
    return torch.stack([cx, cy], dim=1)


def composition(images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """-|centroid of the prompted colour - TARGET * (W, H)| / H."""
    _, _, height, width = images.shape
    centroid = colour_centroid(images, [prompt_colour(p) for p in prompts])
    target = torch.tensor([TARGET[0] * width, TARGET[1] * height], dtype=images.dtype)
    return -(centroid - target).norm(dim=1) / height


def saturation(images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """Mean over pixels of the HSV saturation (max - min) / max (0 where max = 0)."""
    high, low = images.amax(dim=1), images.amin(dim=1)
    per_pixel = torch.where(high > 0, (high - low) / high.clamp(min=1e-12), torch.zeros_like(high))
    return per_pixel.mean(dim=(1, 2))


PROXIES: dict[str, Reward] = {"composition": composition, "saturation": saturation}


# ----------------------------------------------------------------------------------------------
# Gold metrics


def kmeans(x: torch.Tensor, k: int, generator: torch.Generator, iterations: int = 25) -> torch.Tensor:
    """Cluster labels (N,) of Lloyd's k-means with k-means++ seeding."""
    centres = x[torch.randint(x.shape[0], (1,), generator=generator)]
    for _ in range(k - 1):
        d2 = torch.cdist(x, centres).amin(dim=1) ** 2
        centres = torch.cat([centres, x[torch.multinomial(d2, 1, generator=generator)]])
    for _ in range(iterations):
        labels = torch.cdist(x, centres).argmin(dim=1)
        centres = torch.stack(
            [x[labels == j].mean(0) if (labels == j).any() else centres[j] for j in range(k)]
        )
    return torch.cdist(x, centres).argmin(dim=1)


@dataclass(frozen=True)
class PPCAGaussian:
    """N(mean, U diag(lam) U^T + s2 (I - U U^T)): rank-k PCA with isotropic residual variance s2."""

    mean: torch.Tensor
    basis: torch.Tensor
    eigenvalues: torch.Tensor
    residual: torch.Tensor


PPCA_FIELDS = tuple(f.name for f in fields(PPCAGaussian))


def fit_ppca(x: torch.Tensor, rank: int, floor: float) -> PPCAGaussian:
    """PCA of x (N, D): top-``rank`` eigenvalues and mean residual eigenvalue, both floored at ``floor``."""
    mean = x.mean(0)
    diff = x - mean
    # SVD of the centred data, not eigh of the D x D covariance: with fewer samples than dimensions
    # the covariance is rank-deficient and eigh crawls through denormals (minutes instead of ms).
    _, singular, vt = torch.linalg.svd(diff, full_matrices=False)
    eig = singular[:rank] ** 2 / x.shape[0]
    residual = (((diff**2).sum() / x.shape[0] - eig.sum()) / (x.shape[1] - rank)).clamp(min=floor)
    return PPCAGaussian(mean, vt[:rank].T, eig.clamp(min=floor), residual)


def ppca_log_density(x: torch.Tensor, g: PPCAGaussian) -> torch.Tensor:
    """log N(x) = -(D log 2pi + sum log lam + (D-k) log s2 + sum z^2/lam + (|r|^2 - |z|^2)/s2) / 2."""
    dim, rank = g.basis.shape
    diff = x - g.mean
    z = diff @ g.basis
    quad = (z**2 / g.eigenvalues).sum(1) + ((diff**2).sum(1) - (z**2).sum(1)) / g.residual
    logdet = g.eigenvalues.log().sum() + (dim - rank) * g.residual.log()
    return -0.5 * (dim * math.log(2 * math.pi) + logdet + quad)


def mixture_log_density(
    x: torch.Tensor, components: Sequence[PPCAGaussian], log_weights: torch.Tensor
) -> torch.Tensor:
    """log sum_j w_j N_j(x); (N,)."""
    return torch.logsumexp(torch.stack([ppca_log_density(x, g) for g in components], 1) + log_weights, dim=1)


def diversity(images: torch.Tensor, prompts: Sequence[str]) -> float:
    """Mean over prompts (with >= 2 images) of the mean pairwise L2 distance / sqrt(D)."""
    flat = images.flatten(1).double()
    ids = prompt_ids(prompts)
    groups = [flat[ids == p] for p in ids.unique() if (ids == p).sum() >= 2]
    if not groups:
        raise ValueError("diversity needs at least two images of one prompt")
    return float(torch.stack([torch.pdist(g).mean() for g in groups]).mean() / math.sqrt(flat.shape[1]))


class NanoGold:
    """Gold metrics from a per-prompt PPCA-Gaussian mixture fitted to real renders in [-1, 1]."""

    def __init__(
        self, mixtures: Sequence[Sequence[PPCAGaussian]], log_weights: Sequence[torch.Tensor]
    ) -> None:
        self.mixtures = mixtures
        self.log_weights = log_weights

    @classmethod
    def fit(
        cls, n_per_prompt: int = 2000, components: int = 4, rank: int = 16, floor: float = 3e-3, seed: int = 0
    ) -> "NanoGold":
        """k-means each prompt's ``n_per_prompt`` seeded renders into ``components`` PPCA Gaussians."""
        generator = torch.Generator().manual_seed(seed)
        mixtures, log_weights = [], []
        for pid in range(len(prompts())):
            x = render(torch.full((n_per_prompt,), pid), generator).flatten(1).double()
            labels = kmeans(x, components, generator)
            used = [j for j in range(components) if (labels == j).sum() > rank]
            mixtures.append([fit_ppca(x[labels == j], rank, floor) for j in used])
            counts = torch.tensor([float((labels == j).sum()) for j in used], dtype=torch.float64)
            log_weights.append((counts / counts.sum()).log())
        return cls(mixtures, log_weights)

    def save(self, path: str | os.PathLike, options: Mapping[str, Any]) -> None:
        """Write the fitted density (and the fit options) to a safetensors file, atomically."""
        tensors = {f"{p}.w": w.contiguous() for p, w in enumerate(self.log_weights)}
        for p, mixture in enumerate(self.mixtures):
            for j, g in enumerate(mixture):
                tensors.update({f"{p}.{j}.{name}": getattr(g, name).contiguous() for name in PPCA_FIELDS})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file(tensors, str(tmp), metadata={"options": json.dumps(dict(options), sort_keys=True)})
        os.replace(tmp, path)

    @classmethod
    def load_or_fit(cls, path: str | os.PathLike, **options: Any) -> "NanoGold":
        """The density cached at ``path`` if it was fitted with these options, else fit and cache it."""
        path = Path(path)
        if path.is_file():
            with safe_open(str(path), framework="pt") as f:
                if json.loads((f.metadata() or {}).get("options", "null")) == json.loads(json.dumps(options, sort_keys=True)):
                    tensors = {k: f.get_tensor(k) for k in f.keys()}
                    weights = [tensors[f"{p}.w"] for p in range(len(prompts()))]
                    mixtures = [[PPCAGaussian(*(tensors[f"{p}.{j}.{n}"] for n in PPCA_FIELDS)) for j in range(len(w))]
                                for p, w in enumerate(weights)]
                    return cls(mixtures, weights)
        gold = cls.fit(**options)
        gold.save(path, options)
        return gold

    def log_likelihoods(self, images: torch.Tensor) -> torch.Tensor:
        """Per-dimension log-likelihood (nats / dim) of each image under each prompt's mixture; (B, P)."""
        x = (images * 2 - 1).flatten(1).double()
        per_prompt = [mixture_log_density(x, m, w) for m, w in zip(self.mixtures, self.log_weights)]
        return torch.stack(per_prompt, 1) / x.shape[1]

    def per_image(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Per-image "loglik" under the prompted mixture (nats / dim) and "correct" (argmax = prompted)."""
        ll = self.log_likelihoods(images)
        ids = prompt_ids(prompts)
        return {
            "loglik": ll[torch.arange(len(ids)), ids],
            "correct": (ll.argmax(dim=1) == ids).double(),
        }

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, float]:
        """Set-level gold: mean "loglik", "accuracy" and "diversity" (see module docstring)."""
        rows = self.per_image(images, prompts)
        return {
            "loglik": float(rows["loglik"].mean()),
            "accuracy": float(rows["correct"].mean()),
            "diversity": diversity(images, prompts),
        }


def relative_gold(name: str, value: Any, base: Any) -> Any:
    """exp(value - base) for "loglik" (per-dim likelihood ratio), value / base otherwise (floats or arrays)."""
    return np.exp(value - base) if name == "loglik" else value / base


def average_gold(metrics: Mapping[str, float], base_metrics: Mapping[str, float]) -> float:
    """Average(gold) = mean over the gold metrics of the metric relative to the base model's.

    The log-likelihood is in nats per dimension and can have either sign (real renders score about
    +1..+2, pure noise hundreds below zero), so ``loglik / base_loglik`` would flip direction when
    the base is negative and explode near zero. Its term is therefore ``exp(loglik - base_loglik)``:
    the ratio of the geometric-mean per-dimension likelihoods of the two image sets. That ratio is
    positive, 1 at the base, above 1 exactly when the likelihood is higher, and unchanged by any
    constant offset of the log-density. Accuracy and diversity are non-negative, so a plain ratio.
    """
    names = ("loglik", "accuracy", "diversity")
    return sum(relative_gold(n, metrics[n], base_metrics[n]) for n in names) / len(names)
