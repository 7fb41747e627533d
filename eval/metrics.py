"""One interface for every real metric: ``metric(images, prompts) -> scores``, built from local weights.

Each metric lives in its own module (``METRICS`` maps a name to it). A module defines

- ``WEIGHTS``: the local files or folders it needs, as :class:`WeightSpec` (option key, what, how to get it);
- ``build(options) -> Metric``: the scorer, built once and kept for every batch.

``options`` is the metric's block of the config's ``metrics`` section (paths, device, batch size, ...).
:func:`build_metric` checks the weights first, so a missing folder fails with a message that names the
option, the path and how to get it, never a stack trace from deep inside a library.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch
from PIL import Image

METRICS: dict[str, str] = {
    "pickscore": "eval.pickscore",
    "hpsv2": "eval.hpsv2",
    "imagereward": "eval.imagereward",
    "ocr": "eval.ocr",
    "geneval": "eval.geneval",
    "unifiedreward": "eval.unifiedreward",
}
"""Metric name -> module holding its ``WEIGHTS`` and ``build``."""


class Metric(Protocol):
    """A scorer: images (B, 3, H, W) in [0, 1] and their prompts -> per-image scores (B,) in fp32."""

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor: ...


@dataclass(frozen=True)
class WeightSpec:
    """A local file or folder a metric needs: the option naming it, what it is, and how to get it."""

    key: str
    what: str
    source: str
    required: bool = True


class MissingWeightsError(FileNotFoundError):
    """A metric's weights are not where the config says; the message names the option and how to get it."""


def metric_module(name: str) -> Any:
    """The module implementing metric ``name``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}")
    return importlib.import_module(METRICS[name])


def missing_weights(name: str, options: dict[str, Any]) -> list[str]:
    """One line per required weight of metric ``name`` that ``options`` does not point at an existing path."""
    problems = []
    for spec in metric_module(name).WEIGHTS:
        path = options.get(spec.key)
        if path is None and not spec.required:
            continue
        if path is None or not Path(path).exists():
            where = "is not set" if path is None else f"= {path} does not exist"
            problems.append(f"{name}: metrics.{name}.{spec.key} {where}; it should be {spec.what}. Get it: {spec.source}")
    return problems


def check_weights(names: Sequence[str], metrics: dict[str, Any]) -> None:
    """Fail before any work starts when a real metric among ``names`` lacks its weights (others are skipped)."""
    problems = [p for name in dict.fromkeys(names) if name in METRICS
                for p in missing_weights(name, metrics.get(name) or {})]
    if problems:
        raise MissingWeightsError("\n".join(problems) + "\n(python -m eval.weights --config CONFIG lists every metric)")


def build_metric(name: str, options: dict[str, Any]) -> Metric:
    """Build metric ``name`` from its options after checking its weights."""
    check_weights([name], {name: options})
    return metric_module(name).build(options)


def default_device(options: dict[str, Any]) -> torch.device:
    """``options['device']``, else CUDA where available, else the CPU."""
    return torch.device(options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8, ``(x * 255).round()`` as the references do (in fp32: bf16 rounds 255x)."""
    pixels = (images.detach().float() * 255).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] -> uint8 RGB PIL images (what the reference scorers are given)."""
    return [Image.fromarray(a) for a in to_uint8_hwc(images)]


def in_batches(score: Callable[[torch.Tensor, Sequence[str]], torch.Tensor], images: torch.Tensor,
               prompts: Sequence[str], batch_size: int) -> torch.Tensor:
    """``score`` applied to consecutive chunks of at most ``batch_size`` (image, prompt) pairs, concatenated."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts; give one prompt per image")
    chunks = [score(images[i:i + batch_size], prompts[i:i + batch_size]) for i in range(0, len(prompts), batch_size)]
    return torch.cat([torch.zeros(0), *chunks])
