"""``python -m guard.sample --config RUN.yaml [--run DIR] --out DIR``: the fixed-seed evaluation images.

With ``--run`` the images come from the run's last checkpoint (EMA weights); without it, from the
base model. The prompts are the task's final evaluation set (eval/tasks.py: GenEval's 553 prompts x 4
images for the GenEval task, the test list otherwise, or a fixed-seed subset of it). Writes ``<out>/<index>.png`` and ``<out>/images.jsonl`` (file, prompt) for the scorers.
The folder is filled under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from torchvision.utils import save_image

from eval.tasks import build_task
from guard.backbones import build_backbone
from guard.checkpoint import latest_checkpoint, load_ema_weights
from guard.cli import init_torch, job_parser
from guard.config import ConfigError, load_config
from guard.rollout import evaluation_images


def write_images(images: torch.Tensor, prompts: list[str], out: Path) -> None:
    """PNG per image plus an index, written to ``out.tmp`` then renamed to ``out``."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows = []
    for i, (image, prompt) in enumerate(zip(images, prompts, strict=True)):
        save_image(image, tmp / f"{i:05d}.png")
        rows.append({"file": f"{i:05d}.png", "prompt": prompt})
    (tmp / "images.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "the run's config (TrainConfig YAML)")
    parser.add_argument("--run", type=Path, help="run folder whose last checkpoint is sampled (default: the base model)")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config)
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
    names, images = evaluation_images(backbone, task.final_set(), per_prompt, config.eval_steps, config.shift,
                                      config.eval_seed)
    write_images(images, names, args.out)
    print(f"{len(names)} images -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
