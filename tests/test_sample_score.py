"""Evaluation images and their scoring: PNG round trip, per-image table, resumable scoring, summary."""

import json

import pandas as pd
import pytest
import torch

from eval.nano import NanoGold, composition
from eval.score import load_images, score_folder
from eval.tasks import Task, nano_gold_metrics, nano_pair_distances
from eval.nano_world import prompt_ids, prompts, render
from guard.sample import write_images


@pytest.fixture(scope="module")
def task():
    torch.set_flush_denormal(True)
    gold = NanoGold.fit(n_per_prompt=300)
    return Task(prompts(), composition, nano_gold_metrics(gold), gold.score, unit_extras=nano_pair_distances,
                extras_need_images=True)


def _renders(n_per_prompt=3):
    names = [p for p in prompts() for _ in range(n_per_prompt)]
    return names, (render(prompt_ids(names), torch.Generator().manual_seed(0)) + 1) / 2


def test_png_round_trip_keeps_the_images_to_8_bits(tmp_path):
    names, images = _renders()
    write_images(images, names, tmp_path / "eval_images")
    index = pd.read_json(tmp_path / "eval_images" / "images.jsonl", lines=True)
    assert list(index.prompt) == names and not (tmp_path / "eval_images.tmp").exists()
    back = load_images(tmp_path / "eval_images", list(index.file))
    assert back.shape == images.shape and float((back - images).abs().max()) <= 0.5 / 255 + 1e-6


def test_scores_match_the_metrics_and_resume_skips_scored_images(task, tmp_path):
    names, images = _renders()
    write_images(images, names, tmp_path / "imgs")
    summary = score_folder(task, tmp_path / "imgs", tmp_path / "scores")
    table = pd.read_csv(tmp_path / "scores" / "scores.csv")
    assert set(table.metric) == {"proxy", "loglik", "correct"} and len(table) == 3 * len(names)
    quantised = load_images(tmp_path / "imgs", sorted(table.image.unique()))
    assert summary == json.loads((tmp_path / "scores" / "summary.jsonl").read_text())
    assert summary["proxy"] == pytest.approx(float(composition(quantised, names).mean()), abs=1e-6)
    assert summary == {"proxy": summary["proxy"], **task.gold(quantised, names)}
    units = pd.read_json(tmp_path / "scores" / "units.jsonl", lines=True)  # per image, in images.jsonl order
    assert list(units.image) == list(range(len(names))) and list(units.prompt) == names
    wide = table.pivot(index="image", columns="metric", values="score").loc[units.file]
    assert units.proxy.to_numpy() == pytest.approx(wide.proxy.to_numpy()) and units.loglik.mean() == pytest.approx(summary["loglik"])
    pairs = [sum(d) / (len(d) * (len(d) - 1)) for d in units.pair_distances]  # mean distance to the other images of the prompt
    assert sum(pairs) / len(set(names)) == pytest.approx(summary["diversity"], rel=1e-9)
    # keep the first 10 images' rows, as if the job had been killed; only the rest is scored again
    kept = table[table.image.isin(sorted(table.image.unique())[:10])]
    kept.to_csv(tmp_path / "scores" / "scores.csv", index=False)
    calls = []
    counting = Task(task.prompts, lambda im, p: calls.append(len(p)) or composition(im, p), task.gold_metrics, task.gold_set)
    assert score_folder(counting, tmp_path / "imgs", tmp_path / "scores") == pytest.approx(summary)
    assert calls == [len(names) - 10]
    assert len(pd.read_csv(tmp_path / "scores" / "scores.csv")) == 3 * len(names)


class Killed(Exception):
    pass


def test_a_killed_sampling_job_resumes_after_its_last_image(tmp_path):
    names, images = _renders()  # 27 images, in batches of 4

    def source(kill_after=None):
        calls = []

        def batches_from(start):
            calls.append(start)
            for i, b in enumerate(range(start, len(names), 4)):
                if kill_after is not None and i == kill_after:
                    raise Killed
                yield names[b : b + 4], images[b : b + 4]
        return batches_from, calls

    from guard.sample import write_batches

    straight, _ = source()
    write_batches(straight, tmp_path / "a", {"checkpoint": "ckpt-1"})
    killed, _ = source(kill_after=3)
    with pytest.raises(Killed):
        write_batches(killed, tmp_path / "b", {"checkpoint": "ckpt-1"})
    assert not (tmp_path / "b").exists() and len(list((tmp_path / "b.tmp").glob("*.png"))) == 12
    resumed, calls = source()
    assert write_batches(resumed, tmp_path / "b", {"checkpoint": "ckpt-1"}) == len(names)
    assert calls == [12] and not (tmp_path / "b.tmp").exists()
    assert (tmp_path / "a" / "images.jsonl").read_text() == (tmp_path / "b" / "images.jsonl").read_text()
    assert all((tmp_path / "a" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "b").glob("*.png"))
    # an interrupted attempt from another checkpoint is discarded, never mixed in
    with pytest.raises(Killed):
        write_batches(source(kill_after=2)[0], tmp_path / "c", {"checkpoint": "ckpt-1"})
    fresh, calls = source()
    write_batches(fresh, tmp_path / "c", {"checkpoint": "ckpt-2"})
    assert calls == [0]
