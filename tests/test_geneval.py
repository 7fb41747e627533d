"""GenEval metric: the rules on constructed detections, the colour classifier, the service and client.

mmdet cannot be installed here (mmcv needs a 15-minute source build and its own environment), so
Mask2Former never runs in these tests: the service's HTTP layer is exercised with a pluggable
backend that returns constructed detections, and the colour classifier runs its real code path on
a tiny open_clip model with random weights (it cannot classify colours meaningfully; the tests
check shapes, templates, loading and determinism). Expected values are computed by hand from
GenEval's ``evaluate_images.py`` and Flow-GRPO's reward server ``gen_eval.py::evaluate_reward``.
"""

from __future__ import annotations

import ast
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eval.geneval import build
from eval.geneval.client import DetectorClient, DetectorError, DetectorUnavailable
from eval.geneval.colors import BACKGROUND, TEMPLATES, ColorClassifier, color_prompts, load_weights, masked_crop
from eval.geneval.masks import decode_mask, encode_mask
from eval.geneval.metric import accuracy_table, load_records
from eval.geneval.rules import (COLORS, TAGS, Detection, accuracy_by_tag, evaluate, evaluate_partial, iou,
                                keep_objects, relative_position)
from eval.geneval.service import DetectorServer

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")  # OpenAI's CLIP file is TorchScript

ROOT = Path(__file__).resolve().parents[1]
TINY_CLIP = "grpo-guard-tiny-clip"
SIZE = 32


def det(box, score=0.95, mask=None) -> Detection:
    """A detection with a float box."""
    return Detection(tuple(float(v) for v in box), score, mask)


def no_colors(objects, name):
    """Colour callback for clauses without colour: must not be asked."""
    raise AssertionError("colour classifier called for a clause without colour")


def fixed_colors(*colors):
    """Colour callback answering ``colors`` in order for the objects it gets."""
    return lambda objects, name: list(colors[: len(objects)])


# ---------------------------------------------------------------------------- detections kept


def test_threshold_is_strict_and_counting_uses_0_9():
    found = {"dog": [det((0, 0, 5, 5), 0.3), det((0, 0, 5, 5), 0.31), det((0, 0, 5, 5), 0.9), det((0, 0, 5, 5), 0.95)]}
    assert [d.score for d in keep_objects(found, "single_object")["dog"]] == [0.95, 0.9, 0.31]
    assert [d.score for d in keep_objects(found, "counting")["dog"]] == [0.95]
    assert keep_objects({"cat": [det((0, 0, 1, 1), 0.2)]}, "two_object") == {}


def test_at_most_16_objects_per_class_most_confident_first():
    found = {"apple": [det((i, 0, i + 1, 1), 0.4 + 0.02 * i) for i in range(20)]}
    kept = keep_objects(found, "single_object")["apple"]
    assert len(kept) == 16
    assert [d.box[0] for d in kept] == list(range(19, 3, -1))


def test_overlap_suppression_off_by_default_and_greedy_when_set():
    found = {"cup": [det((0, 0, 9, 9), 0.9), det((0, 0, 9, 8), 0.8), det((20, 20, 29, 29), 0.7)]}
    assert len(keep_objects(found, "single_object")["cup"]) == 3
    assert iou((0, 0, 9, 9), (0, 0, 9, 8)) == pytest.approx(90 / 100)
    kept = keep_objects(found, "single_object", nms_threshold=0.5)["cup"]
    assert [d.score for d in kept] == [0.9, 0.7]


# ---------------------------------------------------------------------------- the six tags


def test_single_object():
    meta = {"tag": "single_object", "include": [{"class": "bench", "count": 1}]}
    assert evaluate({"bench": [det((0, 0, 5, 5))]}, meta, no_colors).correct
    verdict = evaluate({}, meta, no_colors)
    assert not verdict.correct and verdict.reason == "expected bench>=1, found 0"


def test_two_object_needs_both():
    meta = {"tag": "two_object", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}]}
    assert evaluate({"cat": [det((0, 0, 5, 5))], "dog": [det((9, 9, 15, 15))]}, meta, no_colors).correct
    verdict = evaluate({"cat": [det((0, 0, 5, 5))]}, meta, no_colors)
    assert not verdict.correct and verdict.reason == "expected dog>=1, found 0"


def test_counting_with_exclude_clause():
    meta = {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}]}
    clocks = [det((10 * i, 0, 10 * i + 5, 5), 0.95) for i in range(3)]
    assert evaluate({"clock": clocks[:2]}, meta, no_colors).correct
    verdict = evaluate({"clock": clocks}, meta, no_colors)
    assert not verdict.correct and verdict.reason == "expected clock<3, found 3"
    assert not evaluate({"clock": clocks[:1]}, meta, no_colors).correct


def test_counting_threshold_decides_the_count():
    meta = {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}]}
    raw = {"clock": [det((0, 0, 5, 5), 0.95), det((10, 0, 15, 5), 0.92), det((20, 0, 25, 5), 0.5)]}
    assert evaluate(keep_objects(raw, "counting"), meta, no_colors).correct
    assert not evaluate(keep_objects(raw, "two_object"), meta, no_colors).correct  # 0.3 keeps three clocks


def test_colors_checks_the_most_confident_count_objects():
    meta = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}]}
    cars = [det((0, 0, 5, 5), 0.9), det((9, 9, 15, 15), 0.8)]
    asked = []

    def colors(objects, name):
        asked.append((list(objects), name))
        return ["red"] * len(objects)

    assert evaluate({"car": cars}, meta, colors).correct
    assert asked == [([cars[0]], "car")]
    verdict = evaluate({"car": cars}, meta, fixed_colors("blue"))
    assert not verdict.correct and verdict.reason == "expected red car>=1, found 0 red; and 1 blue"


def test_color_attr_both_colours_must_hold():
    meta = {"tag": "color_attr", "include": [{"class": "apple", "count": 1, "color": "black"},
                                             {"class": "vase", "count": 1, "color": "pink"}]}
    found = {"apple": [det((0, 0, 5, 5))], "vase": [det((9, 9, 15, 15))]}
    answers = {"apple": "black", "vase": "pink"}
    assert evaluate(found, meta, lambda objects, name: [answers[name]]).correct
    answers["vase"] = "purple"
    verdict = evaluate(found, meta, lambda objects, name: [answers[name]])
    assert not verdict.correct and verdict.reason.startswith("expected pink vase>=1, found 0 pink")


POSITION = {"tag": "position", "include": [{"class": "cat", "count": 1},
                                           {"class": "dog", "count": 1, "position": ["right of", 0]}]}


def test_position_tag():
    cat = det((0, 0, 10, 10))
    assert evaluate({"cat": [cat], "dog": [det((20, 0, 30, 10))]}, POSITION, no_colors).correct
    verdict = evaluate({"cat": [cat], "dog": [det((-20, 0, -10, 10))]}, POSITION, no_colors)
    assert verdict.reason == "expected dog right of target, found left of target"
    verdict = evaluate({"dog": [det((20, 0, 30, 10))]}, POSITION, no_colors)
    assert verdict.reason == "expected cat>=1, found 0\nno target for dog to be right of"


def test_relative_position_offset_rule():
    """Boxes 10 wide: the offset shrinks by 0.1 x (10 + 10) = 2; a relation needs shrunk / raw > 0.5."""
    b = (0.0, 0.0, 10.0, 10.0)
    shifted = lambda dx, dy=0.0: (dx, dy, 10.0 + dx, 10.0 + dy)  # noqa: E731
    assert relative_position(shifted(2.0), b) == set()            # inside the 0.1 band
    assert relative_position(shifted(2.0005), b) == set()         # shrunk offset below 1e-3
    assert relative_position(shifted(4.0), b) == set()            # (4 - 2) / 4 = 0.5, not above it
    assert relative_position(shifted(4.02), b) == {"right of"}    # just past it
    assert relative_position(shifted(-4.02), b) == {"left of"}
    assert relative_position(shifted(0.0, 4.02), b) == {"below"}  # image y grows downwards
    assert relative_position(shifted(0.0, -4.02), b) == {"above"}
    assert relative_position(shifted(10.0, 10.0), b) == {"right of", "below"}  # 8 / 14.14 = 0.57
    assert relative_position(shifted(3.0), b, threshold=0.0) == {"right of"}


# ---------------------------------------------------------------------------- partial credit


def test_partial_credit_hand_computed():
    counting = {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}]}
    three = [det((10 * i, 0, 10 * i + 5, 5)) for i in range(3)]
    assert evaluate_partial({"clock": three}, counting, no_colors).score == pytest.approx(0.5)    # 1 - 1/2
    assert evaluate_partial({"clock": three[:2]}, counting, no_colors).score == 1.0               # exclude ignored
    single = {"tag": "single_object", "include": [{"class": "bench", "count": 1}]}
    assert evaluate_partial({"bench": three}, single, no_colors).score == pytest.approx(-1.0)     # 1 - 2/1
    colors = {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}]}
    assert evaluate_partial({"car": three[:1]}, colors, fixed_colors("blue")).score == 0.5        # [1, 0]
    assert evaluate_partial({}, colors, no_colors).score == 0.0                                   # [0, 0]
    attr = {"tag": "color_attr", "include": [{"class": "car", "count": 1, "color": "red"},
                                             {"class": "dog", "count": 1, "color": "blue"}]}
    found = {"car": three[:1], "dog": three[1:]}
    verdict = evaluate_partial(found, attr, fixed_colors("red"))                                  # [1, 1, 0, 0]
    assert verdict.score == 0.5 and not verdict.strict_correct


def test_partial_credit_position():
    cat, right, left = det((0, 0, 10, 10)), det((20, 0, 30, 10)), det((-20, 0, -10, 10))
    ok = evaluate_partial({"cat": [cat], "dog": [right]}, POSITION, no_colors)
    assert ok.score == 1.0 and ok.strict_correct                                                  # [1, 1, 1]
    wrong = evaluate_partial({"cat": [cat], "dog": [left]}, POSITION, no_colors)
    assert wrong.score == pytest.approx(3 / 4) and not wrong.strict_correct                       # [1, 1, 0, 1]
    no_target = evaluate_partial({"dog": [right]}, POSITION, no_colors)
    assert no_target.score == pytest.approx(1 / 3)                                                # [0, 1, 0]
    two_cats = {"cat": [cat, det((0, 20, 10, 30), 0.9)], "dog": [right]}
    assert evaluate_partial(two_cats, POSITION, no_colors).score == pytest.approx(1 / 3)         # [1 - 1/1, 1, 0]
    assert evaluate(two_cats, POSITION, no_colors).correct        # strict: at least one cat, checks the first


# ---------------------------------------------------------------------------- accuracy


def test_accuracy_is_mean_over_tags_of_per_tag_means():
    results = {"single_object": [1, 1], "two_object": [1, 0], "counting": [0], "colors": [1, 1, 1, 0],
               "position": [0, 0], "color_attr": [1]}
    tags = [t for t, hits in results.items() for _ in hits]
    correct = [h for hits in results.values() for h in hits]
    table = accuracy_by_tag(tags, correct)
    assert table == pytest.approx({"single_object": 1.0, "two_object": 0.5, "counting": 0.0, "colors": 0.75,
                                   "position": 0.0, "color_attr": 1.0, "overall": 3.25 / 6})
    assert list(table) == [*TAGS, "overall"]
    with pytest.raises(ValueError, match="unknown GenEval tag"):
        accuracy_by_tag(["shape"], [True])


def test_accuracy_table_from_metadata(tmp_path):
    path = write_metadata(tmp_path)
    prompts = [m["prompt"] for m in SCENARIOS_META] * 2
    table = accuracy_table(prompts, [1, 0, 1, 1, 0, 0, 0, 1, 1, 0], path)
    assert table["single_object"] == 0.5 and table["counting"] == 0.0 and table["position"] == 1.0
    with pytest.raises(ValueError, match="mode: accuracy"):
        accuracy_table(prompts[:1], [0.5], path)


@pytest.mark.skipif(not Path("/work/shared/datasets/geneval/evaluation_metadata.jsonl").is_file(), reason="no data")
def test_published_metadata_files_agree():
    shared = Path("/work/shared/datasets")
    records = load_records([shared / "geneval/evaluation_metadata.jsonl", shared / "flow_grpo/geneval/test_metadata.jsonl"])
    assert len(records) == 553
    assert {r["tag"] for r in records.values()} == set(TAGS)


# ---------------------------------------------------------------------------- colours


def test_masked_crop_applies_mask_then_crops_with_rounded_box():
    pixels = np.arange(SIZE * SIZE * 3, dtype=np.uint8).reshape(SIZE, SIZE, 3)
    image = Image.fromarray(pixels)
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[4:8, 4:8] = True
    crop = np.asarray(masked_crop(image, Detection(np.array([2.4, 2.6, 10.5, 9.49, 0.9]), 0.9, mask)))
    assert crop.shape == (6, 8, 3)                                   # box (2, 3, 10, 9) after rounding
    grey = np.array(Image.new("RGB", (1, 1), BACKGROUND))[0, 0]
    assert grey.tolist() == [153, 153, 153]
    inside = mask[3:9, 2:10]
    assert (crop[inside] == pixels[3:9, 2:10][inside]).all()
    assert (crop[~inside] == grey).all()
    unmasked = np.asarray(masked_crop(image, det((2, 3, 10, 9))))
    assert (unmasked == pixels[3:9, 2:10]).all()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A registered tiny open_clip config and a checkpoint of its random weights."""
    import open_clip

    folder = tmp_path_factory.mktemp("tiny_clip")
    config = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{TINY_CLIP}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP, pretrained=None, force_quick_gelu=True)
    torch.save(model.state_dict(), folder / "tiny.pt")
    torch.jit.script(model).save(str(folder / "tiny_jit.pt"))  # OpenAI's ViT-L-14.pt is TorchScript
    return folder


def test_color_templates():
    assert TEMPLATES == ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")
    prompts = color_prompts("fire hydrant")
    assert len(prompts) == 10 and COLORS[0] == "red"
    assert prompts[0] == ["a photo of a red fire hydrant", "a photo of a red-colored fire hydrant", "a photo of a red object"]


def test_color_classifier_real_path_on_tiny_model(tiny_clip):
    classifier = ColorClassifier.load(tiny_clip / "tiny.pt", TINY_CLIP, "cpu")
    weights = classifier.text_weights("car")
    assert weights.shape == (16, 10)
    assert torch.allclose(weights.norm(dim=0), torch.ones(10), atol=1e-5)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8))
    objects = [det((0, 0, 16, 16), mask=np.ones((SIZE, SIZE), bool)), det((8, 8, 30, 30))]
    logits = classifier.logits(image, objects, "car")
    assert logits.shape == (2, 10)
    colors = classifier(image, objects, "car")
    assert colors == [COLORS[i] for i in logits.argmax(1).tolist()] and set(colors) <= set(COLORS)
    again = ColorClassifier.load(tiny_clip / "tiny.pt", TINY_CLIP, "cpu")
    assert torch.equal(again.logits(image, objects, "car"), logits)
    from_jit = ColorClassifier.load(tiny_clip / "tiny_jit.pt", TINY_CLIP, "cpu")
    assert torch.allclose(from_jit.logits(image, objects, "car"), logits, atol=1e-4)


def test_torchscript_weights_must_match_the_model(tiny_clip):
    with pytest.raises(RuntimeError, match="state_dict"):
        load_weights(torch.nn.Linear(2, 2), tiny_clip / "tiny_jit.pt")


# ---------------------------------------------------------------------------- service and client


def test_mask_run_lengths_round_trip():
    rng = np.random.default_rng(1)
    for mask in (rng.random((7, 5)) > 0.5, np.ones((3, 4), bool), np.zeros((2, 2), bool)):
        assert (decode_mask(encode_mask(mask)) == mask).all()
    assert encode_mask(np.array([[True, True], [False, True]]))["counts"] == [0, 2, 1, 1]


def test_service_modules_import_only_what_the_detector_env_has():
    """service.py: standard library at module level; masks.py: standard library and numpy."""
    stdlib = set(sys.stdlib_module_names)
    for name, allowed in (("service", stdlib), ("masks", stdlib | {"numpy"})):
        tree = ast.parse((ROOT / f"eval/geneval/{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        modules = {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in top if isinstance(n, ast.ImportFrom)}
        assert {m.split(".")[0] for m in modules} - {"__future__"} <= allowed, name


SCENARIOS_META = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}],
     "prompt": "a photo of two clocks"},
    {"tag": "two_object", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}],
     "prompt": "a photo of a cat and a dog"},
    {"tag": "position", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
     "prompt": "a photo of a dog right of a cat"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
]


def rect_mask(box) -> np.ndarray:
    """A (SIZE, SIZE) mask filling ``box``."""
    mask = np.zeros((SIZE, SIZE), bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    return mask


def found(name, box, score=0.95) -> dict:
    """One service detection."""
    return {"class": name, "box": list(map(float, box)), "score": score, "mask": encode_mask(rect_mask(box))}


SCENARIOS = [
    [found("bench", (2, 2, 20, 20))],
    [found("clock", (0, 0, 8, 8)), found("clock", (10, 0, 18, 8)), found("clock", (20, 0, 28, 8), 0.91)],
    [found("cat", (0, 0, 10, 10), 0.8), found("dog", (12, 12, 30, 30), 0.25)],
    [found("cat", (0, 0, 10, 10)), found("dog", (20, 0, 30, 10))],
    [found("car", (4, 4, 28, 28), 0.9)],
]
"""Per scenario (chosen by the image's first red value): the detections the fake backend returns."""


def fake_backend(config: str, checkpoint: str, device: str):
    """A detector backend returning SCENARIOS[first red value of the image]; logs its calls."""
    calls = []

    def detect(pngs, min_score):
        calls.append((len(pngs), min_score))
        scenes = [SCENARIOS[np.asarray(Image.open(io.BytesIO(png)))[0, 0, 0]] for png in pngs]
        return [[d for d in scene if d["score"] >= min_score] for scene in scenes]

    detect.calls = calls
    return detect


def failing_backend(pngs, min_score):
    raise RuntimeError("CUDA out of memory")


@pytest.fixture()
def server():
    """The detector service with the fake backend on a free loopback port, in a thread."""
    srv = DetectorServer(("127.0.0.1", 0), fake_backend("", "", "cpu"), "fake")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def scenario_images(indices) -> torch.Tensor:
    """(B, 3, SIZE, SIZE) images in [0, 1] whose first red value is the scenario index."""
    images = torch.rand(len(indices), 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    for row, index in enumerate(indices):
        images[row, 0, 0, 0] = index / 255
    return images


def test_service_and_client_over_loopback(server):
    client = DetectorClient(server.url, timeout=30, batch_size=2)
    assert client.health() == {"status": "ok", "backend": "fake"}
    pils = [Image.fromarray(np.full((SIZE, SIZE, 3), i, np.uint8)) for i in (1, 2, 0)]
    answer = client.detect(pils, min_score=0.3)
    assert server.backend.calls == [(2, 0.3), (1, 0.3)]
    assert [d.score for d in answer[0]["clock"]] == [0.95, 0.95, 0.91]
    assert set(answer[1]) == {"cat"}                       # the 0.25 dog is below min_score
    bench = answer[2]["bench"][0]
    assert bench.box == (2.0, 2.0, 20.0, 20.0) and (bench.mask == rect_mask((2, 2, 20, 20))).all()


def test_service_rejects_bad_requests_and_reports_backend_failures(server):
    request = urllib.request.Request(server.url + "/detect", data=b'{"images": ["not base64!"]}', method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and "base64 PNG" in json.loads(err.value.read())["error"]
    server.backend = failing_backend
    with pytest.raises(DetectorError, match="500: detector backend failed: RuntimeError\\('CUDA out of memory'\\)"):
        DetectorClient(server.url).detect([Image.new("RGB", (4, 4))])


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_service_names_url_and_how_to_start_it():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DetectorUnavailable) as err:
        DetectorClient(url, timeout=5).detect([Image.new("RGB", (4, 4))])
    assert url in str(err.value) and "python -m eval.geneval.service" in str(err.value)
    assert "geneval_detector.yml" in str(err.value)


def test_service_command_line_writes_ready_file(tmp_path):
    ready = tmp_path / "ready.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    command = [sys.executable, "-m", "eval.geneval.service", "--config", "cfg.py", "--checkpoint", "ckpt.pth",
               "--port", "0", "--ready-file", str(ready), "--backend", "test_geneval:fake_backend"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.is_file():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "service did not write its ready file within 60 s"
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        assert info["pid"] == process.pid and info["url"].startswith("http://127.0.0.1:")
        assert DetectorClient(info["url"]).health()["backend"] == "test_geneval:fake_backend"
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


# ---------------------------------------------------------------------------- the metric end to end


def write_metadata(folder: Path) -> Path:
    """The scenarios' GenEval records as a metadata JSONL file."""
    path = folder / "metadata.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in SCENARIOS_META))
    return path


def test_metric_end_to_end_over_loopback(server, tiny_clip, tmp_path):
    options = {"url": server.url, "metadata": [str(write_metadata(tmp_path))], "clip_checkpoint": str(tiny_clip / "tiny.pt"),
               "clip_model": TINY_CLIP, "device": "cpu"}
    images = scenario_images(range(5))
    prompts = [m["prompt"] for m in SCENARIOS_META]
    accuracy = build({**options, "mode": "accuracy"})
    car = Detection((4.0, 4.0, 28.0, 28.0), 0.9, rect_mask((4, 4, 28, 28)))
    pil = Image.fromarray((images[4] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    red = accuracy.colors(pil, [car], "car") == ["red"]
    scores = accuracy(images, prompts)
    assert scores.dtype == torch.float32
    assert scores.tolist() == [1.0, 0.0, 0.0, 1.0, float(red)]   # counting: the 0.91 clock is a third one
    partial = build({**options, "mode": "partial"})(images, prompts)
    assert partial.tolist() == pytest.approx([1.0, 0.5, 0.5, 1.0, 1.0 if red else 0.5])
    with pytest.raises(KeyError, match="metrics.geneval.metadata"):
        accuracy(images[:1], ["a photo of a unicorn"])


def test_metric_options_are_checked(tiny_clip, tmp_path):
    base = {"clip_checkpoint": str(tiny_clip / "tiny.pt"), "clip_model": TINY_CLIP, "device": "cpu"}
    with pytest.raises(ValueError, match="metrics.geneval.metadata"):
        build(base)
    with pytest.raises(ValueError, match="mode must be one of"):
        build({**base, "metadata": str(write_metadata(tmp_path)), "mode": "strict"})


def test_metric_reports_unreachable_service(tiny_clip, tmp_path):
    metric = build({"url": f"http://127.0.0.1:{free_port()}", "metadata": str(write_metadata(tmp_path)),
                    "clip_checkpoint": str(tiny_clip / "tiny.pt"), "clip_model": TINY_CLIP, "device": "cpu"})
    with pytest.raises(DetectorUnavailable, match="unreachable"):
        metric(scenario_images([0]), [SCENARIOS_META[0]["prompt"]])
