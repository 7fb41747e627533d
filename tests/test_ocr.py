"""OCR reward: the formula on constructed strings, and the real rapidocr backend on rendered text."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from eval.metrics import MissingWeightsError, build_metric
from eval.ocr import OcrMetric, build, normalise, ocr_reward

FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def render(*lines: str) -> torch.Tensor:
    """Black DejaVuSans-Bold 100 px lines, centred on a white 512x512 canvas; (3, 512, 512) in [0, 1]."""
    image = Image.new("RGB", (512, 512), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 100)
    top = 256 - 60 * len(lines)
    for i, line in enumerate(lines):
        draw.text((256, top + 60 + 120 * i), line, font=font, fill="black", anchor="mm")
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


# ---------------------------------------------------------------------------- the formula


@pytest.mark.parametrize(
    ("recognised", "target", "expected"),
    [
        ("hello", "hello", 1.0),
        ("helo", "hello", 1 - 1 / 5),  # one deletion
        ("gaurd", "guard", 1 - 2 / 5),  # a transposition is two Levenshtein edits
        ("", "abc", 0.0),  # nothing read: d = |t|
        ("zzzzzzzzzz", "abc", 0.0),  # d = 10 capped at |t| = 3
        ("theguardsays", "guard", 1.0),  # contained: 1 although d = 7
        ("HeLLo WoRLD", "hello world", 1.0),  # spaces and case do not count
        ("abxd", "ab cd", 1 - 1 / 4),  # target normalised to "abcd" (|t| = 4), one substitution
        ("hello\tworld", "helloworld", 1 - 1 / 10),  # only " " is removed, as in the reference
    ],
)
def test_reward_formula(recognised: str, target: str, expected: float) -> None:
    assert ocr_reward(recognised, target) == pytest.approx(expected)


def test_normalise_removes_spaces_and_lowercases() -> None:
    assert normalise(" Flow GRPO ") == "flowgrpo"


def test_empty_target_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="OCR target '  ' is empty once spaces are removed"):
        ocr_reward("text", "  ")


def test_backend_error_gives_zero_logs_and_keeps_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    def read(image: np.ndarray) -> str:
        if image.mean() < 128:
            raise RuntimeError("backend broke")
        return "guard"

    metric = OcrMetric(read)
    images = torch.stack([torch.ones(3, 8, 8), torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    with caplog.at_level(logging.WARNING, logger="eval.ocr"):
        rewards = metric(images, ['"guard"', '"guard"', '"gua"'])
    assert rewards.tolist() == [1.0, 0.0, 1.0]
    assert rewards.dtype == torch.float32
    assert metric.failures == 1
    assert "backend broke" in caplog.text


def test_prompt_without_quotes_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no quotes here"):
        OcrMetric(lambda image: "")(torch.ones(1, 3, 8, 8), ["no quotes here"])


def test_unknown_backend_names_the_choices() -> None:
    with pytest.raises(ValueError, match="paddleocr"):
        build({"backend": "tesseract"})


def test_paddleocr_without_model_dirs_names_the_options() -> None:
    with pytest.raises(MissingWeightsError) as err:
        build_metric("ocr", {"backend": "paddleocr"})
    for key in ("det_model_dir", "rec_model_dir", "cls_model_dir"):
        assert f"metrics.ocr.{key} is not set" in str(err.value)
    assert "en_PP-OCRv4_rec_infer.tar" in str(err.value)


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr is installed")
def test_paddleocr_not_installed_says_what_to_install(tmp_path: Path) -> None:
    dirs = {key: str(tmp_path) for key in ("det_model_dir", "rec_model_dir", "cls_model_dir")}
    with pytest.raises(ImportError, match="pip install paddleocr==2.9.1"):
        build({"backend": "paddleocr", **dirs})


# ---------------------------------------------------------------------------- real OCR (rapidocr)


@pytest.fixture(scope="module")
def metric() -> OcrMetric:
    pytest.importorskip("rapidocr_onnxruntime")
    return build_metric("ocr", {"threads": 1})


def test_exact_text_scores_one(metric: OcrMetric) -> None:
    assert metric(render("GUARD")[None], ['A poster that reads "Guard"']).tolist() == [1.0]


def test_misspelled_render_scores_the_edit_distance_reward(metric: OcrMetric) -> None:
    # "HELO" read for target "hello": one deletion, |t| = 5 -> 1 - 1/5
    reward = metric(render("HELO")[None], ['A sign saying "hello"'])
    assert reward.tolist() == [pytest.approx(0.8)]


def test_blank_image_scores_zero(metric: OcrMetric) -> None:
    before = metric.no_text
    assert metric(torch.ones(1, 3, 512, 512), ['A sign saying "hello"']).tolist() == [0.0]
    assert metric.no_text == before + 1


def test_two_lines_are_joined_and_spaces_and_case_ignored(metric: OcrMetric) -> None:
    # Two boxes "HELLO", "WORLD" join to "HELLOWORLD"; the target "Hello World" normalises to it.
    assert metric(render("HELLO", "WORLD")[None], ['A neon sign "Hello World" at night']).tolist() == [1.0]


def test_contained_target_scores_one(metric: OcrMetric) -> None:
    # "THEGUARD" contains "guard" (edit distance 3 would give 0.4 without the containment rule).
    assert metric(render("THE", "GUARD")[None], ['A shield with "guard" on it']).tolist() == [1.0]
