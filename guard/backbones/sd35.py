"""Stable Diffusion 3.5 Medium as a GRPO backbone (Flow-GRPO's setting), from diffusers' SD3 pipeline parts.

Velocity with classifier-free guidance, in rollouts and in training alike (as Flow-GRPO):
``v = v(x, t, c_neg) + cfg * (v(x, t, c) - v(x, t, c_neg))``, the unconditional and conditional
rows batched in one call; cfg = 1 skips the unconditional rows. The transformer is fed
timestep = 1000 t (diffusers' sigmas * 1000). The condition is the pipeline's ``encode_prompt``:
CLIP-L and CLIP-G penultimate states padded to the T5 width and joined with T5's, plus both pooled
CLIP embeddings. Decoding: vae.decode(x / scaling_factor + shift_factor) mapped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from guard.backbones.diffusers_common import (DiffusersBackbone, DiffusersOptions, TextCond, check_folder,
                                              load_pipeline, parse_options, resolve_device)

REPO = "stabilityai/stable-diffusion-3.5-medium"


@dataclass
class SD35Options(DiffusersOptions):
    """SD3.5-M options: the shared ones plus classifier-free guidance."""

    cfg: float = 4.5
    """Classifier-free guidance scale in rollout and training (1 = no guidance)."""
    negative_prompt: str = ""
    """Prompt of the unconditional branch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cfg < 1:
            raise ValueError(f"backbone.cfg must be >= 1 (1 = no guidance), got {self.cfg}")


class SD35Backbone(DiffusersBackbone):
    """SD3.5-M with a LoRA policy; see the module docstring for the velocity and decoding."""

    def __init__(self, pipe: Any, options: SD35Options) -> None:
        super().__init__(pipe, options)
        self.cfg, self.negative_prompt = options.cfg, options.negative_prompt
        self.max_sequence_length = options.max_sequence_length or 256

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 77 + T5 length, 4096) token embeddings and (B, 2048) pooled CLIP embeddings."""
        embeds, _, pooled, _ = self.pipe.encode_prompt(prompts, None, None, device=self.device,
                                                       do_classifier_free_guidance=False,
                                                       max_sequence_length=self.max_sequence_length)
        return embeds, pooled

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """v_neg + cfg (v_c - v_neg), or v_c when cfg = 1."""
        if self.cfg == 1:
            return self.transformer_call(self.call, [x, t, cond.embeds, cond.pooled])
        neg = self.encode([self.negative_prompt])
        embeds, pooled = (torch.cat([u.expand(x.shape[0], *u.shape[1:]), c]) for u, c in
                          ((neg.embeds, cond.embeds), (neg.pooled, cond.pooled)))
        v = self.transformer_call(self.call, [torch.cat([x, x]), torch.cat([t, t]), embeds, pooled])
        uncond, text = v.chunk(2)
        return uncond + self.cfg * (text - uncond)

    def call(self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """One SD3 transformer forward at timestep 1000 t."""
        return self.transformer(hidden_states=x, timestep=1000 * t, encoder_hidden_states=embeds,
                                pooled_projections=pooled, return_dict=False)[0]


def build_sd35(options: dict[str, Any]) -> SD35Backbone:
    """SD3.5-M from the local diffusers folder ``options['path']``."""
    from diffusers import StableDiffusion3Pipeline

    opts = parse_options(SD35Options, options)
    device = resolve_device(opts.device)
    pipe = load_pipeline(StableDiffusion3Pipeline, check_folder(opts.path, REPO, "sd3"), device, opts)
    return SD35Backbone(pipe, opts)
