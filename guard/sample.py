"""``python -m guard.sample --config RUN.yaml [--run DIR] --out DIR``: the fixed-seed evaluation images.

With ``--run`` the images come from the run's last checkpoint (EMA weights); without it, from the
base model. The prompts are the task's final evaluation set (eval/tasks.py: GenEval's 553 prompts x 4
images for the GenEval task, the test list otherwise, or a fixed-seed subset of it), sampled
``eval_batch`` images at a time. Writes ``<out>/<index>.png`` and ``<out>/images.jsonl`` (file,
prompt) for the scorers; the folder is filled under a temporary name and renamed when complete,
and a killed job resumes after the last image it wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from guard.images import save_png
from tqdm import tqdm

from eval.tasks import build_task
from guard.backbones import build_backbone
from guard.checkpoint import CheckpointError, latest_checkpoint, load_ema_weights
from guard.rollout import evaluation_batches
from jobs.cli import init_torch, job_parser
from jobs.config import ConfigError, load_config


def open_partial(out: Path, source: dict[str, Any]) -> tuple[Path, int]:
    """``out.tmp`` and how many images it already holds: those of an interrupted attempt with the same
    ``source`` (config and checkpoint) are kept, anything else is discarded."""
    tmp = out.with_name(out.name + ".tmp")
    stamp, index = tmp / "source.json", tmp / "images.partial.jsonl"
    if stamp.is_file() and json.loads(stamp.read_text()) == source:
        text = index.read_text() if index.is_file() else ""
        lines = text[: text.rfind("\n") + 1]  # a line cut off by the kill is dropped (its image is redone)
        index.write_text(lines)
        return tmp, len(lines.splitlines())
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stamp.write_text(json.dumps(source))
    return tmp, 0


def write_batches(batches_from: Callable[[int], Iterable[tuple[list[str], torch.Tensor]]], out: Path,
                  source: dict[str, Any]) -> int:
    """PNG per image plus an index, batch by batch into ``out.tmp``, then renamed to ``out``; returns the count.

    ``batches_from(k)`` yields the set's images from image k on; a killed job resumes after the last
    image it indexed (an image's index line is written after its PNG).
    """
    tmp, count = open_partial(out, source)
    with (tmp / "images.partial.jsonl").open("a") as index:
        for prompts, images in batches_from(count):
            rows = [{"file": f"{count + i:05d}.png", "prompt": p} for i, p in enumerate(prompts)]
            for row, image in zip(rows, images, strict=True):
                save_png(image, tmp / row["file"])
            index.write("".join(json.dumps(r) + "\n" for r in rows))
            index.flush()
            count += len(rows)
    (tmp / "images.partial.jsonl").rename(tmp / "images.jsonl")
    (tmp / "source.json").unlink()
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return count


def write_images(images: torch.Tensor, prompts: list[str], out: Path) -> None:
    """One batch of images and their prompts as an image folder (see :func:`write_batches`)."""
    write_batches(lambda start: [(prompts[start:], images[start:])], out, {})


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
    except (ConfigError, FileNotFoundError, ValueError, CheckpointError) as err:
        parser.exit(2, f"error: {err}\n")
    per_prompt = task.final_per_prompt or config.eval_per_prompt

    def batches_from(start: int) -> Iterable[tuple[list[str], torch.Tensor]]:
        if start:
            print(f"resuming {args.out} at image {start}", flush=True)
        batches = evaluation_batches(backbone, task.final_set(), per_prompt, config.eval_steps, config.shift,
                                     config.eval_seed, config.eval_batch, slice(start, None))
        return tqdm(batches, desc=f"sampling {args.out}", unit="batch", mininterval=10)

    source = {"config": config.to_dict(), "checkpoint": str(folder) if args.run is not None else "base"}
    count = write_batches(batches_from, args.out, source)
    print(f"{count} images -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
