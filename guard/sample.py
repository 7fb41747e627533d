"""``python -m guard.sample --config RUN.yaml [--run DIR] --out DIR``: the fixed-seed evaluation images.

With ``--run`` the images come from the run's last checkpoint (EMA weights); without it, from the
base model. The prompts are the task's final evaluation set (eval/tasks.py: GenEval's 553 prompts x 4
images for the GenEval task, the test list otherwise, or a fixed-seed subset of it), sampled
``eval_batch`` images at a time. Writes ``<out>/<index>.png`` and ``<out>/images.jsonl`` (file,
prompt) for the scorers; the folder is filled under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterable

import torch
from torchvision.utils import save_image
from tqdm import tqdm

from eval.tasks import build_task
from guard.backbones import build_backbone
from guard.checkpoint import latest_checkpoint, load_ema_weights
from guard.cli import init_torch, job_parser
from guard.config import ConfigError, load_config
from guard.rollout import evaluation_batches


def write_batches(batches: Iterable[tuple[list[str], torch.Tensor]], out: Path) -> int:
    """PNG per image plus an index, written batch by batch to ``out.tmp``, then renamed to ``out``; returns the count."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows = []
    for prompts, images in batches:
        for prompt, image in zip(prompts, images, strict=True):
            rows.append({"file": f"{len(rows):05d}.png", "prompt": prompt})
            save_image(image, tmp / rows[-1]["file"])
    (tmp / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return len(rows)


def write_images(images: torch.Tensor, prompts: list[str], out: Path) -> None:
    """One batch of images and their prompts as an image folder (see :func:`write_batches`)."""
    write_batches([(prompts, images)], out)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "the run's config (TrainConfig YAML)")
    parser.add_argument("--run", type=Path, help="run folder whose last checkpoint is sampled (default: the base model)")
    parser.add_argument("--setting", help="backbone/task of an experiment file (its first variant's task and metrics)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config, setting=args.setting)
        backbone = build_backbone(config.backbone)
        if args.run is not None:
            folder = latest_checkpoint(args.run / "checkpoints")
            if folder is None:
                raise FileNotFoundError(f"{args.run} has no checkpoint; train it first")
            load_ema_weights(folder, [p for p in backbone.trainable_parameters() if p.requires_grad])
        task = build_task(config.backbone["name"], config.task, config.metrics)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    per_prompt = task.final_per_prompt or config.eval_per_prompt
    batches = evaluation_batches(backbone, task.final_set(), per_prompt, config.eval_steps, config.shift,
                                 config.eval_seed, config.eval_batch)
    count = write_batches(tqdm(batches, desc=f"sampling {args.out}", unit="batch", disable=None), args.out)
    print(f"{count} images -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
