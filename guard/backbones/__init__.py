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


def build_sd35(options: dict[str, Any]) -> Backbone:
    """SD3.5-M (diffusers folder at ``options['path']``) with a LoRA policy and CFG."""
    from guard.backbones.sd35 import build_sd35

    return build_sd35(options)


def build_flux(options: dict[str, Any]) -> Backbone:
    """FLUX.1-dev (diffusers folder at ``options['path']``) with a LoRA policy and the guidance embedding."""
    from guard.backbones.flux import build_flux

    return build_flux(options)


BACKBONES: dict[str, Callable[[dict[str, Any]], Backbone]] = {"nano": build_nano, "sd35": build_sd35, "flux": build_flux}

ADAPTER_BACKBONES = frozenset({"sd35", "flux"})
"""Backbones trained through a LoRA adapter, which ``python -m guard.export`` writes as a peft folder."""


def build_backbone(options: dict[str, Any]) -> Backbone:
    """Build the backbone named in ``options['name']``."""
    name = options.get("name")
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name](options)
