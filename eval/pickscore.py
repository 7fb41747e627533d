"""PickScore (Flow-GRPO's normalisation): ``score = logit_scale.exp() * cos(image, text) / 26``.

The CLIP-H model fine-tuned on Pick-a-Pic (``yuvalkirstain/PickScore_v1``) with the processor of the
CLIP it started from (``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``), both from local folders. Images go
through the processor as uint8 PIL images, as in Flow-GRPO's ``pickscore_score``. DanceGRPO logs the
raw cosine instead; divide out ``logit_scale.exp() / 26`` to compare.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from PIL import Image

from eval.metrics import Metric, WeightSpec, default_device

WEIGHTS = (
    WeightSpec("model", "the PickScore_v1 CLIP model folder (config.json + weights)",
               "huggingface-cli download yuvalkirstain/PickScore_v1 --local-dir weights/PickScore_v1"),
    WeightSpec("processor", "the CLIP-ViT-H-14 processor folder (tokenizer + preprocessor_config.json)",
               "huggingface-cli download laion/CLIP-ViT-H-14-laion2B-s32B-b79K --exclude '*.bin' '*.safetensors' "
               "--local-dir weights/CLIP-ViT-H-14-laion2B-s32B-b79K"),
)

SCALE_DIVISOR = 26.0
"""Flow-GRPO divides logit_scale * cos by 26 to bring PickScore near [0, 1]."""


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] -> uint8 RGB PIL images (round to the nearest level, as the references do)."""
    arrays = (images.detach() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arrays]


def in_batches(score: Callable[[torch.Tensor, Sequence[str]], torch.Tensor], images: torch.Tensor,
               prompts: Sequence[str], batch_size: int) -> torch.Tensor:
    """``score`` applied to consecutive chunks of at most ``batch_size`` (image, prompt) pairs, concatenated."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts; give one prompt per image")
    chunks = [score(images[i:i + batch_size], prompts[i:i + batch_size]) for i in range(0, len(prompts), batch_size)]
    return torch.cat([torch.zeros(0), *chunks])


class PickScore:
    """A loaded PickScore model; call it on (images, prompts)."""

    def __init__(self, model: Any, processor: Any, device: torch.device, batch_size: int) -> None:
        self.model, self.processor, self.device, self.batch_size = model, processor, device, batch_size

    @torch.no_grad()
    def _score(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        inputs = self.processor(text=list(prompts), images=to_pil(images), padding=True, truncation=True,
                                max_length=77, return_tensors="pt").to(self.device)
        out = self.model(**inputs)  # image_embeds and text_embeds are L2-normalised by CLIPModel
        cosine = (out.image_embeds * out.text_embeds).sum(-1)
        return (self.model.logit_scale.exp() * cosine / SCALE_DIVISOR).float().cpu()

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        return in_batches(self._score, images, prompts, self.batch_size)


def build(options: dict[str, Any]) -> Metric:
    """Load the model and processor from ``options['model']`` and ``options['processor']`` once."""
    from transformers import CLIPModel, CLIPProcessor

    device = default_device(options)
    model = CLIPModel.from_pretrained(options["model"], local_files_only=True).eval().to(device)
    processor = CLIPProcessor.from_pretrained(options["processor"], local_files_only=True)
    return PickScore(model, processor, device, int(options.get("batch_size", 16)))
