"""Time per RL iteration on the nano default beside the model's own compute at the same rows (the floor).

Run: ``python bench/rl_iteration.py [--iterations 20] [--variants flowgrpo grpo_guard]``. Trains each
variant for a few iterations in this one process, logging as the workflow does (the config's
``step_grad_norm_every``; no histograms or evaluations). After each iteration the same rows go
through the bare velocity net: the rollout's forwards without autograd, and per optimizer step the
forward/backward of the minibatch's trained rows in the calls the trainer makes (``steps_per_backward``
steps of a micro-batch at a time, also on the iterations that log each step's gradient norm: the
trainer takes them from the same backward), with a plain loss. Times are this process's CPU seconds
(equal to wall time on an idle core, and not inflated by other processes on a shared machine). Prints a JSON table: seconds per phase and
the floor, trainer / floor on the iterations with and without step gradient norms and on average
(goal: at most 1.5), and GRPO-Guard over FlowGRPO.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from eval.tasks import build_task
from guard.backbones import build_backbone
from guard.minibatch import micro_batches
from guard.train import Batch, Trainer
from jobs.config import TrainConfig, load_config

GOAL = 1.5
"""Most trainer seconds per second of the model's own forward/backward."""


def floor_seconds(trainer: Trainer, batch: Batch, kept: int) -> tuple[float, float]:
    """CPU seconds of the bare model on one iteration's rows: (rollout forwards, update forward/backwards)."""
    c, backbone, traj, sched = trainer.config, trainer.backbone, batch.traj, trainer.sched
    start = time.process_time()
    with torch.no_grad():
        for k in range(sched.num_steps):
            backbone.velocity(traj.latents[:, k], sched.t[k], batch.cond)
    sample = time.process_time() - start
    start = time.process_time()
    for _ in range(c.inner_epochs):
        for mb in torch.arange(kept).tensor_split(c.minibatches):
            for js in micro_batches(c.trained_steps, c.steps_per_backward):
                for part in micro_batches(len(mb), c.micro_batch):
                    rows, k = mb[part].repeat(len(js)), js.repeat_interleave(len(part))
                    v = backbone.velocity(traj.latents[rows, k], sched.t[k], backbone.select(batch.cond, rows))
                    v.square().mean().backward()
            trainer.optimizer.zero_grad(set_to_none=True)
    return sample, time.process_time() - start


def measure(config: TrainConfig) -> pd.DataFrame:
    """Per iteration: the trainer's CPU seconds per phase and the floor's, and whether step grad norms were logged."""
    records = []
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, build_backbone(config.backbone), build_task("nano", config.task), Path(out))
        trainer.prepare()
        for i in range(config.iterations):
            start = time.process_time()
            batch, row = trainer.rollout(i)
            rollout = time.process_time() - start
            start = time.process_time()
            stats, step_rows, hist_rows = trainer.train_on(batch, i)
            trainer.log({"iteration": i, **row, **stats}, step_rows, hist_rows)
            update = time.process_time() - start
            tracked = config.step_grad_norm_every > 0 and i % config.step_grad_norm_every == 0
            floor_sample, floor_update = floor_seconds(trainer, batch, stats["kept"])
            records.append({"tracked": tracked, "time_rollout": rollout, "time_update": update,
                            "floor_sample": floor_sample, "floor_update": floor_update})
    frame = pd.DataFrame(records).iloc[1:]  # the first iteration warms up
    frame["time_total"] = frame.time_rollout + frame.time_update
    frame["floor_total"] = frame.floor_sample + frame.floor_update
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="workflow/config/nano.yaml")
    parser.add_argument("--iterations", type=int, default=21)
    parser.add_argument("--variants", nargs="+", default=["flowgrpo", "grpo_guard"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    seconds, by_kind, ratios = {}, {}, {}
    for variant in args.variants:
        config = load_config(args.config, {"variant": variant, "iterations": args.iterations, "eval_every": 10**6,
                                           "checkpoint_every": 10**6, "histogram_iterations": []})
        frame = measure(config)
        seconds[variant] = frame.drop(columns="tracked").mean().round(4).to_dict()
        kinds = {"step_grad_norm": frame[frame.tracked], "other": frame[~frame.tracked]}
        by_kind[variant] = {kind: {"iterations": len(f), "trainer": round(f.time_total.mean(), 4),
                                   "floor": round(f.floor_total.mean(), 4)} for kind, f in kinds.items() if len(f)}
        ratios[variant] = {kind: round(f.time_total.sum() / f.floor_total.sum(), 2)
                           for kind, f in {"all": frame, **kinds}.items() if len(f)}
    result = {"cpu_seconds_per_iteration": seconds, "by_kind_of_iteration": by_kind, "trainer_over_floor": ratios,
              "goal_at_most": GOAL, "goal_met": all(r["all"] <= GOAL for r in ratios.values())}
    if {"flowgrpo", "grpo_guard"} <= set(seconds):
        result["grpo_guard_over_flowgrpo"] = round(seconds["grpo_guard"]["time_total"] / seconds["flowgrpo"]["time_total"], 3)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
