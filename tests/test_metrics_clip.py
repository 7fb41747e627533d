"""PickScore, HPSv2 and ImageReward through their real scoring paths, with random tiny weights loaded from files.

Each scorer is built by ``eval.metrics.build_metric`` from files written by ``tests/tiny_metrics.py``,
with sockets refused (no hidden download) and the hub offline (conftest). The formula tests recompute
each score another way from the same weights: PickScore from the CLIP towers' projections, HPSv2 with
HPSv2's own vendored open_clip and transform, ImageReward with the package's ``inference_rank`` (the
call Flow-GRPO makes). ``-m heavy`` times the full-size architectures (random weights, in memory).
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from PIL import Image

from eval.metrics import METRICS, MissingWeightsError, build_metric, metric_module
import tiny_metrics

NAMES = ["pickscore", "hpsv2", "imagereward"]
PROMPTS = ["a photo of a cat", "a red car on the tree", "a painting of a small blue house in the sky"]


@contextmanager
def no_network() -> Iterator[None]:
    """Any socket connection inside the block fails the test."""
    def refuse(sock: socket.socket, address: Any) -> None:
        raise AssertionError(f"network access attempted: {address}")

    connect = socket.socket.connect
    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = connect  # type: ignore[method-assign]


def images_uint8(n: int, height: int = 64, width: int = 48, seed: int = 0) -> torch.Tensor:
    """(n, 3, H, W) random uint8 levels (non-square, so every resize, crop and pad step runs)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, height, width), generator=generator, dtype=torch.uint8)


def pil(images: torch.Tensor) -> list[Image.Image]:
    """uint8 (n, 3, H, W) -> PIL images, independently of the metrics' own conversion."""
    return [Image.fromarray(a) for a in images.permute(0, 2, 3, 1).numpy()]


FILES = {"pickscore": tiny_metrics.pickscore_files, "hpsv2": tiny_metrics.hpsv2_files,
         "imagereward": tiny_metrics.imagereward_files}


@pytest.fixture(scope="module")
def options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("metric_weights")
    return {name: {**FILES[name](root / name), "device": "cpu"} for name in NAMES}


@pytest.fixture(scope="module")
def metrics(options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with no_network():
        return {name: build_metric(name, options[name]) for name in NAMES}


def test_offline_session_and_network_guard() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with no_network(), pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_fp32_per_image_and_vary(metrics: dict[str, Any], name: str) -> None:
    images = images_uint8(3).float() / 255
    with no_network():
        by_image = metrics[name](images, [PROMPTS[0]] * 3)
        by_prompt = metrics[name](images[:1].expand(3, -1, -1, -1), PROMPTS)
    assert by_image.shape == (3,) and by_image.dtype == torch.float32 and by_image.device.type == "cpu"
    assert torch.isfinite(by_image).all()
    assert by_image.std() > 1e-4 and by_prompt.std() > 1e-4, (by_image, by_prompt)


@pytest.mark.parametrize("name", NAMES)
def test_batch_of_three_equals_three_batches_of_one(metrics: dict[str, Any], name: str) -> None:
    images = images_uint8(3, seed=1).float() / 255
    together = metrics[name](images, PROMPTS)
    alone = torch.cat([metrics[name](images[i:i + 1], PROMPTS[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_batch_size_option_splits_without_changing_scores(options: dict[str, dict[str, Any]], metrics: dict[str, Any],
                                                          name: str) -> None:
    images = images_uint8(3, seed=2).float() / 255
    in_twos = build_metric(name, {**options[name], "batch_size": 2})
    torch.testing.assert_close(in_twos(images, PROMPTS), metrics[name](images, PROMPTS), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_one_prompt_per_image_and_empty_batches(metrics: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match="2 images but 3 prompts"):
        metrics[name](images_uint8(2).float() / 255, PROMPTS)
    assert metrics[name](images_uint8(0).float() / 255, []).shape == (0,)


def test_pickscore_is_scaled_cosine_of_clip_projections(options: dict[str, dict[str, Any]],
                                                        metrics: dict[str, Any]) -> None:
    from transformers import CLIPModel, CLIPProcessor

    images = images_uint8(3, seed=3)
    model = CLIPModel.from_pretrained(options["pickscore"]["model"]).eval()
    processor = CLIPProcessor.from_pretrained(options["pickscore"]["processor"])
    with torch.no_grad():
        pixels = processor(images=pil(images), return_tensors="pt").pixel_values
        text = processor(text=PROMPTS, padding=True, return_tensors="pt")
        image_emb = model.visual_projection(model.vision_model(pixel_values=pixels).pooler_output)
        text_emb = model.text_projection(model.text_model(**text).pooler_output)
        cosine = torch.nn.functional.cosine_similarity(image_emb, text_emb)
        expected = model.logit_scale.exp() * cosine / 26
    torch.testing.assert_close(metrics["pickscore"](images.float() / 255, PROMPTS), expected, rtol=1e-5, atol=1e-6)


def test_hpsv2_matches_hpsv2s_own_model_and_transform(options: dict[str, dict[str, Any]],
                                                      metrics: dict[str, Any]) -> None:
    """HPSv2's vendored open_clip (what trained the checkpoint), its eval transform, diag(image_f @ text_f.T)."""
    from hpsv2.src import open_clip as hps_open_clip
    from hpsv2.src.open_clip.transform import image_transform

    name = options["hpsv2"]["model_name"]
    hps_open_clip.add_model_config(Path(options["hpsv2"]["checkpoint"]).with_name(f"{name}.json"))
    model = hps_open_clip.create_model(name, pretrained=None, output_dict=True).eval()
    model.load_state_dict(torch.load(options["hpsv2"]["checkpoint"])["state_dict"])
    preprocess = image_transform(model.visual.image_size, is_train=False, resize_longest_max=True)
    images = images_uint8(3, seed=4)
    with torch.no_grad():
        out = model(torch.stack([preprocess(p) for p in pil(images)]), hps_open_clip.get_tokenizer(name)(PROMPTS))
        expected = (out["image_features"] @ out["text_features"].T).diagonal()
    torch.testing.assert_close(metrics["hpsv2"](images.float() / 255, PROMPTS), expected, rtol=1e-5, atol=1e-6)


def test_imagereward_matches_the_packages_inference_rank(metrics: dict[str, Any]) -> None:
    """Flow-GRPO scores each image with ``model.inference_rank(prompt, [pil_image])``."""
    images = images_uint8(3, seed=5)
    model = metrics["imagereward"].model
    with torch.no_grad():
        expected = torch.tensor([model.inference_rank(p, [im])[1] for p, im in zip(PROMPTS, pil(images))])
    torch.testing.assert_close(metrics["imagereward"](images.float() / 255, PROMPTS), expected, rtol=1e-5, atol=1e-5)


def test_imagereward_rejects_a_checkpoint_that_does_not_fit(options: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    torch.save({"mlp.layers.0.bias": torch.zeros(1024)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="metrics.imagereward.checkpoint.*lacks"):
        build_metric("imagereward", {**options["imagereward"], "checkpoint": str(tmp_path / "other.pt")})


@pytest.mark.parametrize("name", NAMES)
def test_missing_weights_name_the_option_the_path_and_how_to_get_them(name: str, tmp_path: Path) -> None:
    assert name in METRICS
    specs = metric_module(name).WEIGHTS
    absent = {spec.key: str(tmp_path / spec.key) for spec in specs}
    with pytest.raises(MissingWeightsError) as err:
        build_metric(name, absent)
    for spec in specs:
        assert f"metrics.{name}.{spec.key} = {absent[spec.key]} does not exist" in str(err.value)
        assert spec.source in str(err.value)
    with pytest.raises(MissingWeightsError, match=f"metrics.{name}.{specs[0].key} is not set"):
        build_metric(name, {})


def full_size(name: str, root: Path) -> Any:
    """The real architecture with random weights, in memory (a 4 GB checkpoint file would only slow the test)."""
    import open_clip
    from hpsv2.src.open_clip.transform import image_transform
    from transformers import CLIPProcessor

    from eval.hpsv2 import HPSv2
    from eval.imagereward import VIT_LARGE, ImageRewardMetric
    from eval.pickscore import PickScore

    cpu = torch.device("cpu")
    if name == "pickscore":
        processor = CLIPProcessor.from_pretrained(tiny_metrics.clip_processor(root, 224))
        return PickScore(tiny_metrics.clip_model(tiny_metrics.FULL_CLIP), processor, cpu, 4)
    if name == "hpsv2":
        model = tiny_metrics.open_clip_model("ViT-H-14", None, root)
        preprocess = image_transform(224, is_train=False, resize_longest_max=True)
        return HPSv2(model, open_clip.get_tokenizer("ViT-H-14"), preprocess, cpu, 4)
    return ImageRewardMetric(tiny_metrics.imagereward_model(root, tiny_metrics.FULL_MED, VIT_LARGE)[0], 4)


@pytest.mark.heavy
@pytest.mark.parametrize("name", NAMES)
def test_full_size_seconds_per_image(name: str, tmp_path: Path) -> None:
    metric = full_size(name, tmp_path)
    images = images_uint8(4, 512, 512).float() / 255
    metric(images[:1], PROMPTS[:1])
    start = time.perf_counter()
    scores = metric(images, PROMPTS + PROMPTS[:1])
    seconds = (time.perf_counter() - start) / len(images)
    print(f"\n{name}: {seconds:.2f} s/image at full size, {torch.get_num_threads()} torch thread(s)")
    assert scores.shape == (4,) and torch.isfinite(scores).all()
