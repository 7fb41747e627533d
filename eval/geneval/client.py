"""Client of the GenEval detector service (``eval.geneval.service``), used in the main environment.

Images go out as lossless PNG (Flow-GRPO's client sends JPEG); detections come back grouped by
class as :class:`eval.geneval.rules.Detection` with (H, W) boolean masks.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Sequence

from PIL import Image

from eval.geneval.masks import decode_mask
from eval.geneval.rules import Detection

START_HINT = (
    "start it in its own environment: conda env create -f workflow/envs/geneval_detector.yml; "
    "conda run -n geneval_detector python -m eval.geneval.service --config CFG --checkpoint CKPT "
    "--port PORT --ready-file FILE; then set metrics.geneval.url to the URL it writes to FILE"
)


class DetectorUnavailable(ConnectionError):
    """The service cannot be reached; the message names the URL and how to start the service."""


class DetectorError(RuntimeError):
    """The service answered with an error."""


@dataclass(frozen=True)
class DetectorClient:
    """Talks to one service at ``url`` (``http://127.0.0.1:18085``); ``batch_size`` images per request."""

    url: str
    timeout: float = 600.0
    batch_size: int = 16

    def health(self) -> dict[str, Any]:
        """The service's ``/health`` answer."""
        return self._call("GET", "/health")

    def detect(self, images: Sequence[Image.Image], min_score: float = 0.0) -> list[dict[str, list[Detection]]]:
        """Per image, ``{class: [Detection, ...]}`` of detections scoring at least ``min_score``."""
        out: list[dict[str, list[Detection]]] = []
        for start in range(0, len(images), self.batch_size):
            batch = [_png_base64(image) for image in images[start : start + self.batch_size]]
            answer = self._call("POST", "/detect", {"images": batch, "min_score": min_score})
            out += [_group(found) for found in answer["detections"]]
        return out

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON request; unreachable -> DetectorUnavailable, error status -> DetectorError."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            message = f"GenEval detector at {self.url}{path} answered {err.code}: {_error_text(err)}"
            raise DetectorError(message) from None
        except TimeoutError:
            message = (f"GenEval detector at {self.url} did not answer within {self.timeout:.0f} s; "
                       "raise metrics.geneval.timeout")
            raise DetectorError(message) from None
        except (urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            message = f"GenEval detector service at {self.url} is unreachable ({reason}); {START_HINT}"
            raise DetectorUnavailable(message) from None


def _png_base64(image: Image.Image) -> str:
    """RGB PNG, base64 text."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _group(found: list[dict[str, Any]]) -> dict[str, list[Detection]]:
    """Service detections -> ``{class: [Detection, ...]}`` in the service's order."""
    grouped: dict[str, list[Detection]] = {}
    for item in found:
        mask = None if item.get("mask") is None else decode_mask(item["mask"])
        grouped.setdefault(item["class"], []).append(Detection(tuple(item["box"]), float(item["score"]), mask))
    return grouped


def _error_text(err: urllib.error.HTTPError) -> str:
    """The service's ``error`` field, else the raw body."""
    body = err.read().decode(errors="replace")
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body
