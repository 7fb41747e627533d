"""``python -m eval.score --config RUN.yaml --images DIR --out DIR``: score an image folder once per metric.

Reads ``images.jsonl`` (file, prompt) of a folder written by ``python -m guard.sample``; writes
``scores.csv`` (image, prompt, metric, score: the proxy and every per-image gold metric) and
``summary.jsonl`` (one row: the proxy mean and the set-level gold metrics). Resumable: images that
already have every metric in ``scores.csv`` are not scored again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from eval.tasks import Task, build_task
from guard.cli import init_torch, job_parser
from guard.config import ConfigError, load_config


def load_images(folder: Path, files: list[str]) -> torch.Tensor:
    """PNG files -> (B, 3, H, W) in [0, 1]."""
    arrays = [np.asarray(Image.open(folder / f).convert("RGB"), dtype=np.float32) / 255 for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def per_image_scores(task: Task, images: torch.Tensor, prompts: list[str]) -> dict[str, torch.Tensor]:
    """The proxy and each per-image gold metric."""
    return {"proxy": task.reward(images, prompts), **task.gold_per_image(images, prompts)}


def score_folder(task: Task, folder: Path, out: Path, batch: int = 256) -> dict[str, float]:
    """Score every image not yet in ``out/scores.csv``; write the set summary; return it."""
    index = pd.read_json(folder / "images.jsonl", lines=True)
    scores_path = out / "scores.csv"
    done = pd.read_csv(scores_path) if scores_path.is_file() else pd.DataFrame(columns=["image", "prompt", "metric", "score"])
    metrics = set(done.metric)
    complete = {img for img, g in done.groupby("image") if set(g.metric) >= metrics} if metrics else set()
    todo = index[~index.file.isin(complete)]
    out.mkdir(parents=True, exist_ok=True)
    for start in tqdm(range(0, len(todo), batch), desc=f"scoring {folder}", disable=None):
        part = todo.iloc[start : start + batch]
        scores = per_image_scores(task, load_images(folder, list(part.file)), list(part.prompt))
        rows = pd.DataFrame([{"image": f, "prompt": p, "metric": m, "score": float(v[i])}
                             for m, v in scores.items() for i, (f, p) in enumerate(zip(part.file, part.prompt))])
        rows.to_csv(scores_path, mode="a", header=not scores_path.is_file(), index=False)
    images = load_images(folder, list(index.file))
    table = pd.read_csv(scores_path)
    summary = {"proxy": float(table[table.metric == "proxy"].score.mean()), **task.gold(images, list(index.prompt))}
    (out / "summary.jsonl").write_text(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "the run's config (its task section names the metrics)")
    parser.add_argument("--images", required=True, type=Path, help="folder written by python -m guard.sample")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config)
        task = build_task(config.backbone["name"], config.task)
        if not (args.images / "images.jsonl").is_file():
            raise FileNotFoundError(f"{args.images} has no images.jsonl; run python -m guard.sample first")
    except (ConfigError, FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    print(json.dumps(score_folder(task, args.images, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
