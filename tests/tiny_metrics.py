"""Random-weight PickScore, HPSv2 and ImageReward files built offline from configs, in the layout each metric loads.

Tiny configs keep the tests fast; the ``FULL_*`` configs are the real models' sizes (for timing).
Tokenizers are real ones built locally: the CLIP BPE from open_clip's bundled vocabulary, a small
BERT WordPiece vocabulary for ImageReward.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

TINY_CLIP = {
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
    "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                      "image_size": 32, "patch_size": 8},
    "projection_dim": 16,
}
FULL_CLIP = {  # laion/CLIP-ViT-H-14, the architecture of PickScore_v1
    "text_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
                    "hidden_act": "gelu"},
    "vision_config": {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
                      "num_attention_heads": 16, "image_size": 224, "patch_size": 14, "hidden_act": "gelu"},
    "projection_dim": 1024,
}
TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_MED = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
FULL_MED = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}
TINY_VIT = {"embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 32}
WORDS = "a an the of on in with and photo painting cat dog red blue green small big tree house car sky".split()


def clip_processor(folder: Path, image_size: int) -> Path:
    """A CLIPProcessor folder: open_clip's bundled BPE as vocab.json + merges.txt, a CLIP image processor."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    bpe = SimpleTokenizer()
    vocab = {token: i for token, i in bpe.encoder.items() if i not in (bpe.sot_token_id, bpe.eot_token_id)}
    vocab |= {"<|startoftext|>": bpe.sot_token_id, "<|endoftext|>": bpe.eot_token_id}  # transformers' names
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    square = {"height": image_size, "width": image_size}
    images = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=square)
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def clip_model(config: dict[str, Any]) -> Any:
    """A random transformers CLIPModel."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    return CLIPModel(CLIPConfig(**config)).eval()


def pickscore_files(root: Path) -> dict[str, str]:
    """Tiny PickScore ``model`` and ``processor`` folders."""
    clip_model(TINY_CLIP).save_pretrained(root / "model")
    processor = clip_processor(root / "processor", TINY_CLIP["vision_config"]["image_size"])
    return {"model": str(root / "model"), "processor": str(processor)}


def open_clip_model(name: str, config: dict[str, Any] | None, folder: Path) -> Any:
    """A random open_clip model ``name``; ``config`` is first registered under that name (a json in ``folder``)."""
    import open_clip

    if config is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(json.dumps(config))
        open_clip.add_model_config(folder / f"{name}.json")
    torch.manual_seed(0)
    return open_clip.create_model(name, pretrained=None).eval()


def hpsv2_files(root: Path, name: str = "tiny-hps-test") -> dict[str, str]:
    """A tiny open_clip config registered as ``name`` and an HPS-style checkpoint ({'state_dict': ...})."""
    model = open_clip_model(name, TINY_OPEN_CLIP, root)
    torch.save({"state_dict": model.state_dict()}, root / "hps.pt")
    return {"checkpoint": str(root / "hps.pt"), "model_name": name}


def bert_tokenizer_folder(folder: Path) -> Path:
    """A BERT WordPiece tokenizer folder with a small vocabulary (special tokens + ``WORDS``)."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def med_config(path: Path, sizes: dict[str, int], vocab_size: int) -> Path:
    """A BLIP ``med_config.json`` (BERT with cross-attention) of the given sizes."""
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "initializer_range": 0.02,
              "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1, "layer_norm_eps": 1e-12,
              "max_position_embeddings": 512, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": vocab_size,
              "encoder_width": 768, "add_cross_attention": True, **sizes}
    path.write_text(json.dumps(config))
    return path


def imagereward_model(root: Path, med: dict[str, int], vision: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A random ImageReward model whose MLP head is re-initialised (its own init gives a near-constant score)."""
    from eval.imagereward import bert_tokenizer, local_image_reward

    tokenizer = bert_tokenizer_folder(root / "bert")
    config = med_config(root / "med_config.json", med, len(bert_tokenizer(str(tokenizer))))
    options = {"med_config": str(config), "tokenizer": str(tokenizer), "vision": vision}
    torch.manual_seed(0)
    model = local_image_reward(str(config), str(tokenizer), vision, torch.device("cpu")).eval()
    for layer in model.mlp.layers:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
    return model, options


def imagereward_files(root: Path) -> dict[str, Any]:
    """Tiny ImageReward ``checkpoint``, ``med_config``, ``tokenizer`` and the ``vision`` sizes."""
    model, options = imagereward_model(root, TINY_MED, TINY_VIT)
    torch.save(model.state_dict(), root / "ImageReward.pt")
    return {**options, "checkpoint": str(root / "ImageReward.pt")}
