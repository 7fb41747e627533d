"""ImageReward v1.0: ``score = (MLP(BLIP_text(prompt | ViT(image))[CLS]) - mean) / std``, the package's formula.

The ``ImageReward`` package's model class and scoring path (``score_gard``, its 224 px bicubic CLIP
preprocessing, the 35-token prompt), built from local files only. ``ImageReward.load`` would fetch
the checkpoint and ``med_config.json`` unless given paths, and its ``BLIP_Pretrain`` always loads the
``bert-base-uncased`` tokenizer from the hub; :func:`local_image_reward` therefore builds the same
modules (the package's ``VisionTransformer``, BLIP ``BertModel`` and ``MLP``) with the tokenizer from
a local folder. ``vision`` (keyword arguments of the package's ``VisionTransformer``) defaults to the
package's ViT-L/16; tests pass a tiny one.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from eval.metrics import Metric, WeightSpec, default_device
from eval.metrics import in_batches, to_pil

WEIGHTS = (
    WeightSpec("checkpoint", "the ImageReward-v1.0 state dict ImageReward.pt",
               "huggingface-cli download THUDM/ImageReward ImageReward.pt --local-dir weights/ImageReward"),
    WeightSpec("med_config", "ImageReward's BLIP text-encoder config med_config.json",
               "huggingface-cli download THUDM/ImageReward med_config.json --local-dir weights/ImageReward"),
    WeightSpec("tokenizer", "the bert-base-uncased tokenizer folder (vocab.txt, tokenizer_config.json)",
               "huggingface-cli download google-bert/bert-base-uncased vocab.txt tokenizer_config.json "
               "tokenizer.json config.json --local-dir weights/bert-base-uncased"),
)

VIT_LARGE = {"embed_dim": 1024, "depth": 24, "num_heads": 16, "patch_size": 16}
"""The package's ``create_vit('large', 224)``, the vision tower of ImageReward-v1.0."""

PROMPT_TOKENS = 35
"""ImageReward pads or truncates every prompt to 35 BERT tokens."""

NORMALISATION = (0.16717362830052426, 1.0333394966054072)
"""(mean, std) that ``ImageReward.__init__`` sets: raw MLP outputs are standardised with them."""


def bert_tokenizer(folder: str) -> Any:
    """The BLIP tokenizer (``init_tokenizer``: BERT plus ``[DEC]`` and ``[ENC]``) from a local folder."""
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(folder, local_files_only=True)
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
    return tokenizer


def local_image_reward(med_config: str, tokenizer: str, vision: dict[str, Any], device: torch.device) -> nn.Module:
    """The package's ``ImageReward`` model (random weights), built without its hub lookup."""
    from ImageReward.ImageReward import MLP, ImageReward, _transform
    from ImageReward.models.BLIP.med import BertConfig, BertModel
    from ImageReward.models.BLIP.vit import VisionTransformer

    class LocalImageReward(ImageReward):
        """``ImageReward`` whose BLIP parts are built here (``blip.visual_encoder``, ``blip.text_encoder``)."""

        def __init__(self) -> None:
            nn.Module.__init__(self)
            self.device = device
            self.blip = nn.Module()
            self.blip.visual_encoder = VisionTransformer(img_size=224, **vision)
            self.blip.tokenizer = bert_tokenizer(tokenizer)
            config = BertConfig.from_json_file(med_config)
            config.encoder_width = vision["embed_dim"]
            self.blip.text_encoder = BertModel(config=config, add_pooling_layer=False)
            self.preprocess = _transform(224)
            self.mlp = MLP(config.hidden_size)
            self.mean, self.std = NORMALISATION

    return LocalImageReward()


class ImageRewardMetric:
    """A loaded ImageReward model; call it on (images, prompts)."""

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size

    @torch.no_grad()
    def _score(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        model = self.model
        pixels = torch.stack([model.preprocess(image) for image in to_pil(images)]).to(model.device)
        text = model.blip.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=PROMPT_TOKENS,
                                    return_tensors="pt").to(model.device)
        return model.score_gard(text.input_ids, text.attention_mask, pixels)[:, 0].float().cpu()

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        return in_batches(self._score, images, prompts, self.batch_size)


def build(options: dict[str, Any]) -> Metric:
    """Build the model once and load ``options['checkpoint']``; every model weight must be in it."""
    device = default_device(options)
    model = local_image_reward(options["med_config"], options["tokenizer"], options.get("vision", VIT_LARGE), device)
    state = torch.load(options["checkpoint"], map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())  # buffers (BERT position ids) are not learnt
    missing = [k for k in model.load_state_dict(state, strict=False).missing_keys if k in params]
    if missing:
        raise ValueError(f"metrics.imagereward.checkpoint = {options['checkpoint']} lacks {len(missing)} weights "
                         f"of the model (first: {missing[:3]}); is it ImageReward.pt, and does 'vision' match it?")
    return ImageRewardMetric(model.eval().to(device), int(options.get("batch_size", 16)))
