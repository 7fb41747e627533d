"""FLUX.1-dev as a GRPO backbone (DanceGRPO's setting), from diffusers' FLUX pipeline parts.

No classifier-free guidance: the guidance-distilled transformer takes the scale as an input
(``guidance``, 3.5). As in diffusers' FluxPipeline, the transformer is called with
timestep = t and guidance = g (it multiplies both by 1000 inside); DanceGRPO feeds the quantised
time int(1000 t) / 1000 (``quantize_time``) while the SDE step uses the exact t. The latent
(16, h, w) is packed into (h/2 * w/2) tokens of 2x2x16 values with image ids (0, row, col) and
text ids 0, all handled here, so ``latent_shape`` stays (16, resolution / 8, resolution / 8).
The condition is the pipeline's ``encode_prompt``: T5 token states and the pooled CLIP-L output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from guard.backbones.diffusers_common import (DiffusersBackbone, DiffusersOptions, TextCond, check_folder,
                                              load_pipeline, parse_options, resolve_device)

REPO = "black-forest-labs/FLUX.1-dev"


@dataclass
class FluxOptions(DiffusersOptions):
    """FLUX.1-dev options: the shared ones plus the guidance embedding and time quantisation."""

    mixed_precision: str = "bf16"
    """Autocast dtype of the transformer forward (DanceGRPO: bf16)."""
    guidance: float = 3.5
    """Guidance-embedding scale fed to the transformer."""
    quantize_time: bool = True
    """Feed the transformer int(1000 t) / 1000 (DanceGRPO) instead of t."""


class FluxBackbone(DiffusersBackbone):
    """FLUX.1-dev with a LoRA policy; see the module docstring for the inputs."""

    packed_channels = 4

    def __init__(self, pipe: Any, options: FluxOptions) -> None:
        super().__init__(pipe, options)
        self.guidance, self.quantize_time = options.guidance, options.quantize_time
        self.max_sequence_length = options.max_sequence_length or 512
        _, h, w = self.latent_shape
        self.img_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, self.device, torch.float32)

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T5 length, 4096) T5 states and (B, 768) pooled CLIP-L embeddings."""
        embeds, pooled, _ = self.pipe.encode_prompt(prompts, None, device=self.device,
                                                    max_sequence_length=self.max_sequence_length)
        return embeds, pooled

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        """int(1000 t) / 1000 when quantising, else t."""
        return torch.floor(1000 * t) / 1000 if self.quantize_time else t

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Unpacked velocity of the packed latent tokens."""
        b, c, h, w = x.shape
        packed = self.pipe._pack_latents(x, b, c, h, w)
        guidance = torch.full((b,), self.guidance, device=self.device)
        v = self.transformer_call(self.call, [packed, self.model_time(t), guidance, cond.embeds, cond.pooled])
        return self.pipe._unpack_latents(v, h * self.pipe.vae_scale_factor, w * self.pipe.vae_scale_factor,
                                         self.pipe.vae_scale_factor)

    def call(self, tokens: torch.Tensor, t: torch.Tensor, guidance: torch.Tensor, embeds: torch.Tensor,
             pooled: torch.Tensor) -> torch.Tensor:
        """One FLUX transformer forward (timestep and guidance unscaled, as FluxPipeline passes them)."""
        txt_ids = torch.zeros(embeds.shape[1], 3, device=self.device)
        return self.transformer(hidden_states=tokens, timestep=t, guidance=guidance, pooled_projections=pooled,
                                encoder_hidden_states=embeds, txt_ids=txt_ids, img_ids=self.img_ids,
                                return_dict=False)[0]


def build_flux(options: dict[str, Any]) -> FluxBackbone:
    """FLUX.1-dev from the local diffusers folder ``options['path']``."""
    from diffusers import FluxPipeline

    opts = parse_options(FluxOptions, options)
    device = resolve_device(opts.device)
    pipe = load_pipeline(FluxPipeline, check_folder(opts.path, REPO, "flux"), device, opts)
    return FluxBackbone(pipe, opts)
