"""What an experiment costs before it runs: FLOPs, memory per GPU and GPU-hours of every job.

Run: ``python -m bench.plan --configfile workflow/config/<exp>.yaml [--gpu-memory-gb 80]
[--throughput bench/results/<gpu>.json] [--out results/<exp>/plan]`` (or ``snakemake plan``), which
writes ``<out>.md`` and ``<out>.json`` and prints the table. FLOPs and memory come from bench/cost.py;
time from a throughput: the achieved TFLOP/s per phase measured by bench/gpu_check.py where
``--throughput`` names its JSON, else ``ASSUMED_TFLOPS`` (printed as assumed). Training jobs: rollout +
update of every iteration and every training-time evaluation; sampling jobs: the final evaluation
set; scoring jobs: their configured runtime (metric models are not FLOP-counted). A training job longer than
``resources.train.runtime`` less ``warning_seconds`` needs resubmissions that resume from its checkpoint: a note where
``resubmissions`` (default: the SLURM profile's ``retries``) covers them, a warning where it does not.

``--pilot results/<pilot>`` adds a power plan: per check of the pilot's claims tables
(``<backbone>/<task>/tables/claims.csv``), the seeds a decisive verdict would need at the spread the
pilot measured and what they cost in this plan (``<out>_power.md`` and ``.csv``).
"""

from __future__ import annotations

import argparse
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from snakemake.utils import update_config

from analysis.stats import seeds_needed
from bench.cost import (architecture, evaluation_flops, evaluations, iteration_flops, lora_key, memory_per_gpu,
                        parameter_counts, sampling_flops, text_flops)
from jobs.config import TrainConfig, config_from_dict, grid_settings, resolve_run
from jobs.sweep import with_sweep

ASSUMED_TFLOPS = 300.0
"""Achieved TFLOP/s per GPU when nothing was measured: an assumption, printed as such."""

ASSUMED_WRITE_GB_S = 0.1
"""Speed (GB/s) at which a checkpoint is written to the run folder: an assumption (a slow shared file system), printed
with the warning_seconds it suggests."""

WARNING_STEP = 300
"""A suggested resources.train.warning_seconds is rounded up to whole multiples of this (5 minutes)."""

PROFILE = Path(__file__).resolve().parents[1] / "workflow" / "profiles" / "slurm" / "config.yaml"
"""The SLURM profile: its ``retries`` resubmit a stopped training job where resources.train.resubmissions is unset."""

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


@lru_cache(maxsize=None)
def profile_retries(path: Path = PROFILE) -> int:
    """The SLURM profile's ``retries`` (0 where it has none or is missing)."""
    return int((yaml.safe_load(path.read_text()) or {}).get("retries", 0)) if path.is_file() else 0


def allowed_resubmissions(experiment: dict[str, Any]) -> int:
    """How often a stopped training job is resubmitted: resources.train.resubmissions, else the profile's retries."""
    return int(resource(experiment, "train", "resubmissions", profile_retries()))


def checkpoint_seconds(config: TrainConfig, arch: Any) -> float:
    """Seconds to write one checkpoint: LoRA weights, their EMA and two AdamW moments (fp32) at ASSUMED_WRITE_GB_S."""
    return parameter_counts(arch, lora_key(config))["lora"] * 4 * 4 / 1e9 / ASSUMED_WRITE_GB_S


def lost_seconds(config: TrainConfig, iteration: float, evaluation: float) -> float:
    """Planned seconds a kill at the limit loses at most: ``checkpoint_every`` iterations, evaluations among them."""
    return config.checkpoint_every * iteration + math.ceil(config.checkpoint_every / config.eval_every) * evaluation


def suggested_warning(stop: float) -> int:
    """A warning_seconds that covers a stop of ``stop`` seconds: rounded up to whole WARNING_STEPs."""
    return math.ceil(stop / WARNING_STEP) * WARNING_STEP


def needed_resubmissions(seconds: float, usable: float, lost: float = 0.0) -> int | None:
    """Resubmissions a run of ``seconds`` needs where a job trains ``usable`` seconds and each stop loses ``lost`` of
    them (ceil(seconds / usable) - 1 where nothing is lost); None where a stopped job keeps nothing."""
    if seconds <= usable:
        return 0
    return math.ceil((seconds - usable) / (usable - lost)) if usable > lost else None


def warning_advice(config: TrainConfig, warning: int, limits: dict[str, Any], lost: float) -> str:
    """Empty where warning_seconds covers the job's longest stop, else what a stop loses and what to set instead."""
    if warning >= limits["stop_seconds"]:
        return ""
    loses = f"loses up to {config.checkpoint_every} iterations ({lost / 3600:.1f} planned h)"
    why = (f"each stop at the limit {loses}" if not warning else f"warning_seconds {warning} < its longest stop "
           f"({limits['stop_seconds']:.0f} s), so a stop may be killed before its checkpoint and {loses}")
    longest = limits["iteration_seconds"] + limits["evaluation_seconds"]
    return (f"; {why}: set resources.train.warning_seconds to at least {limits['suggested_warning_seconds']} "
            f"(its longest iteration, {longest:.0f} s with an evaluation at the planned throughput, plus a "
            f"checkpoint's write, {limits['checkpoint_seconds']:.0f} s at an assumed "
            f"{ASSUMED_WRITE_GB_S:g} GB/s, rounded up to whole {WARNING_STEP // 60} min)")


def time_limit(experiment: dict[str, Any], config: TrainConfig, seconds: float, iteration: float, evaluation: float,
               checkpoint: float) -> dict[str, Any]:
    """Resubmissions a training job needs past its runtime and those allowed, with warnings (it fails) and notes (it
    resumes). A job trains for its runtime less warning_seconds; where warning_seconds does not cover the longest stop
    (an iteration with an evaluation, then a checkpoint), each stop also loses the work since the last checkpoint.
    Start-up (loading the models) is not counted."""
    runtime = resource(experiment, "train", "runtime", 0) * 60
    warning = resource(experiment, "train", "warning_seconds", 0)
    allowed, stop = allowed_resubmissions(experiment), iteration + evaluation + checkpoint
    out = {"resubmissions": 0, "allowed_resubmissions": allowed, "warning_seconds": warning,
           "iteration_seconds": iteration, "evaluation_seconds": evaluation, "checkpoint_seconds": checkpoint,
           "stop_seconds": stop, "suggested_warning_seconds": suggested_warning(stop), "warnings": [], "notes": []}
    if not runtime:
        return out
    if warning >= runtime:
        out["resubmissions"] = None
        out["warnings"].append(f"resources.train.warning_seconds {warning} >= resources.train.runtime {runtime / 60:g} "
                               f"min ({runtime:g} s): every job would stop as soon as it starts")
        return out
    lost, usable = lost_seconds(config, iteration, evaluation) if warning < stop else 0.0, runtime - warning
    needed = out["resubmissions"] = needed_resubmissions(seconds, usable, lost)
    if needed == 0:
        return out
    head = f"planned {seconds / 3600:.1f} h > " + (
        f"resources.train.runtime {runtime / 3600:g} h" if seconds > runtime else
        f"the {usable / 3600:.1f} h a job of resources.train.runtime {runtime / 3600:g} h trains")
    if needed is None:
        out["warnings"].append(f"{head}: will fail: a stopped job keeps nothing (it trains {usable / 3600:.1f} h, a "
                               f"kill loses up to {lost / 3600:.1f} h)")
        return out
    plural, advice = "s" if needed > 1 else "", warning_advice(config, warning, out, lost)
    if needed <= allowed:
        out["notes"].append(f"{head}: continues in {needed} resubmission{plural} (of {allowed} allowed), resuming from "
                            f"its checkpoint (start-up not counted){advice}")
    else:
        out["warnings"].append(f"{head}: will fail: needs {needed} resubmission{plural}, {allowed} allowed: set "
                               f"resources.train.resubmissions: {needed}{advice}")
    return out


def train_job(experiment: dict[str, Any], run: str, config: TrainConfig, throughputs: dict[str, dict[str, Any]],
              limit: float) -> dict[str, Any]:
    arch, source = architecture(config.backbone)
    throughput = throughputs.get(config.backbone["name"], throughputs["assumed"])
    gpus = max(job_gpus(experiment, "train"), 1)
    per_iteration = iteration_flops(config, arch, gpus)
    evaluation = evaluation_flops(config, arch, prompt_count(config.task, "test") * config.eval_per_prompt, gpus)
    memory = memory_per_gpu(config, arch, gpus)
    iteration_seconds = (per_iteration["rollout"] / throughput["rollout"]
                         + per_iteration["update"] / throughput["update"]) / 1e12 / gpus
    evaluation_seconds = evaluation / throughput["rollout"] / 1e12 / gpus
    seconds = config.iterations * iteration_seconds + evaluations(config) * evaluation_seconds
    limits = time_limit(experiment, config, seconds, iteration_seconds, evaluation_seconds,
                        checkpoint_seconds(config, arch))
    warnings = [w for w in [memory_advice(config, memory, limit)] if w] + limits.pop("warnings")
    return {"rule": "train", "run": run, "gpus": gpus, "iterations": config.iterations,
            "tflop_rollout_per_iteration": per_iteration["rollout"] / 1e12,
            "tflop_update_per_iteration": per_iteration["update"] / 1e12, "tflop_per_evaluation": evaluation / 1e12,
            "evaluations": evaluations(config), "memory_gb": memory["total"],
            "memory_gb_without_checkpointing": memory["total_without_checkpointing"],
            "memory_gb_with_checkpointing": memory["total_with_checkpointing"], "memory_parts_gb": memory,
            "wall_hours": seconds / 3600, "gpu_hours": gpus * seconds / 3600, "architecture": source,
            "throughput": throughput["source"], **limits, "warnings": warnings}


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


def resubmitted(job: pd.Series) -> str:
    """A training job's table cell: resubmissions it needs past its runtime (those allowed)."""
    needed = job["resubmissions"]
    needed = "never finishes" if needed is None or pd.isna(needed) else int(needed)
    return f"{needed} ({int(job['allowed_resubmissions'])})"


def stop_line(train: list[dict[str, Any]]) -> str:
    """The longest stop of the training jobs against resources.train.warning_seconds."""
    job = max(train, key=lambda j: j["stop_seconds"])
    covers = ("covers it" if job["warning_seconds"] >= job["stop_seconds"] else
              f"does not cover it; {job['suggested_warning_seconds']} would (rounded up to whole "
              f"{WARNING_STEP // 60} min)")
    return (f"longest stop of a training job (its iteration with an evaluation, then a checkpoint at an assumed "
            f"{ASSUMED_WRITE_GB_S:g} GB/s): {job['stop_seconds']:.0f} s ({job['run']}); "
            f"resources.train.warning_seconds {job['warning_seconds']} {covers}")


def markdown(result: dict[str, Any]) -> str:
    """The plan as a Markdown report: assumptions, the training table, the other jobs and the totals."""
    jobs = pd.DataFrame(result["jobs"])
    train = jobs[jobs.rule == "train"]
    columns = {"run": "run", "gpus": "GPUs", "iterations": "iterations",
               "tflop_rollout_per_iteration": "TFLOP rollout / it", "tflop_update_per_iteration": "TFLOP update / it",
               "tflop_per_evaluation": "TFLOP / eval", "memory_gb_without_checkpointing": "GB/GPU (no ckpt)",
               "memory_gb_with_checkpointing": "GB/GPU (ckpt)", "wall_hours": "wall h", "gpu_hours": "GPU-hours",
               "resubmitted": "resubmissions (allowed)"}
    train = train.assign(resubmitted=[resubmitted(j) for _, j in train.iterrows()])
    others = jobs[jobs.rule != "train"].groupby("rule")[["gpu_hours", "wall_hours"]].sum()
    warnings = [f"- {j['run']}: {w}" for j in result["jobs"] if j["rule"] == "train" for w in j["warnings"]]
    notes = [f"- {j['run']}: {n}" for j in result["jobs"] if j["rule"] == "train" for n in j["notes"]]
    t = result["total"]
    return "\n".join([
        f"# Plan of `{result['experiment']}`", "",
        "Throughput: " + "; ".join(sorted({j["throughput"] for j in result["jobs"] if j["rule"] == "train"})) + ".",
        f"Memory limit: {result['gpu_memory_gb']:g} GB per GPU.",
        "FLOPs counted on the meta device (bench/cost.py); reward and metric models not counted.", "",
        "## Training jobs", "", train[list(columns)].rename(columns=columns).round(2).to_markdown(index=False), "",
        "## Sampling and scoring jobs (summed)", "", others.round(2).to_markdown(), "",
        "## Warnings", "", *(warnings or ["- none"]), "",
        "## Notes", "", *notes, f"- {stop_line([j for j in result['jobs'] if j['rule'] == 'train'])}", "",
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
