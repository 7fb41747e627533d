"""HPSv2 (v2.1): ``score = <f_img / |f_img|, f_text / |f_text|>``, the diagonal of HPSv2's logits (no logit scale).

An open_clip ViT-H-14 built once with random weights (``pretrained=None``, so open_clip downloads
nothing) and overwritten by the HPS checkpoint from a local path, with open_clip's bundled tokenizer.
Images are preprocessed by HPSv2's own evaluation transform (``hpsv2.score``: uint8 PIL -> tensor,
longest side resized to 224 (bicubic) and zero-padded to a square, CLIP normalisation). Unlike
``hpsv2.score`` this never reloads the checkpoint per call and runs in fp32 (``hpsv2.score`` uses CUDA
autocast).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from eval.metrics import Metric, WeightSpec, default_device
from eval.metrics import in_batches, to_pil

WEIGHTS = (
    WeightSpec("checkpoint", "the HPS v2.1 checkpoint HPS_v2.1_compressed.pt (a dict with 'state_dict')",
               "huggingface-cli download xswu/HPSv2 HPS_v2.1_compressed.pt --local-dir weights/HPSv2"),
)


class HPSv2:
    """A loaded HPSv2 model; call it on (images, prompts)."""

    def __init__(self, model: Any, tokenizer: Callable, preprocess: Callable, device: torch.device,
                 batch_size: int) -> None:
        self.model, self.tokenizer, self.preprocess = model, tokenizer, preprocess
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def _score(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image) for image in to_pil(images)]).to(self.device)
        image = self.model.encode_image(pixels, normalize=True)
        text = self.model.encode_text(self.tokenizer(list(prompts)).to(self.device), normalize=True)
        return (image * text).sum(-1).float().cpu()

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        return in_batches(self._score, images, prompts, self.batch_size)


def build(options: dict[str, Any]) -> Metric:
    """Build ``options['model_name']`` (default ViT-H-14) once and load ``options['checkpoint']`` into it."""
    import open_clip
    from hpsv2.src.open_clip.transform import image_transform

    device = default_device(options)
    name = options.get("model_name", "ViT-H-14")
    model = open_clip.create_model(name, pretrained=None)
    state = torch.load(options["checkpoint"], map_location="cpu", weights_only=True)
    model.load_state_dict(state["state_dict"])
    preprocess = image_transform(model.visual.image_size, is_train=False, resize_longest_max=True)
    return HPSv2(model.eval().to(device), open_clip.get_tokenizer(name), preprocess, device,
                 int(options.get("batch_size", 16)))
