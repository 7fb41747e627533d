"""``python -m guard.export --config RUN.yaml --run DIR --out DIR``: a run's LoRA as a peft adapter folder.

Writes the EMA weights of the run's last checkpoint (``--live`` for the trained weights) as
``adapter_config.json`` + ``adapter_model.safetensors``, which peft (``PeftModel.from_pretrained``)
and diffusers load onto the base transformer. Only backbones trained through a LoRA adapter
(sd35, flux) have one. The folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from guard.backbones import build_backbone
from guard.checkpoint import CheckpointError, latest_checkpoint, load_ema_weights, load_weights
from jobs.cli import init_torch, job_parser
from jobs.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "the run's config (TrainConfig YAML), or an experiment file with --setting")
    parser.add_argument("--setting", help="backbone/task of an experiment file")
    parser.add_argument("--run", required=True, type=Path, help="run folder whose last checkpoint is exported")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--live", action="store_true", help="the trained weights instead of their EMA")
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config, setting=args.setting)
        folder = latest_checkpoint(args.run / "checkpoints")
        if folder is None:
            raise FileNotFoundError(f"{args.run} has no checkpoint; train it first")
        backbone = build_backbone(config.backbone)
        if not hasattr(backbone, "save_adapter"):
            raise ConfigError(f"backbone {config.backbone['name']!r} is not trained through a LoRA adapter; "
                              "nothing to export (its checkpoints hold the weights)")
        params = [p for p in backbone.trainable_parameters() if p.requires_grad]
        (load_weights if args.live else load_ema_weights)(folder, params)
    except (ConfigError, FileNotFoundError, ValueError, CheckpointError) as err:
        parser.exit(2, f"error: {err}\n")
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    backbone.save_adapter(tmp)
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print(f"{'live' if args.live else 'EMA'} LoRA of {folder} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
