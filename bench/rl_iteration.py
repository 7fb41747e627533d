"""Time per RL iteration on the nano default, split into sampling / reward / update, per variant.

Run: ``python bench/rl_iteration.py [--iterations 20] [--variants flowgrpo grpo_guard]``. Trains each
variant for a few iterations in this one process (same machine state, same rollouts' sizes) and
prints a JSON table of mean seconds per phase and GRPO-Guard's overhead over FlowGRPO as a ratio.
Per-step gradient logging is off so the update time is the training cost alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import torch

from eval.tasks import build_task
from guard.backbones import build_backbone
from guard.train import Trainer
from jobs.config import load_config

PHASES = ["time_sample", "time_reward", "time_update"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="workflow/config/nano.yaml")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--variants", nargs="+", default=["flowgrpo", "grpo_guard"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rows = {}
    for variant in args.variants:
        config = load_config(args.config, {"variant": variant, "iterations": args.iterations, "eval_every": 10**6,
                                           "checkpoint_every": 10**6, "step_grad_norm_every": 0,
                                           "histogram_iterations": []})
        with tempfile.TemporaryDirectory() as out:
            Trainer(config, build_backbone(config.backbone), build_task("nano", config.task), Path(out)).run()
            log = pd.read_json(Path(out) / "train.jsonl", lines=True)
        rows[variant] = log[PHASES].iloc[1:].mean().to_dict() | {"time_total": float(log[PHASES].iloc[1:].sum(axis=1).mean())}
    table = pd.DataFrame(rows).T
    result = {"seconds_per_iteration": table.round(4).to_dict(orient="index")}
    if {"flowgrpo", "grpo_guard"} <= set(rows):
        result["grpo_guard_over_flowgrpo"] = {p: round(rows["grpo_guard"][p] / rows["flowgrpo"][p], 3) for p in [*PHASES, "time_total"]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
