"""GenEval's colour classifier: CLIP zero-shot over ten colours on each object's masked crop.

Followed: djghosh13/geneval ``evaluation/evaluate_images.py`` (``ImageCrops``: pixels outside the
mask become grey ``#999``, then the box is cropped; ``color_classification``: three templates per
colour) and clip_benchmark's ``zero_shot_classifier`` / ``run_classification`` (each template's
text embedding normalised, averaged over templates, normalised again; argmax of image . text).

Differences: the weights come from a local file (open_clip ``pretrained=None``, then OpenAI's
TorchScript ``ViT-L-14.pt`` or an open_clip checkpoint) instead of ``pretrained="openai"``, so
QuickGELU is switched on explicitly (the OpenAI weights use it); the box is rounded to an int
tuple before cropping (what Pillow < 13 did to GenEval's numpy boxes; Pillow 13 rejects them); no
fp16 autocast (clip_benchmark 1.4 runs CLIP under CUDA autocast).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from eval.geneval.rules import COLORS, Detection

TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")
BACKGROUND = "#999"


def masked_crop(image: Image.Image, obj: Detection) -> Image.Image:
    """The object's box cropped from ``image`` with pixels outside its mask set to ``BACKGROUND``."""
    image = image.convert("RGB")
    if obj.mask is not None:
        mask = np.asarray(obj.mask, dtype=bool)
        if mask.shape != (image.height, image.width):
            raise ValueError(f"mask shape {mask.shape} does not match the image's (H, W) "
                             f"{(image.height, image.width)}: the detector must see the image as scored")
        blank = Image.new("RGB", image.size, color=BACKGROUND)
        image = Image.composite(image, blank, Image.fromarray(mask.astype(np.uint8) * 255, mode="L"))
    return image.crop(tuple(int(round(float(v))) for v in obj.box[:4]))


def load_weights(model: torch.nn.Module, checkpoint: str | Path) -> None:
    """Load CLIP weights: OpenAI's TorchScript file (``ViT-L-14.pt``) or an open_clip checkpoint.

    A TorchScript state dict also lists OpenAI's shape fields and non-persistent buffers (the
    attention mask); those are dropped, everything else must match the model exactly.
    """
    import open_clip

    if _is_torchscript(Path(checkpoint)):
        state = torch.jit.load(str(checkpoint), map_location="cpu").state_dict()
        transient = {name for name, _ in model.named_buffers()} - set(model.state_dict())
        for key in transient | {"input_resolution", "context_length", "vocab_size"}:
            state.pop(key, None)
        model.load_state_dict(state)
    else:
        open_clip.load_checkpoint(model, str(checkpoint))


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding ``constants.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def color_prompts(classname: str) -> list[list[str]]:
    """Per colour (in ``COLORS`` order), the three template texts for ``classname``."""
    return [[t.format(c=color, cls=classname) for t in TEMPLATES] for color in COLORS]


class ColorClassifier:
    """``classifier(image, objects, classname) -> [colour per object]``; text weights cached per class."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: torch.device | str) -> None:
        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.device = torch.device(device)
        self._weights: dict[str, torch.Tensor] = {}

    @classmethod
    def load(cls, checkpoint: str | Path, model_name: str = "ViT-L-14", device: torch.device | str = "cpu",
             quick_gelu: bool = True) -> "ColorClassifier":
        """open_clip ``model_name`` built without weights, then loaded from the local ``checkpoint``.

        ``quick_gelu``: the OpenAI weights need QuickGELU, which ``pretrained="openai"`` would switch on.
        """
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=None, force_quick_gelu=quick_gelu, device=device)
        load_weights(model, checkpoint)
        return cls(model, preprocess, open_clip.get_tokenizer(model_name), device)

    @torch.no_grad()
    def text_weights(self, classname: str) -> torch.Tensor:
        """(D, 10) zero-shot weights: per colour, the renormalised mean of normalised template embeddings."""
        if classname not in self._weights:
            columns = []
            for texts in color_prompts(classname):
                embedded = self.model.encode_text(self.tokenizer(texts).to(self.device))
                mean = F.normalize(embedded.float(), dim=-1).mean(dim=0)
                columns.append(mean / mean.norm())
            self._weights[classname] = torch.stack(columns, dim=1)
        return self._weights[classname]

    @torch.no_grad()
    def logits(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> torch.Tensor:
        """(N, 10) scores ``100 * image . text`` of each object's masked crop."""
        crops = torch.stack([self.preprocess(masked_crop(image, obj)) for obj in objects]).to(self.device)
        features = F.normalize(self.model.encode_image(crops).float(), dim=-1)
        return 100.0 * features @ self.text_weights(classname)

    def __call__(self, image: Image.Image, objects: Sequence[Detection], classname: str) -> list[str]:
        """The colour of each object."""
        if not objects:
            return []
        return [COLORS[i] for i in self.logits(image, objects, classname).argmax(dim=1).tolist()]
