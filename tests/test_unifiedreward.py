"""UnifiedReward client against a loopback server speaking OpenAI's /v1/chat/completions."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch
from PIL import Image

from eval.metrics import build_metric
from eval.unifiedreward import JudgeUnreachableError, UnifiedReward, build, parse_score

Reply = Callable[[dict[str, Any], int], tuple[int, str]]
"""(request body, index of the request) -> (HTTP status, answer text or raw body)."""


@dataclass
class Judge:
    """A loopback chat-completions server: records every request, answers with ``reply``."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    reply: Reply = lambda body, i: (200, "Final Score: 4")
    drop_first: int = 0
    """Close this many first connections without answering (a connection-level failure)."""


def completion(text: str) -> str:
    """An OpenAI chat-completions response body with one choice."""
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def judge() -> Iterator[Judge]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                index = len(state.requests)
                state.requests.append({"path": self.path, **body})
                state.headers.append(dict(self.headers))
                drop = index < state.drop_first
            if drop:
                self.close_connection = True
                return
            status, text = state.reply(body, index)
            data = (completion(text) if status == 200 else text).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Judge(url=f"http://127.0.0.1:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def images(n: int, side: int = 64) -> torch.Tensor:
    """n distinct flat-colour images in [0, 1]."""
    return torch.linspace(0.1, 0.9, n).view(n, 1, 1, 1).expand(n, 3, side, side).clone()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(judge: Judge, **options: Any) -> UnifiedReward:
    """A client of the loopback judge with fast retries."""
    return build({"url": judge.url, "backoff": 0.01, **options})


# ---------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Final Score: 4", 0.8),
        ("The image matches the caption well.\nFinal Score: 3.5", 0.7),
        ("Final Score:5", 1.0),
        ("**Final Score:** 2", 0.4),
        ("final score: 1", 0.2),
        ("Final Score: 4/5", 0.8),
        ("Final Score: 3.\nThe colours are off.", 0.6),
        ("Final Score: 2 ... revised Final Score: 5", 0.4),  # the first one, as the reference
    ],
)
def test_parse_score_formats(answer: str, expected: float) -> None:
    assert parse_score(answer) == pytest.approx(expected)


@pytest.mark.parametrize("answer", ["", "I cannot judge this.", "Score: 4", "Final Score: 0", "Final Score: 10"])
def test_parse_score_none_without_a_1_to_5_score(answer: str) -> None:
    assert parse_score(answer) is None


# ---------------------------------------------------------------------------- the client


def test_request_has_model_temperature_png_and_caption(judge: Judge) -> None:
    scores = client(judge, model="judge-7b", api_key="flowgrpo")(images(1), ["a red cube on a table"])
    assert scores.tolist() == [pytest.approx(0.8)]
    (request,) = judge.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "judge-7b"
    assert request["temperature"] == 0
    assert judge.headers[0]["Authorization"] == "Bearer flowgrpo"
    image_part, text_part = request["messages"][0]["content"]
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert (png.format, png.size, png.mode) == ("PNG", (512, 512), "RGB")
    assert png.getpixel((256, 256)) == (26, 26, 26)  # round(0.1 * 255), flat colour survives the resize
    assert text_part["type"] == "text"
    assert text_part["text"].startswith("<image>\nYou are given a text caption")
    assert text_part["text"].endswith("Text Caption: [a red cube on a table]")


def test_scores_follow_prompt_order_across_workers(judge: Judge) -> None:
    answers = {"p1": "Final Score: 1", "p2": "Final Score: 2", "p3": "Final Score: 5"}
    judge.reply = lambda body, i: (200, answers[body["messages"][0]["content"][1]["text"].split("[")[-1][:-1]])
    scores = client(judge, workers=3)(images(3), ["p1", "p2", "p3"])
    assert scores.dtype == torch.float32
    assert scores.tolist() == [pytest.approx(0.2), pytest.approx(0.4), pytest.approx(1.0)]


def test_unparsable_answer_is_nan_logged_and_counted(judge: Judge, caplog: pytest.LogCaptureFixture) -> None:
    judge.reply = lambda body, i: (200, "Final Score: 3" if i == 0 else "a lovely picture")
    metric = client(judge, workers=1)
    with caplog.at_level(logging.WARNING, logger="eval.unifiedreward"):
        scores = metric(images(2), ["a", "b"])
    assert scores[0].item() == pytest.approx(0.6)
    assert math.isnan(scores[1].item())
    assert metric.unparsed == 1
    assert "a lovely picture" in caplog.text


def test_retries_after_a_server_error(judge: Judge) -> None:
    judge.reply = lambda body, i: (503, "loading") if i == 0 else (200, "Final Score: 5")
    assert client(judge)(images(1), ["a"]).tolist() == [1.0]
    assert len(judge.requests) == 2


def test_retries_after_a_dropped_connection(judge: Judge) -> None:
    judge.drop_first = 1
    assert client(judge)(images(1), ["a"]).tolist() == [pytest.approx(0.8)]
    assert len(judge.requests) == 2


def test_client_error_is_not_retried_and_names_the_status(judge: Judge) -> None:
    judge.reply = lambda body, i: (400, '{"error": "bad model"}')
    with pytest.raises(RuntimeError, match="HTTP 400.*bad model"):
        client(judge)(images(1), ["a"])
    assert len(judge.requests) == 1


def test_unreachable_server_names_the_url_and_how_to_start_it() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(JudgeUnreachableError) as err:
        build_metric("unifiedreward", {"url": url, "retries": 1, "backoff": 0.01})(images(1), ["a"])
    message = str(err.value)
    assert f"{url}/chat/completions" in message
    assert "after 2 tries" in message
    assert "serve_unifiedreward.sh" in message


def test_bad_pool_size_names_the_option() -> None:
    with pytest.raises(ValueError, match="metrics.unifiedreward.workers"):
        build({"workers": 0})


# ---------------------------------------------------------------------------- the serve script

SERVE = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "serve_unifiedreward.sh"
FAKE_PYTHON = """#!{python}
# Stands in for the sglang env's python: `-c "import sglang"` succeeds, `-m sglang.launch_server`
# records its arguments and answers GET /v1/models on --port; anything else runs the real python.
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
if sys.argv[1:] == ["-c", "import sglang"]:
    sys.exit(0)
if sys.argv[1:3] != ["-m", "sglang.launch_server"]:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
args = sys.argv[3:]
open({record!r}, "w").write(json.dumps(args))
class Models(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.end_headers()
        self.wfile.write(b'{{"data": [{{"id": "UnifiedReward-7b-v1.5"}}]}}')
    def log_message(self, *a):
        pass
HTTPServer((args[args.index("--host") + 1], int(args[args.index("--port") + 1])), Models).serve_forever()
"""


def test_serve_script_waits_for_models_writes_ready_file_and_stops_the_server(tmp_path: Path) -> None:
    model = tmp_path / "UnifiedReward-7b-v1.5"
    model.mkdir()
    (model / "config.json").write_text("{}")
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON.format(python=sys.executable, record=str(tmp_path / "args.json")))
    fake.chmod(0o755)
    port, ready = free_port(), tmp_path / "judge.ready"
    # positional MODEL_PATH PORT, as the config's `serve` line gives them
    command = [str(SERVE), str(model), str(port), "--ready-file", str(ready), "--timeout", "30"]
    process = subprocess.Popen(command, env={**os.environ, "UNIFIEDREWARD_PYTHON": str(fake)}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), process.stderr.read().decode() if process.poll() is not None else "no ready file in 30 s"
        assert f"url=http://127.0.0.1:{port}/v1" in ready.read_text()
        args = json.loads((tmp_path / "args.json").read_text())
        for flag, value in [("--host", "127.0.0.1"), ("--port", str(port)), ("--model-path", str(model)),
                            ("--chat-template", "chatml-llava"), ("--served-model-name", "UnifiedReward-7b-v1.5")]:
            assert args[args.index(flag) + 1] == value
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 143
    finally:
        if process.poll() is None:
            process.kill()
    assert not ready.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_serve_script_without_the_model_says_how_to_get_it(tmp_path: Path) -> None:
    result = subprocess.run([str(SERVE), "--model-path", str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "huggingface-cli download CodeGoat24/UnifiedReward-7b-v1.5" in result.stderr
