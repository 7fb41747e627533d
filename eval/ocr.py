"""OCR reward of the text-rendering task (Flow-GRPO's ``flow_grpo/ocr.py``), behind :mod:`eval.metrics`.

For a prompt whose target text ``t`` lies between its first pair of double quotes and the text ``r``
that OCR reads in the image (every detected box's text, joined with no separator, in the backend's
reading order), both normalised by removing the ``" "`` characters and lower-casing::

    reward = 1                            if t is a substring of r
           = 1 - min(d(r, t), |t|) / |t|  otherwise, d = Levenshtein distance (unit costs)

so a blank image (r = "") scores 0. An image on which the backend raises also scores 0; it is
logged and counted (``failures``), and the rest of the batch goes on. Images with no text found are
counted too (``no_text``).

Backends (option ``backend``):

- ``rapidocr`` (default): rapidocr-onnxruntime with its bundled PP-OCRv4 ONNX models; no weights.
  Option ``threads``: onnxruntime threads per session (default: onnxruntime's choice).
- ``paddleocr``: the reference, PaddleOCR 2.x (Flow-GRPO's README: ``paddleocr==2.9.1``,
  ``paddlepaddle-gpu==2.6.2``) on the CPU, with the model folders ``det_model_dir``,
  ``rec_model_dir`` and ``cls_model_dir`` (it loads all three, offline).

Followed from the reference: the quoted target (``prompt.split('"')[1]``, via
:func:`eval.prompts.records.ocr_target`); only ``" "`` removed, then lower-cased; boxes joined with ``""``
(keeping those of score > 0, after the backend's own 0.5 recognition-score cut); the containment
rule and the cap at ``|t|``; python-Levenshtein's distance (rapidfuzz's is the same function); no
angle classifier (``use_angle_cls=False``, ``cls=False``); images as ``(x * 255).round()`` uint8
HWC arrays in RGB order, handed to the backend as they are (both backends take arrays as BGR, so
the channels reach them swapped, as in the reference).
Departures: failures are logged with :mod:`logging` and counted instead of printed; the default
backend is rapidocr, whose recogniser is the Chinese-English PP-OCRv4 model (the reference's
PaddleOCR ``lang="en"`` uses the English one) and whose detector resizes differently, so its
rewards are close to, not identical with, the reference's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from rapidfuzz.distance import Levenshtein

from eval.metrics import Metric, MissingWeightsError, WeightSpec, to_uint8_hwc
from eval.prompts.records import ocr_target

log = logging.getLogger(__name__)

Reader = Callable[[np.ndarray], str]
"""An OCR backend: one uint8 HWC image -> the recognised text of all its boxes, joined."""

PADDLE_MODELS = "https://paddleocr.bj.bcebos.com"
WEIGHTS = (
    WeightSpec(
        "det_model_dir",
        "PaddleOCR's English text detector folder en_PP-OCRv3_det_infer (backend paddleocr only)",
        f"unpack {PADDLE_MODELS}/PP-OCRv3/english/en_PP-OCRv3_det_infer.tar (what PaddleOCR 2.x's "
        "lang='en' downloads into ~/.paddleocr/whl/det/en/)",
        required=False,
    ),
    WeightSpec(
        "rec_model_dir",
        "PaddleOCR's English text recogniser folder en_PP-OCRv4_rec_infer (backend paddleocr only)",
        f"unpack {PADDLE_MODELS}/PP-OCRv4/english/en_PP-OCRv4_rec_infer.tar (what PaddleOCR 2.x's "
        "lang='en' downloads into ~/.paddleocr/whl/rec/en/)",
        required=False,
    ),
    WeightSpec(
        "cls_model_dir",
        "PaddleOCR's angle classifier folder ch_ppocr_mobile_v2.0_cls_infer (backend paddleocr only; "
        "PaddleOCR 2.x loads it even with the classifier off)",
        f"unpack {PADDLE_MODELS}/dygraph_v2.0/ch/ch_ppocr_mobile_v2.0_cls_infer.tar (what PaddleOCR "
        "2.x downloads into ~/.paddleocr/whl/cls/)",
        required=False,
    ),
)


def normalise(text: str) -> str:
    """The reference's normalisation: ``" "`` removed (other whitespace kept), lower-cased."""
    return text.replace(" ", "").lower()


def ocr_reward(recognised: str, target: str) -> float:
    """1 if normalised ``target`` is in normalised ``recognised``, else 1 - min(d, |t|) / |t|."""
    t, r = normalise(target), normalise(recognised)
    if not t:
        raise ValueError(f"OCR target {target!r} is empty once spaces are removed")
    if t in r:
        return 1.0
    return 1.0 - min(Levenshtein.distance(r, t), len(t)) / len(t)


@dataclass
class OcrMetric:
    """The OCR reward over a batch; counts the images whose OCR raised or found no text."""

    read: Reader
    failures: int = field(default=0, init=False)
    """Images on which the backend raised."""
    no_text: int = field(default=0, init=False)
    """Images in which it found no text."""

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        targets = [_target(p) for p in prompts]
        rewards = [self.score(image, t) for image, t in zip(to_uint8_hwc(images), targets)]
        return torch.tensor(rewards, dtype=torch.float32)

    def score(self, image: np.ndarray, target: str) -> float:
        """Reward of one image; 0, logged and counted, when the backend raises."""
        try:
            text = self.read(image)
        except Exception as err:  # any backend error on one image is that image's OCR failure
            self.failures += 1
            log.warning("OCR failed on the image for target %r (%s: %s); reward 0 (%d failures so far)",
                        target, type(err).__name__, err, self.failures)
            return 0.0
        if not text:
            self.no_text += 1
            log.info("OCR found no text in the image for target %r; reward 0", target)
        return ocr_reward(text, target)


def _target(prompt: str) -> str:
    """The prompt's quoted target; a prompt without one is a data error, not an OCR failure."""
    try:
        return ocr_target(prompt)
    except ValueError as err:
        raise ValueError(f"OCR prompt {prompt!r}: {err}") from None


def rapidocr_reader(options: dict[str, Any]) -> Reader:
    """rapidocr-onnxruntime's bundled PP-OCRv4 det + rec, no angle classifier."""
    from rapidocr_onnxruntime import RapidOCR

    threads = options.get("threads")
    engine = RapidOCR(use_cls=False, **({} if threads is None else {"intra_op_num_threads": int(threads)}))

    def read(image: np.ndarray) -> str:
        boxes, _ = engine(image)
        return "".join(text for _, text, score in boxes or () if float(score) > 0)

    return read


def paddleocr_reader(options: dict[str, Any]) -> Reader:
    """PaddleOCR 2.x as the reference builds it, from the three local model folders."""
    unset = [spec for spec in WEIGHTS if options.get(spec.key) is None]
    if unset:
        raise MissingWeightsError("\n".join(
            f"ocr: metrics.ocr.{s.key} is not set; backend paddleocr needs it: {s.what}. Get it: {s.source}"
            for s in unset
        ))
    try:
        from paddleocr import PaddleOCR
    except ImportError as err:
        raise ImportError(
            "metrics.ocr.backend = paddleocr needs PaddleOCR 2.x: pip install paddleocr==2.9.1 "
            "paddlepaddle==2.6.2 (as Flow-GRPO's README); or set metrics.ocr.backend: rapidocr"
        ) from err
    engine = PaddleOCR(use_angle_cls=False, lang="en", use_gpu=False, show_log=False,
                       **{spec.key: str(options[spec.key]) for spec in WEIGHTS})

    def read(image: np.ndarray) -> str:
        boxes = engine.ocr(image, cls=False)[0]
        return "".join(text for _, (text, score) in boxes or () if score > 0)

    return read


BACKENDS: dict[str, Callable[[dict[str, Any]], Reader]] = {
    "rapidocr": rapidocr_reader,
    "paddleocr": paddleocr_reader,
}


def build(options: dict[str, Any]) -> Metric:
    """The OCR reward with the backend ``options['backend']`` (default rapidocr)."""
    backend = options.get("backend", "rapidocr")
    if backend not in BACKENDS:
        raise ValueError(f"metrics.ocr.backend = {backend!r}; choose one of {sorted(BACKENDS)}")
    return OcrMetric(BACKENDS[backend](options))
