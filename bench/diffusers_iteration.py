"""Time per RL iteration of the diffusers backbones (tiny SD3 / tiny FLUX), by phase, with peak memory.

Run: ``python bench/diffusers_iteration.py [--kinds sd3 flux] [--iterations 4]``. Each kind runs
in its own process (so peak memory is its own): build a random pipeline folder (or use ``--path``),
load it through the backbone's ``from_pretrained`` path, train a few GRPO iterations with the
paper's sampler for that backbone (SD3.5-M: Flow-GRPO 10 steps, 9 trained; FLUX: DanceGRPO 16
steps, 9 of 15 trained) on the saturation reward, and report the mean of train.jsonl's time_*
columns over the iterations after the first, plus peak RSS (and peak CUDA memory on a GPU).

``--size sd35m`` builds the SD3.5-M transformer and VAE at their real sizes with random weights
(about 2.2 B parameters; for a GPU machine): use it with ``--resolution 512 --batch 9``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

PHASES = ["time_sample", "time_reward", "time_update"]
BACKBONE = {"sd3": "sd35", "flux": "flux"}
SAMPLERS = {
    "sd3": dict(sampler="flowgrpo", num_steps=10, trained_steps=9, trainable_steps=9, noise_level=0.7),
    "flux": dict(sampler="dancegrpo", num_steps=16, trained_steps=9, trainable_steps=15, noise_level=0.3,
                 shared_group_noise=True, decode_x0_hat=True),
}


def run_kind(kind: str, args: dict[str, Any]) -> dict[str, float]:
    """Seconds per phase and peak memory of ``args['iterations']`` iterations of one backbone."""
    from eval.nano import saturation
    from eval.tasks import Task
    from guard.backbones import build_backbone
    from guard.backbones.tiny import build
    from guard.train import Trainer
    from jobs.config import TrainConfig

    torch.set_num_threads(args["threads"])
    torch.set_flush_denormal(True)
    with tempfile.TemporaryDirectory() as tmp:
        path = args["path"] or build(kind, Path(tmp) / kind, args["size"])
        options = {"name": BACKBONE[kind], "path": str(path), "resolution": args["resolution"],
                   "mixed_precision": args["mixed_precision"], "transformer_dtype": args["transformer_dtype"],
                   "gradient_checkpointing": args["gradient_checkpointing"],
                   "forward_batch": args["forward_batch"], **({"device": args["device"]} if args["device"] else {})}
        config = TrainConfig(iterations=args["iterations"], group_size=args["batch"], prompts_per_iteration=1,
                             minibatches=2, eval_every=10**6, checkpoint_every=10**6, step_grad_norm_every=0,
                             eval_per_prompt=1, drop_zero_advantage=False, backbone=options, **SAMPLERS[kind])
        backbone = build_backbone(options)
        task = Task(["a red apple on a table", "a blue car next to a tree"], saturation, {"saturation": saturation})
        Trainer(config, backbone, task, Path(tmp) / "run").run()
        log = pd.read_json(Path(tmp) / "run" / "train.jsonl", lines=True)
    row = log[PHASES].iloc[1:].mean().to_dict() | {"time_total": float(log[PHASES].iloc[1:].sum(axis=1).mean())}
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if torch.cuda.is_available():
        row["peak_cuda_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", choices=sorted(BACKBONE), default=sorted(BACKBONE))
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--size", choices=["tiny", "sd35m"], default="tiny")
    parser.add_argument("--path", help="use this pipeline folder (e.g. real weights) instead of building one")
    parser.add_argument("--resolution", type=int, default=128, help="pixels; the latent is resolution / 8")
    parser.add_argument("--batch", type=int, default=8, help="samples per iteration (one prompt, one group)")
    parser.add_argument("--forward-batch", type=int, default=8, help="rows per transformer call")
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    parser.add_argument("--transformer-dtype", choices=["fp32", "fp16", "bf16"], default="fp32",
                        help="storage dtype of the frozen base transformer (LoRA stays fp32)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--device", help="torch device (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=1)
    args = vars(parser.parse_args())
    if args["size"] == "sd35m" and args["kinds"] != ["sd3"]:
        parser.error("--size sd35m exists for --kinds sd3 only")
    context = multiprocessing.get_context("spawn")
    rows = {}
    for kind in args["kinds"]:
        with context.Pool(1) as pool:
            rows[kind] = pool.apply(run_kind, (kind, args))
    print(pd.DataFrame(rows).T.round(4).to_string())
    print(json.dumps({"settings": {k: v for k, v in args.items() if k != "kinds"}, "seconds_and_gb": rows}))


if __name__ == "__main__":
    main()
