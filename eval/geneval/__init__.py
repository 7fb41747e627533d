"""GenEval: the proxy reward of the GenEval task (partial credit) and its evaluation accuracy.

Parts: :mod:`.rules` (GenEval's rules on detections, plain Python), :mod:`.colors` (CLIP colour
classifier), :mod:`.service` (Mask2Former detector as an HTTP service in its own environment,
``workflow/envs/geneval_detector.yml``), :mod:`.client`, :mod:`.metric`. Imports stay lazy here so
the service can run in the detector's environment, which lacks open_clip.

Options (the config's ``metrics.geneval`` block): ``url`` of the service (default
``http://127.0.0.1:18085``); ``metadata``, one or more GenEval JSONL files in which every scored prompt
is looked up; ``mode``, ``accuracy`` (evaluation) or ``partial`` (Flow-GRPO's training reward);
``clip_checkpoint``; ``clip_model`` (default ``ViT-L-14``); ``device``; ``batch_size`` (images per
request, default 16); ``timeout`` (seconds per request, default 600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from eval.metrics import WeightSpec, default_device

MMDET_CHECKPOINT = ("https://download.openmmlab.com/mmdetection/v3.0/mask2former/"
                    "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco/"
                    "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco_20220504_001756-c9d0c4f2.pth")

OPENAI_VIT_L_14 = ("https://openaipublic.azureedge.net/clip/models/"
                   "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt")

WEIGHTS = (
    WeightSpec(
        "clip_checkpoint",
        "OpenAI CLIP ViT-L-14 weights (OpenAI's TorchScript ViT-L-14.pt, or an open_clip checkpoint)",
        "GenEval loads open_clip 'ViT-L-14' pretrained='openai' (its download script fetches no CLIP file): "
        f"download {OPENAI_VIT_L_14} (or open_clip_model.safetensors of "
        "https://huggingface.co/timm/vit_large_patch14_clip_224.openai)",
    ),
    WeightSpec(
        "detector_config",
        "the service's mmdet 3.x config mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py (with its _base_ files)",
        "configs/mask2former/ of mmdetection v3.3.0 (pip's mmdet ships it under mmdet/.mim/configs/mask2former/)",
        required=False,
    ),
    WeightSpec(
        "detector_checkpoint",
        "the service's Mask2Former Swin-S COCO instance-segmentation checkpoint (.pth)",
        f"{MMDET_CHECKPOINT} (the mmdet-3 URL of GenEval's evaluation/download_models.sh at commit 75c43cb; "
        "the current script fetches the same run's mmdet-2 file, .../v2.0/...-743b7d99.pth)",
        required=False,
    ),
)
"""The CLIP weights are read here; the detector's files are read by the service (``--config``, ``--checkpoint``)."""


def build(options: dict[str, Any]) -> Any:
    """The GenEval metric: a client of the running service, the CLIP colour classifier, the prompt records."""
    from eval.geneval.client import DetectorClient
    from eval.geneval.colors import ColorClassifier
    from eval.geneval.metric import GenEvalMetric, load_records

    if not options.get("metadata"):
        raise ValueError("metrics.geneval.metadata is not set: give the GenEval JSONL file(s) holding the prompts")
    client = DetectorClient(options.get("url", "http://127.0.0.1:18085"), float(options.get("timeout", 600)),
                            int(options.get("batch_size", 16)))
    colors = ColorClassifier.load(options["clip_checkpoint"], options.get("clip_model", "ViT-L-14"),
                                  default_device(options))
    return GenEvalMetric(client, colors, load_records(options["metadata"]), options.get("mode", "accuracy"))


def accuracy_table(prompts: Sequence[str], correct: Sequence[float | bool],
                   metadata: str | Path | Sequence[str | Path]) -> dict[str, float]:
    """Per-tag GenEval accuracy of a scored set and ``overall``, the mean over tags.

    ``correct`` are accuracy-mode scores (1.0 / 0.0) of the images of ``prompts``; the tags come from
    the GenEval metadata file(s). See :func:`eval.geneval.metric.accuracy_table`.
    """
    from eval.geneval.metric import accuracy_table as table

    return table(prompts, correct, metadata)
