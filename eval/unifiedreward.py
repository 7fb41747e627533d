"""UnifiedReward gold metric: a served VLM judge (UnifiedReward-7b-v1.5) asked for a 1-5 score.

Per image: resized to 512x512 (bicubic), sent as a base64 PNG data URL with Flow-GRPO's question
(:data:`QUESTION`, from ``flow_grpo/rewards.py``'s ``unifiedreward_score_sglang``) to an
OpenAI-compatible ``/chat/completions`` endpoint at temperature 0; the answer's first
``Final Score: x`` (x in 1-5) gives::

    score = x / 5    (in [0.2, 1])

An answer without a parsable score gives NaN, a logged warning and a count (``unparsed``); the
reference gives 0 there, which would pull a mean down silently. Requests go out from ``workers``
threads; connection errors, timeouts and HTTP 429/5xx are retried ``retries`` times with
exponential backoff (``backoff`` s, doubled each time); a server still unreachable then raises
:class:`JudgeUnreachableError`, naming the URL and how to start the server.

Options: ``url`` (default http://127.0.0.1:17140/v1, the reference's port), ``model`` (served
model name, default UnifiedReward-7b-v1.5), ``timeout`` (s per request, default 120), ``workers``
(default 8), ``retries`` (default 4), ``backoff`` (default 1.0), ``api_key`` (sent as a bearer
token when the server was started with one; the reference's is "flowgrpo").

Followed from the reference: the question text verbatim (including its leading ``<image>\\n``),
the message layout (image part, then text part), temperature 0, no max_tokens, the resize to
512x512 with Pillow's default (bicubic) filter after the ``(x * 255).round()`` uint8 conversion, the
score pattern and /5. Departures: NaN instead of 0 for an unparsable answer; the pattern is
case-insensitive, allows markdown emphasis around the colon (``**Final Score:** 4``) and rejects a
number that continues (``10`` is not read as 1); the data URL says ``image/png`` (the reference:
``data:image;base64``; sglang reads both); a thread pool of plain HTTP requests instead of the
``openai`` AsyncOpenAI client.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from eval.metrics import Metric, WeightSpec, to_uint8_hwc

log = logging.getLogger(__name__)

WEIGHTS = (
    WeightSpec(
        "model_path",
        "the UnifiedReward-7b-v1.5 model folder (LLaVA-OneVision Qwen2-7B), read by the server "
        "workflow/scripts/serve_unifiedreward.sh, not by this client",
        "huggingface-cli download CodeGoat24/UnifiedReward-7b-v1.5 --local-dir DIR",
        required=False,
    ),
)

QUESTION = (
    "<image>\nYou are given a text caption and a generated image based on that caption. Your task is "
    "to evaluate this image based on two key criteria:\n1. Alignment with the Caption: Assess how well "
    "this image aligns with the provided caption. Consider the accuracy of depicted objects, their "
    "relationships, and attributes as described in the caption.\n2. Overall Image Quality: Examine the "
    "visual quality of this image, including clarity, detail preservation, color accuracy, and overall "
    "aesthetic appeal.\nBased on the above criteria, assign a score from 1 to 5 after 'Final Score:'.\n"
    "Your task is provided as follows:\nText Caption: [{prompt}]"
)
"""Flow-GRPO's judge question; ``{prompt}`` is the caption."""

SCORE = re.compile(r"final score\s*\**\s*:\s*\**\s*([1-5](?:\.\d+)?)(?!\d)", re.IGNORECASE)
SIDE = 512
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
SERVE_HINT = (
    "start it on a GPU node with workflow/scripts/serve_unifiedreward.sh --model-path DIR --port PORT "
    "(env: workflow/envs/unifiedreward.yml), or set metrics.unifiedreward.serve so jobs start it; "
    "metrics.unifiedreward.url must match"
)


class JudgeUnreachableError(ConnectionError):
    """The judge server did not answer; the message names its URL and how to start it."""


def parse_score(answer: str) -> float | None:
    """The first ``Final Score: x`` (1-5) of an answer, divided by 5; None if there is none."""
    match = SCORE.search(answer)
    return float(match.group(1)) / 5 if match else None


def png_data_url(image: np.ndarray) -> str:
    """A uint8 HWC image resized to 512x512 (bicubic) as a base64 PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize((SIDE, SIDE), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def request_body(model: str, image: np.ndarray, prompt: str) -> dict[str, Any]:
    """The chat-completions request for one image and its caption."""
    content = [
        {"type": "image_url", "image_url": {"url": png_data_url(image)}},
        {"type": "text", "text": QUESTION.format(prompt=prompt)},
    ]
    return {"model": model, "messages": [{"role": "user", "content": content}], "temperature": 0}


@dataclass
class UnifiedReward:
    """Client of a served UnifiedReward judge; counts the answers it could not parse."""

    url: str = "http://127.0.0.1:17140/v1"
    model: str = "UnifiedReward-7b-v1.5"
    timeout: float = 120.0
    workers: int = 8
    retries: int = 4
    backoff: float = 1.0
    api_key: str | None = None
    unparsed: int = field(default=0, init=False)
    """Answers without a parsable score so far."""

    def __post_init__(self) -> None:
        """Check the pool and retry sizes once, naming the option to change."""
        if self.workers < 1:
            raise ValueError(f"metrics.unifiedreward.workers must be >= 1, got {self.workers}")
        if self.retries < 0:
            raise ValueError(f"metrics.unifiedreward.retries must be >= 0, got {self.retries}")

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            answers = list(pool.map(self.ask, to_uint8_hwc(images), prompts))
        return torch.tensor([self.score(a, p) for a, p in zip(answers, prompts)], dtype=torch.float32)

    def score(self, answer: str, prompt: str) -> float:
        """``parse_score``, or NaN with a warning and a count when the answer has no score."""
        value = parse_score(answer)
        if value is not None:
            return value
        self.unparsed += 1
        log.warning("UnifiedReward answer without 'Final Score: 1-5' for %r (NaN; %d unparsed so far): %r",
                    prompt, self.unparsed, answer[:300])
        return math.nan

    def ask(self, image: np.ndarray, prompt: str) -> str:
        """The judge's answer for one image, retrying connection errors and 429/5xx with backoff."""
        request = self.http_request(request_body(self.model, image, prompt))
        attempt = 0
        while True:
            try:
                return self.post(request)
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS or attempt == self.retries:
                    detail = err.read().decode("utf-8", "replace")[:500]
                    message = f"UnifiedReward judge at {self.endpoint} answered HTTP {err.code}: {detail}"
                    raise RuntimeError(message) from err
                reason = f"HTTP {err.code}"
            except (urllib.error.URLError, HTTPException, OSError) as err:
                if attempt == self.retries:
                    raise JudgeUnreachableError(
                        f"UnifiedReward judge unreachable at {self.endpoint} after {attempt + 1} tries "
                        f"({_reason(err)}); {SERVE_HINT}"
                    ) from err
                reason = _reason(err)
            delay = self.backoff * 2**attempt
            attempt += 1
            log.info("UnifiedReward judge at %s: %s; retry %d/%d in %.1f s",
                     self.endpoint, reason, attempt, self.retries, delay)
            time.sleep(delay)

    def post(self, request: urllib.request.Request) -> str:
        """One request; the answer text of its first choice."""
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = response.read()
        try:
            return json.loads(payload)["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise RuntimeError(f"UnifiedReward judge at {self.endpoint} answered without "
                               f"choices[0].message.content: {payload[:300]!r}") from err

    @property
    def endpoint(self) -> str:
        """The chat-completions URL under ``url``."""
        return self.url.rstrip("/") + "/chat/completions"

    def http_request(self, body: dict[str, Any]) -> urllib.request.Request:
        """A JSON POST to the endpoint, with the bearer token when one is set."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        return urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")


def _reason(err: Exception) -> str:
    """A connection error's cause in a few words."""
    cause = err.reason if isinstance(err, urllib.error.URLError) else err
    return f"{type(cause).__name__}: {cause}"


def build(options: dict[str, Any]) -> Metric:
    """The judge client from the metric's options (``model_path`` is the server's, not used here)."""
    default = UnifiedReward
    return UnifiedReward(
        url=str(options.get("url", default.url)),
        model=str(options.get("model", default.model)),
        timeout=float(options.get("timeout", default.timeout)),
        workers=int(options.get("workers", default.workers)),
        retries=int(options.get("retries", default.retries)),
        backoff=float(options.get("backoff", default.backoff)),
        api_key=options.get("api_key"),
    )
