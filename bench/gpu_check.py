"""One-GPU check: seconds per RL iteration, peak memory and achieved TFLOP/s of SD3.5-M / FLUX.1-dev-sized models.

Run: ``python bench/gpu_check.py --size sd35m|flux|tiny [--device cuda] [--iterations 3] [--out JSON]``.
A random pipeline of the size (``tiny``: the tiny SD3; ``sd35m``: the SD3.5-M transformer and VAE;
``flux``: FLUX.1-dev's; small text encoders of the real widths) is built in memory on the device and
trained with the paper's per-GPU settings of its backbone (resolution, CFG, group, ``micro_batch``,
``forward_batch``, precision; one prompt per iteration, as the rows per transformer call do not
depend on it): the baseline (FlowGRPO for SD3.5-M, DanceGRPO for FLUX) and GRPO-Guard, each for
``--iterations`` iterations of which the first is a warm-up, then GRPO-Guard for one iteration with the
other gradient-checkpointing setting for its peak memory (an out-of-memory error is reported as such). Reports the mean seconds of rollout (time_sample),
reward (time_reward: decoding and the trivial saturation reward) and update, the peak memory
(torch.cuda.max_memory_allocated; on a CPU the process's peak RSS, which covers every run before it),
the planner's FLOPs over the measured seconds (achieved TFLOP/s) and the GRPO-Guard / baseline time
ratio. Writes a JSON (device named) that ``python -m bench.plan --throughput`` reads. Budget, planned
at the planner's assumed 300 TFLOP/s (not measured): about 3 minutes for sd35m and 6 for flux with
``--iterations 2`` (FLUX.1-dev: about 20 PFLOP per iteration of 12 samples).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.cost import from_pipeline, iteration_flops, memory_per_gpu  # noqa: E402
from eval.nano import saturation  # noqa: E402
from eval.tasks import Task  # noqa: E402
from guard.backbones.diffusers_common import parse_options, place_pipeline  # noqa: E402
from guard.backbones.tiny import PIPELINES  # noqa: E402
from jobs.config import TrainConfig  # noqa: E402
from guard.train import Trainer  # noqa: E402

PHASES = ["time_sample", "time_reward", "time_update"]
SIZES = {
    # SD3.5-M, Flow-GRPO's per-GPU settings of workflow/config/paper.yaml
    "sd35m": dict(kind="sd3", backbone=dict(name="sd35", resolution=512, cfg=4.5, mixed_precision="fp16",
                                            forward_batch=18),
                  train=dict(sampler="flowgrpo", num_steps=10, trained_steps=9, trainable_steps=9, noise_level=0.7,
                             group_size=24, micro_batch=9),
                  baseline=("flowgrpo", dict(kl_beta=0.04))),
    # FLUX.1-dev, DanceGRPO's per-GPU settings of workflow/config/paper.yaml
    "flux": dict(kind="flux", backbone=dict(name="flux", resolution=720, mixed_precision="bf16", transformer_dtype="bf16",
                                            gradient_checkpointing=True, forward_batch=4),
                 train=dict(sampler="dancegrpo", num_steps=16, trained_steps=9, trainable_steps=15, noise_level=0.3,
                            shared_group_noise=True, decode_x0_hat=True, group_size=12, micro_batch=4,
                            minibatches=3),
                 baseline=("dancegrpo", {})),
    # the tiny SD3 on a CPU (the test suite)
    "tiny": dict(kind="sd3", backbone=dict(name="sd35", resolution=64, cfg=4.5, mixed_precision="no", forward_batch=4),
                 train=dict(sampler="flowgrpo", num_steps=3, trained_steps=2, trainable_steps=2, group_size=4,
                            micro_batch=2),
                 baseline=("flowgrpo", dict(kl_beta=0.04))),
}
PROMPTS = ["a red apple on a wooden table", "a sign that says hello world in bold letters"]


def backbone_in_memory(size: str, options: dict[str, Any]) -> Any:
    """A random pipeline of ``size`` built on the device (no folder), placed as from_pretrained places it."""
    from guard.backbones.flux import FluxBackbone, FluxOptions
    from guard.backbones.sd35 import SD35Backbone, SD35Options

    spec = SIZES[size]
    cls, options_cls = (SD35Backbone, SD35Options) if spec["kind"] == "sd3" else (FluxBackbone, FluxOptions)
    opts = parse_options(options_cls, {**options, "path": "(in memory)"})
    device = torch.device(opts.device)
    with torch.device(device):
        pipe = PIPELINES[spec["kind"]]("tiny" if size == "tiny" else size)
    return cls(place_pipeline(pipe, device, opts, cast=True), opts)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(size: str, device: str, variant: str, overrides: dict[str, Any], iterations: int,
        checkpointing: bool | None = None) -> dict[str, Any]:
    """Mean seconds per phase (after the first iteration), peak memory, planned FLOPs and achieved TFLOP/s."""
    spec = SIZES[size]
    options = {**spec["backbone"], "device": device, "path": "(in memory)"}
    if checkpointing is not None:
        options["gradient_checkpointing"] = checkpointing
    config = TrainConfig(variant=variant, iterations=iterations, prompts_per_iteration=1, drop_zero_advantage=False,
                         step_grad_norm_every=0, checkpoint_every=10**6, eval_every=10**6, backbone=options,
                         **{**spec["train"], **overrides})
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(torch_device)
    backbone = backbone_in_memory(size, options)
    task = Task(PROMPTS, saturation, {"saturation": saturation})
    rows = []
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, backbone, task, Path(out))
        trainer.prepare()
        for i in range(iterations):
            batch, row = trainer.rollout(i)
            t0 = time.perf_counter()
            trainer.train_on(batch, i)
            rows.append({**row, "time_update": time.perf_counter() - t0})
    measured = rows[1:] or rows
    result = {p: sum(r[p] for r in measured) / len(measured) for p in PHASES}
    result["time_total"] = sum(result[p] for p in PHASES)
    result["peak_memory_gb"] = peak_memory_gb(torch_device)
    flops = iteration_flops(config, from_pipeline(options["name"], backbone.pipe))
    result["tflop"] = {k: v / 1e12 for k, v in flops.items()}
    result["achieved_tflops"] = {"rollout": flops["rollout"] / 1e12 / (result["time_sample"] + result["time_reward"]),
                                 "update": flops["update"] / 1e12 / result["time_update"]}
    result["planned_memory_gb"] = memory_per_gpu(config, from_pipeline(options["name"], backbone.pipe))
    del trainer, backbone, batch
    gc.collect()
    return result


def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="sd35m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--iterations", type=int, default=3, help="per variant; the first is a warm-up (not averaged)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.add_argument("--out", help="JSON to write (default bench/results/<device>-<size>.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    baseline, baseline_overrides = SIZES[args.size]["baseline"]
    variants = {baseline: run(args.size, args.device, baseline, baseline_overrides, args.iterations),
                "grpo_guard": run(args.size, args.device, "grpo_guard", {}, args.iterations)}
    checkpointing = not SIZES[args.size]["backbone"].get("gradient_checkpointing", False)
    try:
        other = run(args.size, args.device, "grpo_guard", {}, 1, checkpointing)["peak_memory_gb"]
    except torch.cuda.OutOfMemoryError as err:
        other = f"out of memory: {str(err).splitlines()[0]}"
    memory = {("with" if checkpointing else "without") + "_checkpointing": other,
              ("without" if checkpointing else "with") + "_checkpointing": variants["grpo_guard"]["peak_memory_gb"]}
    name = device_name(args.device)
    result = {"device": name, "size": args.size, "torch": torch.__version__, "baseline": baseline,
              "settings": {**SIZES[args.size]["backbone"], **SIZES[args.size]["train"], "prompts_per_iteration": 1,
                           "iterations": args.iterations},
              "variants": variants, "peak_memory_gb": memory,
              "memory_note": None if torch.device(args.device).type == "cuda"
              else "CPU: peak RSS of the whole process, cumulative over the runs in order",
              "grpo_guard_over_baseline": {p: variants["grpo_guard"][p] / variants[baseline][p]
                                           for p in [*PHASES, "time_total"]},
              "wall_seconds": time.perf_counter() - start}
    out = Path(args.out or f"bench/results/{name.split(':')[0].replace(' ', '_')}-{args.size}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
