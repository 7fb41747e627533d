"""Backbone registry: the config's ``backbone: {name: ..., <options>}`` -> a guard.backbone.Backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from guard.backbone import Backbone


def build_nano(options: dict[str, Any]) -> Backbone:
    """The nano CPU backbone, pretrained once and cached at ``options['weights']``."""
    from guard.backbones.nano import NanoBackbone, NanoConfig

    weights = Path(options.get("weights", "results/nano/base.safetensors"))
    return NanoBackbone.pretrained(weights, NanoConfig(**options.get("pretrain", {})))


BACKBONES: dict[str, Callable[[dict[str, Any]], Backbone]] = {"nano": build_nano}


def build_backbone(options: dict[str, Any]) -> Backbone:
    """Build the backbone named in ``options['name']``."""
    name = options.get("name")
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](options)
