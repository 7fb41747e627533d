"""What an experiment costs before it runs: FLOPs, memory per GPU and GPU-hours of every job.

Run: ``python -m bench.plan --configfile workflow/config/<exp>.yaml [--gpu-memory-gb 80]
[--throughput bench/results/<gpu>.json] [--out results/<exp>/plan]`` (or ``snakemake plan``), which
writes ``<out>.md`` and ``<out>.json`` and prints the table. FLOPs and memory come from bench/cost.py;
time from a throughput: the achieved TFLOP/s per phase measured by bench/gpu_check.py where
``--throughput`` names its JSON, else ``ASSUMED_TFLOPS`` (printed as assumed). Training jobs: rollout +
update of every iteration and every training-time evaluation; sampling jobs: the final evaluation
set; scoring jobs: their configured runtime (metric models are not FLOP-counted).

``--pilot results/<pilot>`` adds a power plan: per check of the pilot's claims tables
(``<backbone>/<task>/tables/claims.csv``), the seeds a decisive verdict would need at the spread the
pilot measured and what they cost in this plan (``<out>_power.md`` and ``.csv``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from snakemake.utils import update_config

from analysis.stats import seeds_needed
from bench.cost import (architecture, evaluation_flops, evaluations, iteration_flops, memory_per_gpu, sampling_flops,
                        text_flops)
from jobs.config import TrainConfig, config_from_dict, grid_settings, resolve_run
from jobs.sweep import with_sweep

ASSUMED_TFLOPS = 300.0
"""Achieved TFLOP/s per GPU when nothing was measured: an assumption, printed as such."""

PROMPT_COUNTS = {("geneval", "test"): 2212, ("geneval", "final"): 553, ("ocr", "test"): 1018, ("pickscore", "test"): 2048}
"""Prompts of the public files (measured, README "Data"), used where the configured file is not on this machine."""


def prompt_count(task: dict[str, Any], which: str) -> int:
    """Prompts of the task's test list (``test``) or final set (``final``): the file where present, else the
    public count; ``eval_subset`` / ``final_subset`` cap it."""
    from eval.prompts.records import load_task_file, task_files

    reward = task["reward"]
    path, public = (Path(task["final_prompts"]), "final") if which == "final" and task.get("final_prompts") else (None, "test")
    if path is None and "prompts" in task:
        path = task_files(reward, task["prompts"])[1]
    if path is not None and path.is_file():
        count = len(load_task_file(reward, path))
    elif (reward, public) in PROMPT_COUNTS:
        count = PROMPT_COUNTS[(reward, public)]
    else:
        raise ValueError(f"task {reward!r}: no prompt file at {path} and no known count; point `prompts` at the files")
    cap = task.get("final_subset" if which == "final" else "eval_subset")
    return min(count, cap) if cap else count


def load_throughput(paths: list[str] | None) -> dict[str, dict[str, Any]]:
    """Achieved TFLOP/s per phase for each backbone: a gpu_check JSON's (its GRPO-Guard run) where one measured
    that backbone, else the assumption (key ``assumed``)."""
    out = {"assumed": {"rollout": ASSUMED_TFLOPS, "update": ASSUMED_TFLOPS,
                       "source": f"assumed {ASSUMED_TFLOPS:g} TFLOP/s achieved per GPU (not measured)"}}
    for path in paths or []:
        check = json.loads(Path(path).read_text())
        row = check["variants"]["grpo_guard"]["achieved_tflops"]
        out[check["settings"]["name"]] = {"rollout": row["rollout"], "update": row["update"],
                                          "source": f"measured by bench/gpu_check.py on {check['device']} "
                                                    f"(size {check['size']}, {path})"}
    return out


def resource(experiment: dict[str, Any], rule: str, key: str, default: Any) -> Any:
    return experiment.get("resources", {}).get(rule, {}).get(key, default)


def job_gpus(experiment: dict[str, Any], rule: str) -> int:
    """GPUs of one job of a rule: ``gpus`` per node x ``nodes`` (default 1)."""
    return int(resource(experiment, rule, "gpus", 0)) * int(resource(experiment, rule, "nodes", 1))


def memory_advice(config: TrainConfig, memory: dict[str, float], limit: float) -> str:
    """Empty where the job fits ``limit`` GiB, else the knobs that lower its memory and by how much."""
    if memory["total"] <= limit:
        return ""
    b, advice = config.backbone, []
    if not b.get("gradient_checkpointing"):
        advice.append(f"gradient_checkpointing: true ({memory['total_with_checkpointing']:.0f} GB)")
    if config.micro_batch != 1:
        advice.append(f"a lower micro_batch (now {config.micro_batch}; activations {memory['activations']:.0f} GB)")
    if b.get("transformer_dtype", "fp32") == "fp32":
        advice.append(f"transformer_dtype: bf16 (weights {memory['weights']:.0f} GB, about half of it the transformer)")
    return f"needs {memory['total']:.0f} GB > {limit:g} GB: try " + "; ".join(advice)


def train_job(experiment: dict[str, Any], run: str, config: TrainConfig, throughputs: dict[str, dict[str, Any]],
              limit: float) -> dict[str, Any]:
    arch, source = architecture(config.backbone)
    throughput = throughputs.get(config.backbone["name"], throughputs["assumed"])
    gpus = max(job_gpus(experiment, "train"), 1)
    per_iteration = iteration_flops(config, arch, gpus)
    evaluation = evaluation_flops(config, arch, prompt_count(config.task, "test") * config.eval_per_prompt, gpus)
    memory = memory_per_gpu(config, arch, gpus)
    seconds = (config.iterations * (per_iteration["rollout"] / throughput["rollout"]
                                    + per_iteration["update"] / throughput["update"])
               + evaluations(config) * evaluation / throughput["rollout"]) / 1e12 / gpus
    runtime = resource(experiment, "train", "runtime", 0) / 60
    warnings = [w for w in [memory_advice(config, memory, limit),
                            f"planned {seconds / 3600:.1f} h > resources.train.runtime {runtime:g} h"
                            if runtime and seconds / 3600 > runtime else ""] if w]
    return {"rule": "train", "run": run, "gpus": gpus, "iterations": config.iterations,
            "tflop_rollout_per_iteration": per_iteration["rollout"] / 1e12,
            "tflop_update_per_iteration": per_iteration["update"] / 1e12, "tflop_per_evaluation": evaluation / 1e12,
            "evaluations": evaluations(config), "memory_gb": memory["total"],
            "memory_gb_without_checkpointing": memory["total_without_checkpointing"],
            "memory_gb_with_checkpointing": memory["total_with_checkpointing"], "memory_parts_gb": memory,
            "wall_hours": seconds / 3600, "gpu_hours": gpus * seconds / 3600, "architecture": source,
            "throughput": throughput["source"], "warnings": warnings}


def sample_job(experiment: dict[str, Any], run: str, config: TrainConfig,
               throughputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    arch, _ = architecture(config.backbone)
    throughput = throughputs.get(config.backbone["name"], throughputs["assumed"])
    prompts = prompt_count(config.task, "final")
    images = prompts * (config.task.get("final_per_prompt") or config.eval_per_prompt)
    flops = (sampling_flops(config, arch, images, config.eval_steps, config.eval_batch)
             + prompts * text_flops(arch, config.backbone.get("max_sequence_length")))
    gpus = max(job_gpus(experiment, "sample"), 1)
    hours = flops / throughput["rollout"] / 1e12 / 3600
    return {"rule": "sample", "run": run, "gpus": gpus, "images": images, "tflop": flops / 1e12,
            "wall_hours": hours / gpus, "gpu_hours": hours, "warnings": []}


def score_job(experiment: dict[str, Any], run: str) -> dict[str, Any]:
    gpus, hours = job_gpus(experiment, "score"), resource(experiment, "score", "runtime", 30) / 60
    return {"rule": "score", "run": run, "gpus": gpus, "wall_hours": hours, "gpu_hours": gpus * hours,
            "warnings": ["upper bound: the configured resources.score.runtime"]}


def plan(experiment: dict[str, Any], throughput: dict[str, dict[str, Any]], limit: float) -> dict[str, Any]:
    """Every training, sampling and scoring job of the grid (its sweep points included: jobs/sweep.py, as the
    workflow runs them) with its cost, and the totals."""
    experiment = with_sweep(experiment)
    jobs = []
    seeds = [int(s) for s in experiment["seeds"]]
    for backbone, task in grid_settings(experiment):
        setting = f"{backbone}/{task}"
        for variant in experiment["grid"][backbone][task]["variants"]:
            config = config_from_dict(resolve_run(experiment, variant, setting))
            for seed in seeds:
                run = f"{setting}/{variant}/seed{seed}"
                jobs += [train_job(experiment, run, config, throughput, limit),
                         sample_job(experiment, run, config, throughput), score_job(experiment, run)]
        base = config_from_dict(resolve_run(experiment, next(iter(experiment["grid"][backbone][task]["variants"])), setting))
        jobs += [sample_job(experiment, f"{setting}/base", base, throughput), score_job(experiment, f"{setting}/base")]
    chains = pd.DataFrame(jobs).assign(chain=lambda d: d["run"]).groupby("chain")["wall_hours"].sum()
    total = {"gpu_hours": sum(j["gpu_hours"] for j in jobs),
             "train_gpu_hours": sum(j["gpu_hours"] for j in jobs if j["rule"] == "train"),
             "wall_hours_one_job_at_a_time": sum(j["wall_hours"] for j in jobs),
             "wall_hours_all_jobs_in_parallel": float(chains.max()),
             "gpus_all_jobs_in_parallel": sum(j["gpus"] for j in jobs if j["rule"] == "train")}
    return {"experiment": experiment["experiment"], "throughput": throughput, "gpu_memory_gb": limit, "jobs": jobs,
            "total": total}


def markdown(result: dict[str, Any]) -> str:
    """The plan as a Markdown report: assumptions, the training table, the other jobs and the totals."""
    jobs = pd.DataFrame(result["jobs"])
    train = jobs[jobs.rule == "train"]
    columns = {"run": "run", "gpus": "GPUs", "iterations": "iterations",
               "tflop_rollout_per_iteration": "TFLOP rollout / it", "tflop_update_per_iteration": "TFLOP update / it",
               "tflop_per_evaluation": "TFLOP / eval", "memory_gb_without_checkpointing": "GB/GPU (no ckpt)",
               "memory_gb_with_checkpointing": "GB/GPU (ckpt)", "wall_hours": "wall h", "gpu_hours": "GPU-hours"}
    others = jobs[jobs.rule != "train"].groupby("rule")[["gpu_hours", "wall_hours"]].sum()
    warnings = [f"- {j['run']}: {w}" for j in result["jobs"] if j["rule"] == "train" for w in j["warnings"]]
    t = result["total"]
    return "\n".join([
        f"# Plan of `{result['experiment']}`", "",
        "Throughput: " + "; ".join(sorted({j["throughput"] for j in result["jobs"] if j["rule"] == "train"})) + ".",
        f"Memory limit: {result['gpu_memory_gb']:g} GB per GPU.",
        "FLOPs counted on the meta device (bench/cost.py); reward and metric models not counted.", "",
        "## Training jobs", "", train[list(columns)].rename(columns=columns).round(2).to_markdown(index=False), "",
        "## Sampling and scoring jobs (summed)", "", others.round(2).to_markdown(), "",
        "## Warnings", "", *(warnings or ["- none"]), "",
        "## Total", "",
        f"- GPU-hours: {t['gpu_hours']:.0f} (training {t['train_gpu_hours']:.0f})",
        f"- wall time, one job at a time: {t['wall_hours_one_job_at_a_time']:.1f} h",
        f"- wall time, every run's chain at once ({t['gpus_all_jobs_in_parallel']} GPUs for training): "
        f"{t['wall_hours_all_jobs_in_parallel']:.1f} h", ""])


def write_plan(experiment: dict[str, Any], out: str | Path, throughput: list[str] | None,
               limit: float) -> dict[str, Any]:
    """Plan ``experiment`` and write ``<out>.json`` and ``<out>.md``; returns the plan."""
    result = plan(experiment, load_throughput(throughput), limit)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    return result


# ----------------------------------------------------------------------------------------------
# Power plan from a pilot's claims tables

DECIDED = "decided in the pilot"
UNKNOWN_SPREAD = "spread over seeds unknown: needs a pilot with >= 2 seeds"


def read_pilot(folder: Path) -> pd.DataFrame:
    """Every setting's claims table under a pilot's results folder, with its ``setting`` (backbone/task)."""
    paths = sorted(folder.glob("*/*/tables/claims.csv"))  # <backbone>/<task>/tables/claims.csv
    if not paths:
        raise FileNotFoundError(f"no <backbone>/<task>/tables/claims.csv under {folder}: run the pilot's claims rule")
    return pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""])
                      .assign(setting=f"{p.parents[2].name}/{p.parents[1].name}") for p in paths], ignore_index=True)


def seed_costs(result: dict[str, Any]) -> pd.Series:
    """GPU-hours of one seed of each planned variant: its training and sampling jobs, summed over the settings that
    run it (one seed list serves the whole grid)."""
    jobs = pd.DataFrame(result["jobs"])
    runs = jobs[jobs.rule.isin(["train", "sample"]) & ~jobs.run.str.endswith("/base")]
    parts = runs.run.str.split("/")  # <backbone>/<task>/<variant>/seed<n>
    return runs.groupby(parts.str[2], sort=False).gpu_hours.sum() / parts.str[3].nunique()


def check_cost(variants: Any, costs: pd.Series) -> tuple[float, str]:
    """GPU-hours per seed of the variants a check compares, and a note on those the plan lacks (priced at the
    plan's mean per variant)."""
    names = [v.strip() for v in ("" if pd.isna(variants) else str(variants)).split(",") if v.strip()]
    if not names:
        return math.nan, "the check names no variant"
    missing = [v for v in names if v not in costs.index]
    note = (f"not in the planned experiment: {', '.join(missing)} (priced at its mean per variant, "
            f"{costs.mean():.1f} GPU-hours per seed)" if missing else "")
    return sum(costs.get(v, costs.mean()) for v in names), note


def needed_seeds(claim: pd.Series) -> int | str:
    """Seeds a decisive verdict would need at the pilot's spread over seeds, or why there is no number."""
    if claim["verdict"] in ("reproduced", "not reproduced"):
        return DECIDED
    if not math.isfinite(claim["mean"]) or claim["verdict"] == "not tested":
        return "not measured in the pilot" + (f": {claim['reason']}" if pd.notna(claim["reason"]) else "")
    if not math.isfinite(claim["seed_sd"]):
        return UNKNOWN_SPREAD
    n = seeds_needed(claim["mean"], claim["seed_sd"], claim["band_low"], claim["band_high"])
    return "more than 1000: the mean sits at or very near a band edge" if n is None else n


def power_table(pilot: pd.DataFrame, result: dict[str, Any]) -> pd.DataFrame:
    """Per pilot check: its verdict, the seeds a decisive verdict would need and their GPU-hours in the plan."""
    costs, rows = seed_costs(result), []
    for _, claim in pilot.iterrows():
        seeds = needed_seeds(claim)
        per_seed, note = check_cost(claim["variants"], costs)
        rows.append({"setting": claim["setting"], "id": claim["id"], "check": claim["check"],
                     "variants": claim["variants"], "pilot verdict": claim["verdict"], "pilot seeds": claim["seeds"],
                     "seeds needed": seeds, "GPU-hours per seed": per_seed,
                     "GPU-hours": seeds * per_seed if isinstance(seeds, int) else math.nan, "note": note})
    return pd.DataFrame(rows)


def power_markdown(table: pd.DataFrame, experiment: str, pilot: Path) -> str:
    """The power plan as Markdown: what it computes, then the table."""
    return "\n".join([
        f"# Power plan of `{experiment}` from the pilot `{pilot}`", "",
        "Per check: the seeds a decisive verdict would need at the spread over seeds the pilot measured (the 95% "
        "t-interval narrower than the distance from the pilot's mean to the nearest band edge, mean and spread assumed "
        "to stay: analysis.stats.seeds_needed), and their cost in this plan: seeds x the GPU-hours per seed of the "
        "training and sampling jobs of the variants the check compares, each summed over the planned settings that "
        "run it (the seed list is the whole grid's).", "",
        table.astype(object).where(table.notna(), None).to_markdown(index=False, floatfmt=".1f", missingval=""), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", required=True, nargs="+",
                        help="an experiment YAML (workflow/config/<exp>.yaml), then overlays merged as snakemake does")
    parser.add_argument("--gpu-memory-gb", type=float, help="memory of one GPU; jobs above it are flagged "
                        "(default: the config's plan.gpu_memory_gb, else 80)")
    parser.add_argument("--throughput", nargs="+", help="bench/gpu_check.py JSONs (achieved TFLOP/s of their backbone) "
                        "instead of the assumption (default: the config's plan.throughput)")
    parser.add_argument("--out", help="write <out>.md and <out>.json, and with --pilot <out>_power.md and .csv "
                        "(default: results/<experiment>/plan, without the power plan's files)")
    parser.add_argument("--pilot", type=Path, help="a pilot's results folder (results/<exp>): per check of its claims "
                        "tables, the seeds a decisive verdict would need and their GPU-hours in this plan")
    args = parser.parse_args(argv)
    experiment: dict[str, Any] = {}
    for path in args.configfile:
        update_config(experiment, yaml.safe_load(Path(path).read_text()))
    options = experiment.get("plan", {})
    pilot = read_pilot(args.pilot) if args.pilot else None  # a missing pilot fails before the plan's minute
    result = write_plan(experiment, args.out or f"results/{experiment['experiment']}/plan",
                        args.throughput or options.get("throughput"), args.gpu_memory_gb or options.get("gpu_memory_gb", 80.0))
    print(markdown(result))
    if pilot is not None:
        table = power_table(pilot, result)
        text = power_markdown(table, experiment["experiment"], args.pilot)
        print(text)
        if args.out:
            table.to_csv(f"{args.out}_power.csv", index=False)
            Path(f"{args.out}_power.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
