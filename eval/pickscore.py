"""PickScore (Flow-GRPO's normalisation): ``score = logit_scale.exp() * cos(image, text) / 26``.

The CLIP-H model fine-tuned on Pick-a-Pic (``yuvalkirstain/PickScore_v1``) with the processor of the
CLIP it started from (``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``), both from local folders. Images go
through the processor as uint8 PIL images, as in Flow-GRPO's ``pickscore_score``. DanceGRPO logs the
raw cosine instead; divide out ``logit_scale.exp() / 26`` to compare.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from eval.metrics import Metric, WeightSpec, default_device, in_batches, to_pil

WEIGHTS = (
    WeightSpec("model", "the PickScore_v1 CLIP model folder (config.json + weights)",
               "huggingface-cli download yuvalkirstain/PickScore_v1 --local-dir weights/PickScore_v1"),
    WeightSpec("processor", "the CLIP-ViT-H-14 processor folder (tokenizer + preprocessor_config.json)",
               "huggingface-cli download laion/CLIP-ViT-H-14-laion2B-s32B-b79K --exclude '*.bin' '*.safetensors' "
               "--local-dir weights/CLIP-ViT-H-14-laion2B-s32B-b79K"),
)

SCALE_DIVISOR = 26.0
"""Flow-GRPO divides logit_scale * cos by 26 to bring PickScore near [0, 1]."""


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
