# Targets and helpers computed from the validated config.
import os
import re

import yaml

from guard.backbones import ADAPTER_BACKBONES
from guard.stop import AGENT_PREFIX
from jobs.config import config_from_dict, grid_settings, resolve_run
from jobs.sweep import sweep_points, swept_entries, with_sweep
from eval.prompts.records import task_files

EXP = config["experiment"]
RESULTS = f"results/{EXP}"
SEEDS = [int(s) for s in config["seeds"]]
SETTINGS = grid_settings(config)  # (backbone, task) pairs
# The grid with every point of the `sweep` section as a variant entry after the declared ones (jobs/sweep.py; an
# unknown setting, variant or trainer key fails here, naming it). Runs, configs and the planner read EXPERIMENT;
# the per-setting analysis (tables, figures, claims) keeps the declared variants of `config`: a point would
# otherwise count as a public-script preset in C12 and add its curves to every figure. claims_sensitivity reads them.
EXPERIMENT = with_sweep(config)
SWEEP = sweep_points(config)  # "backbone/task" -> swept variant -> its grid points
RUNS = [(b, t, v) for b, t in SETTINGS for v in EXPERIMENT["grid"][b][t]["variants"]]

# Fail at load time, naming the key, if any run does not resolve to a valid trainer config, or if a
# training job of several processes could not split its rollout into equal shares per process.
_MULTI = [r for r, options in config.get("resources", {}).items() if r != "train" and options.get("nodes", 1) > 1]
if _MULTI:
    raise ValueError(f"resources.{_MULTI[0]}.nodes: only the train rule runs over several nodes; remove the key")
_NODES = config.get("resources", {}).get("train", {}).get("nodes", 1)
_GPUS = config.get("resources", {}).get("train", {}).get("gpus", 0)
for _b, _t, _v in RUNS:
    _run = config_from_dict(resolve_run(EXPERIMENT, _v, f"{_b}/{_t}"))
    _samples, _processes = _run.prompts_per_iteration * _run.group_size, _NODES * max(1, _GPUS)
    if _samples % _processes:
        raise ValueError(f"{_b}/{_t}/{_v}: prompts_per_iteration x group_size ({_run.prompts_per_iteration} x "
                         f"{_run.group_size} = {_samples} samples) must be divisible by the training processes, "
                         f"resources.train.nodes x resources.train.gpus ({_NODES} x {_GPUS}: {_processes} processes, "
                         "one per GPU or per node without GPUs): each process rolls out an equal share")


def write_yaml(path, data):
    """Write plain data as YAML (resolved configs the python -m entry points read)."""
    with open(path, "w") as f:
        yaml.safe_dump(dict(data), f, sort_keys=False)


def res(rule_name, key, default):
    """A per-rule resource from the config's `resources` section."""
    return config.get("resources", {}).get(rule_name, {}).get(key, default)


SLURM_KEYS = ("cpus_per_task", "slurm_partition", "slurm_account", "slurm_extra")


def slurm_res(rule_name):
    """The SLURM-only resources the config sets for a rule (partition, account, cpus, extra flags), with its GPUs
    asked per node (`--gpus-per-node`: the plugin reads `gpus` only for the step inside the job) and its warning
    signal (`--signal=TERM@warning_seconds`)."""
    options = {k: v for k, v in config.get("resources", {}).get(rule_name, {}).items() if k in SLURM_KEYS}
    gpus = res(rule_name, "gpus", 0)
    if gpus > 0:
        options["slurm_extra"] = f"{options.get('slurm_extra', '')} --gpus-per-node={gpus}".strip()
    warning = res(rule_name, "warning_seconds", 0)
    if warning > 0:  # SIGTERM to the job's steps ahead of the limit: the trainer checkpoints and exits (guard/stop.py)
        options["slurm_extra"] = f"{options.get('slurm_extra', '')} --signal=TERM@{warning}".strip()
    return options


def train_launcher(nodes, gpus, cpus):
    """How a training job starts `-m guard.train`, replacing the job's shell (the trainer gets SLURM's signals,
    guard/stop.py): one process per GPU (guard/distributed.py); several nodes are one run through
    workflow/scripts/train_nodes.sh (srun: an `accelerate launch` per node of `cpus` CPUs, one process per node
    without GPUs)."""
    if nodes > 1:
        script = os.path.join(workflow.basedir, "workflow", "scripts", "train_nodes.sh")
        return f"exec {script} {nodes} {max(1, gpus)} {cpus} {gpus} -m"
    if gpus > 1:
        return f"{AGENT_PREFIX} accelerate launch --multi_gpu --num_processes {gpus} --num_machines 1 --mixed_precision no -m"
    return "exec python -m"


def nodes_res(rule_name):
    """The plugin's resources of a job over several nodes: `nodes` and one task per node (`tasks`), and `mpi` so
    that the job's command runs in the batch step and starts its own srun (empty for one node)."""
    nodes = res(rule_name, "nodes", 1)
    return {"nodes": nodes, "tasks": nodes, "mpi": "srun"} if nodes > 1 else {}


def first_variant(backbone, task):
    """The variant whose config defines a setting's evaluation set (every variant shares backbone and task)."""
    return next(iter(config["grid"][backbone][task]["variants"]))


def backbone_options(backbone):
    """The backbone block of a backbone's first setting (every task of a backbone shares its base model)."""
    task = next(t for b, t in SETTINGS if b == backbone)
    return resolve_run(EXPERIMENT, first_variant(backbone, task), f"{backbone}/{task}")["backbone"]


def analysis_settings(backbone, task):
    """What the analysis of one setting needs: gold names, the histogram pair and variants."""
    settings = {**config["analysis"], **(config["grid"][backbone][task].get("analysis") or {})}
    return {**settings, "variants": list(config["grid"][backbone][task]["variants"])}


def setting_scores(w):
    """Score summaries of every run of a setting and of its base model."""
    variants = config["grid"][w.backbone][w.task]["variants"]
    runs = expand(f"{RESULTS}/{w.backbone}/{w.task}/{{variant}}/seed{{seed}}/scores/summary.jsonl", variant=variants, seed=SEEDS)
    return runs + [f"{RESULTS}/{w.backbone}/{w.task}/base/scores/summary.jsonl"]


def setting_finals(w):
    variants = config["grid"][w.backbone][w.task]["variants"]
    return expand(f"{RESULTS}/{w.backbone}/{w.task}/{{variant}}/seed{{seed}}/final.json", variant=variants, seed=SEEDS)


def sweep_settings(backbone, task):
    """A setting's sweep for claims_sensitivity: per swept variant its keys and grid points (jobs.sweep.Point)."""
    return {v: {"keys": list(points[0].labels), "points": [p.to_dict() for p in points]}
            for v, points in SWEEP.get(f"{backbone}/{task}", {}).items()}


def sweep_inputs(w):
    """Final runs and scores of a setting's declared variants and sweep points, and its base model's scores."""
    variants = [*config["grid"][w.backbone][w.task]["variants"], *swept_entries(config, w.backbone, w.task)]
    return expand(f"{RESULTS}/{w.backbone}/{w.task}/{{variant}}/seed{{seed}}/{{f}}", variant=variants, seed=SEEDS,
                  f=["final.json", "scores/summary.jsonl"]) + [f"{RESULTS}/{w.backbone}/{w.task}/base/scores/summary.jsonl"]


def task_options(backbone, task):
    return resolve_run(EXPERIMENT, first_variant(backbone, task), f"{backbone}/{task}")["task"]


def prompt_files(backbone, task):
    """Every prompt file of a setting's task: training, test and final set (none for the nano task)."""
    options = task_options(backbone, task)
    if "prompts" not in options:
        return []
    final = [options["final_prompts"]] if options.get("final_prompts") else []
    return [str(p) for p in task_files(options["reward"], options["prompts"])] + final


# With `fetch_prompts: true` (clusters with internet) missing public prompt files are downloaded.
FETCH = (
    {f: task_options(b, t)["reward"] for b, t in SETTINGS for f in prompt_files(b, t) if not os.path.exists(f)}
    if config.get("fetch_prompts")
    else {}
)


def prompt_manifest(w):
    """The train rule's dependency on the validated prompt files, where the task has them."""
    return [f"{RESULTS}/prompts/{w.backbone}_{w.task}.json"] if prompt_files(w.backbone, w.task) else []


def comparisons(backbone, task):
    """Names of the setting's comparison tables (ablation, sampler pair, ...)."""
    return list(analysis_settings(backbone, task).get("comparisons") or {})


FIGURES = ["logratio_per_step", "clip_fractions", "grad_norm", "training_curves", "gold_vs_proxy",
           "samples_over_training"]


def histogram_variants(backbone, task):
    """The rows of a setting's log-ratio histograms: its baseline, GRPO-Guard and RatioNorm where run, its normalised one."""
    settings = analysis_settings(backbone, task)
    named = [settings["baseline"], "grpo_guard", "rationorm", settings["normalised"]]
    return list(dict.fromkeys(v for v in named if v in settings["variants"]))


def histogram_iterations(backbone, task):
    """The iterations whose per-sample log-ratios the setting's baseline runs save (histogram_iterations)."""
    baseline = analysis_settings(backbone, task)["baseline"]
    run = config_from_dict(resolve_run(EXPERIMENT, baseline, f"{backbone}/{task}"))
    return [i for i in run.histogram_iterations if i < run.iterations]


def histogram_figures(backbone, task):
    """One histogram figure per saved iteration of a setting (PNG and PDF)."""
    return [f"{RESULTS}/{backbone}/{task}/figures/histograms/iteration{i}.{ext}"
            for i in histogram_iterations(backbone, task) for ext in ("png", "pdf")]


def lora_exports():
    """The exported LoRA adapter of every run of a backbone trained through one (sd35, flux)."""
    return [f"{RESULTS}/{b}/{t}/{v}/seed{s}/lora" for b, t, v in RUNS for s in SEEDS
            if backbone_options(b)["name"] in ADAPTER_BACKBONES]


def all_targets():
    per_setting = [f"{RESULTS}/{b}/{t}" for b, t in SETTINGS]
    return (
        lora_exports()
        + [f"{d}/tables/{name}.{ext}" for d in per_setting for name in ("main", "claims") for ext in ("csv", "md", "tex")]
        + [f"{RESULTS}/{b}/{t}/tables/{c}.{ext}" for b, t in SETTINGS for c in comparisons(b, t) for ext in ("csv", "md", "tex")]
        + [f"{d}/figures/{name}.{ext}" for d in per_setting for name in FIGURES for ext in ("png", "pdf")]
        + [f"{d}/figures/claims_forest.png" for d in per_setting]
        + [f"{RESULTS}/{b}/{t}/{f}" for b, t in SETTINGS if f"{b}/{t}" in SWEEP
           for f in ("tables/claims_sensitivity.csv", "tables/claims_sensitivity.md", "figures/claims_sensitivity.png")]
        + [f for b, t in SETTINGS for f in histogram_figures(b, t)]
        + expand(f"{RESULTS}/tables/{{t}}.{{ext}}", t=["claims", "main", "paper_main", "main_vs_paper"], ext=["csv", "md", "tex"])
    )


localrules:
    plan,
    run_config,
    base_config,
    analysis_config,
    sweep_config,
    fetch_prompts,


VARIANT_NAMES = "|".join(re.escape(v) for v in sorted({v for _, _, v in RUNS}))  # sweep points hold . = + @


wildcard_constraints:
    backbone="|".join(sorted({b for b, _ in SETTINGS})),
    task="|".join(sorted({t for _, t in SETTINGS})),
    variant=VARIANT_NAMES,
    seed=r"\d+",
    iteration=r"\d+",
    run=rf"base|(?:{VARIANT_NAMES})/seed\d+",
    comparison="|".join(sorted({c for b, t in SETTINGS for c in comparisons(b, t)})) or "none",
