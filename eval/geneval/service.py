"""GenEval's object detector as a local HTTP service, run in its own environment (mmdet cannot share ours).

``python -m eval.geneval.service --config CFG --checkpoint CKPT [--port 18085] [--ready-file F]``
(env: ``workflow/envs/geneval_detector.yml``). Module level uses the standard library only; mmdet,
mmcv and numpy are imported inside :func:`load_mmdet_backend`.

- ``GET /health`` -> ``{"status": "ok", "backend": NAME}``
- ``POST /detect`` with ``{"images": [base64 PNG, ...], "min_score": 0.3}`` ->
  ``{"detections": [[{"class", "box": [x1, y1, x2, y2], "score", "mask": RLE}, ...] per image]}``,
  masks as :mod:`eval.geneval.masks` run lengths; detections scoring below ``min_score`` are left out.
  A malformed request answers 400, a backend failure 500, both with ``{"error": message}``.

The backend is pluggable (``--backend MODULE:FACTORY``, called with config, checkpoint and device):
tests serve constructed detections through the same HTTP layer. The ready file, written once the
backend is loaded and the port bound, holds ``{"url", "pid"}`` (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import importlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Sequence

Backend = Callable[[list[bytes], float], list[list[dict[str, Any]]]]
"""PNG images and a minimum score -> per image, detections as JSON-ready dicts."""

OBJECT_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
"""GenEval's ``evaluation/object_names.txt``: its names for the 80 COCO labels, in label order."""


def load_mmdet_backend(config: str, checkpoint: str, device: str) -> Backend:
    """Mask2Former (mmdet 3.x) as a backend.

    PNGs are decoded to BGR, the channel order mmdet gets when it reads GenEval's image files
    (Flow-GRPO's reward server hands mmdet RGB arrays instead, which mmdet takes for BGR).
    """
    import mmcv
    from mmdet.apis import inference_detector, init_detector

    from eval.geneval.masks import encode_mask

    model = init_detector(config, checkpoint, device=device)

    def detect(pngs: list[bytes], min_score: float) -> list[list[dict[str, Any]]]:
        arrays = [mmcv.imfrombytes(png, flag="color", channel_order="bgr") for png in pngs]
        return [_instances(result.pred_instances, min_score, encode_mask)
                for result in inference_detector(model, arrays)]

    return detect


def _instances(pred: Any, min_score: float, encode: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """mmdet ``pred_instances`` (bboxes, scores, labels, masks) -> JSON-ready detections."""
    boxes, scores = pred.bboxes.cpu().numpy(), pred.scores.cpu().numpy()
    labels, masks = pred.labels.cpu().numpy(), pred.masks.cpu().numpy()
    return [
        {"class": OBJECT_NAMES[int(labels[i])], "box": [float(v) for v in boxes[i]],
         "score": float(scores[i]), "mask": encode(masks[i])}
        for i in range(len(scores)) if scores[i] >= min_score
    ]


class BadRequest(ValueError):
    """A request the service cannot read; answered with 400."""


def parse_detect_request(body: bytes) -> tuple[list[bytes], float]:
    """``{"images": [base64 PNG, ...], "min_score": float}`` -> (PNG bytes, min score)."""
    try:
        request = json.loads(body)
        images = [base64.b64decode(s, validate=True) for s in request["images"]]
        return images, float(request.get("min_score", 0.0))
    except (json.JSONDecodeError, binascii.Error, KeyError, TypeError, ValueError) as err:
        raise BadRequest(f"expected JSON {{'images': [base64 PNG, ...], 'min_score': float}}: {err!r}") from None


class DetectorServer(ThreadingHTTPServer):
    """An HTTP server holding one backend; calls into the backend are serialised by a lock."""

    def __init__(self, address: tuple[str, int], backend: Backend, name: str) -> None:
        super().__init__(address, DetectorHandler)
        self.backend, self.backend_name, self.lock = backend, name, threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` as bound."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class DetectorHandler(BaseHTTPRequestHandler):
    """``GET /health`` and ``POST /detect``."""

    server: DetectorServer

    def do_GET(self) -> None:
        """Health check."""
        if self.path != "/health":
            return self._reply(404, {"error": f"no such path {self.path}; use GET /health or POST /detect"})
        self._reply(200, {"status": "ok", "backend": self.server.backend_name})

    def do_POST(self) -> None:
        """Detect objects in a batch of PNG images."""
        if self.path != "/detect":
            return self._reply(404, {"error": f"no such path {self.path}; use POST /detect"})
        try:
            images, min_score = parse_detect_request(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with self.server.lock:
                detections = self.server.backend(images, min_score)
        except BadRequest as err:
            return self._reply(400, {"error": str(err)})
        except Exception as err:  # noqa: BLE001 - any backend failure goes back to the client
            return self._reply(500, {"error": f"detector backend failed: {err!r}"})
        self._reply(200, {"detections": detections})

    def _reply(self, code: int, payload: dict[str, Any]) -> None:
        """Send ``payload`` as JSON."""
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def load_backend(spec: str, config: str, checkpoint: str, device: str) -> Backend:
    """``MODULE:FACTORY`` -> ``FACTORY(config, checkpoint, device)``."""
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"--backend must be MODULE:FACTORY, got {spec!r}")
    return getattr(importlib.import_module(module), name)(config, checkpoint, device)


def write_ready_file(path: Path, url: str) -> None:
    """Write ``{"url", "pid"}`` atomically, so a waiting reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the backend, bind, write the ready file, serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m eval.geneval.service", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True,
                        help="mmdet 3.x config mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py")
    parser.add_argument("--checkpoint", required=True, help="its Mask2Former Swin-S COCO checkpoint (.pth)")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback by default: no auth)")
    parser.add_argument("--port", type=int, default=18085, help="0 picks a free port (see --ready-file)")
    parser.add_argument("--ready-file", type=Path, help="written with the URL once the service answers")
    parser.add_argument("--backend", default="eval.geneval.service:load_mmdet_backend", help="MODULE:FACTORY")
    args = parser.parse_args(argv)
    backend = load_backend(args.backend, args.config, args.checkpoint, args.device)
    server = DetectorServer((args.host, args.port), backend, args.backend)
    if args.ready_file:
        write_ready_file(args.ready_file, server.url)
    print(f"GenEval detector serving at {server.url}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
