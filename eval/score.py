"""``python -m eval.score --config RUN.yaml --images DIR --out DIR``: score an image folder once per metric.

Reads ``images.jsonl`` (file, prompt) of a folder written by ``python -m guard.sample``; writes
``scores.csv`` (image, prompt, metric, score: the proxy and every per-image gold metric) and
``summary.jsonl`` (one row: the proxy mean and the set-level gold metrics) and ``units.jsonl`` (one row per
image: its index in images.jsonl, prompt, file, scores and what a set-level metric needs to be recomputed on a
resample of the images, for the claims' intervals). One pass per metric,
each with its progress bar, so one model is in memory at a time. Resumable: an image that already
has a metric's row in ``scores.csv`` is not scored for that metric again. The metric servers the
config names (``metrics.<name>.serve``) are started for the job and stopped after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from eval.metrics import check_weights
from eval.services import ServiceError, running_services
from eval.tasks import Reward, Task, build_task, task_metrics
from jobs.cli import init_torch, job_parser
from jobs.config import ConfigError, load_config

COLUMNS = ["image", "prompt", "metric", "score"]


def load_images(folder: Path, files: list[str]) -> torch.Tensor:
    """PNG files -> (B, 3, H, W) in [0, 1]."""
    arrays = [np.asarray(Image.open(folder / f).convert("RGB"), dtype=np.float32) / 255 for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def score_metric(name: str, metric: Reward, folder: Path, todo: pd.DataFrame, scores_path: Path, batch: int) -> None:
    """Score the images of ``todo`` with one metric, appending each batch's rows to ``scores_path``."""
    # always shown (also in a job's log file), at most every 10 s where stderr is not a terminal
    for start in tqdm(range(0, len(todo), batch), desc=f"{name} {folder}", unit="batch",
                      mininterval=0.1 if sys.stderr.isatty() else 10):
        part = todo.iloc[start : start + batch]
        values = metric(load_images(folder, list(part.file)), list(part.prompt))
        rows = pd.DataFrame({"image": part.file.values, "prompt": part.prompt.values, "metric": name,
                             "score": values.double().numpy()})
        rows[COLUMNS].to_csv(scores_path, mode="a", header=not scores_path.is_file(), index=False)


def score_folder(task: Task, folder: Path, out: Path, batch: int = 64) -> dict[str, float]:
    """Score every (image, metric) not yet in ``out/scores.csv``; write the set summary; return it."""
    index = pd.read_json(folder / "images.jsonl", lines=True)
    scores_path = out / "scores.csv"
    out.mkdir(parents=True, exist_ok=True)
    for name, metric in task.per_image_metrics().items():
        done = pd.read_csv(scores_path) if scores_path.is_file() else pd.DataFrame(columns=COLUMNS)
        scored = set(done.image[done.metric == name])
        score_metric(name, metric, folder, index[~index.file.isin(scored)], scores_path, batch)
    table = pd.read_csv(scores_path)
    means = table.groupby("metric").score.mean()  # pandas skips NaN (an unparsable judge answer)
    need_images = task.gold_set is not None or (task.unit_extras is not None and task.extras_need_images)
    images = load_images(folder, list(index.file)) if need_images else None
    if task.gold_set is not None:
        gold = task.gold_set(images, list(index.prompt))
    else:
        gold = {name: float(means[name]) for name in task.gold_metrics}
    per_image = table.pivot_table(index="image", columns="metric", values="score", dropna=False).reindex(index.file)
    proxy = per_image["proxy"]
    summary = {**task.summarise_proxy(list(index.prompt), torch.tensor(proxy.to_numpy())), **gold}
    scores = {name: torch.tensor(per_image[name].to_numpy()) for name in task.per_image_metrics()}
    units = task.units(list(index.prompt), scores, images)
    (out / "units.jsonl").write_text("".join(json.dumps({**u, "file": f}) + "\n" for u, f in zip(units, index.file)))
    (out / "summary.jsonl").write_text(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "the run's config (its task section names the metrics, its metrics section the weights)")
    parser.add_argument("--images", required=True, type=Path, help="folder written by python -m guard.sample")
    parser.add_argument("--setting", help="backbone/task of an experiment file (its first variant's task and metrics)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--batch", type=int, default=64, help="images per metric call")
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config, setting=args.setting)
        if not (args.images / "images.jsonl").is_file():
            raise FileNotFoundError(f"{args.images} has no images.jsonl; run python -m guard.sample first")
        names = task_metrics(config.task)
        check_weights(names, config.metrics)
        with running_services(config.metrics, names, args.out) as metrics:  # on ports chosen for this job
            task = build_task(config.backbone["name"], config.task, metrics)
            summary = score_folder(task, args.images, args.out, args.batch)
    except (ConfigError, FileNotFoundError, ValueError, ServiceError) as err:
        parser.exit(2, f"error: {err}\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
