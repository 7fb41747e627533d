"""``python -m guard.backbones --config EXPERIMENT.yaml``: prepare the base model of an experiment.

For the nano backbone this pretrains the velocity net once and caches it at ``backbone.weights``;
a real backbone checks its local weights folder. Prints the backbone's latent shape.
"""

from __future__ import annotations

import json
from pathlib import Path

from guard.backbones import build_backbone
from guard.checkpoint import write_json_atomic
from jobs.cli import init_torch, job_parser
from jobs.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "experiment or TrainConfig YAML")
    parser.add_argument("--out", help="write a JSON marker (backbone options, latent shape) here when ready")
    args = parser.parse_args(argv)
    init_torch(args.threads)
    try:
        config = load_config(args.config)
        backbone = build_backbone(config.backbone)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    marker = {"backbone": config.backbone, "latent_shape": list(backbone.latent_shape)}
    print(json.dumps(marker))
    if args.out:
        write_json_atomic(Path(args.out), marker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
