"""The Snakemake workflow: lint, dry run of the default, a seconds-long end-to-end run, report, incremental rerun."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "workflow_tiny.yaml"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def snakemake(*args, cwd=ROOT, timeout=600):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_lint_is_clean():
    done = snakemake("--lint")
    assert done.returncode == 0, done.stderr
    assert "Lints for" not in done.stdout + done.stderr


def job_counts(text):
    """The 'Job stats' table of a dry run as {rule: count}."""
    table = text.split("Job stats:")[1].split("Reasons:")[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines() if len(line.split()) == 2
            and line.split()[1].isdigit()}


def test_dry_run_of_the_default_lists_every_run(tmp_path):
    done = snakemake("-n", "--cores", "2", "--configfile", str(ROOT / "workflow" / "config" / "nano.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = job_counts(done.stdout + done.stderr)
    # every variant x seed of workflow/config/nano.yaml, one base model, one analysis each
    assert counts["train"] == 7 * 3 and counts["run_config"] == 7
    assert counts["base"] == 1 and counts["tables"] == 1 and counts["figures"] == 1 and counts["summary"] == 1
    assert counts["histograms"] == 3  # one figure per saved iteration (histogram_iterations: [0, 40, 79])


def test_dry_run_of_the_paper_grid_lists_every_job(tmp_path):
    done = snakemake("-n", "--cores", "2", "--configfile", str(ROOT / "workflow" / "config" / "paper.yaml"), cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    counts = job_counts(text)
    # SD3.5-M x {GenEval, OCR} x (5 methods + 2 public presets), SD3.5-M x PickScore x 4,
    # FLUX.1-dev x PickScore x {DanceGRPO, GRPO-Guard}; one seed
    assert counts["train"] == 7 + 7 + 4 + 2 and counts["base"] == 2 and counts["tables"] == 4
    assert counts["figures"] == 4 and counts["score"] == counts["train"] + 4
    assert counts["histograms"] == 4 * 3  # early, middle and late saved iteration of each setting
    assert counts["export_lora"] == counts["train"]  # every SD3.5-M / FLUX run's LoRA as a peft folder
    for run in ("sd35/geneval/grpo_guard/seed0", "sd35/ocr/mean_revised/seed0", "flux/pickscore/dancegrpo/seed0",
                "sd35/pickscore/grpo_guard_public/seed0"):
        assert f"results/paper/{run}/final.json" in text
    # the prompt manifests are validated before any train or evaluation job that reads the prompts
    assert counts["prompts_manifest"] == 4
    # per-rule SLURM resources from the config reach the jobs (paper.yaml: train on partition gpu, 32 cpus)
    train_resources = re.findall(r"rule train:\n(?:    [^\n]*\n)*?    resources: ([^\n]*)", text)
    assert len(train_resources) == counts["train"]
    assert all("slurm_partition=gpu" in r and "cpus_per_task=32" in r and "gpus=8" in r for r in train_resources)
    readers = re.findall(r"rule (?:train|sample|sample_base):\n    input: ([^\n]*)", text)
    assert len(readers) == counts["train"] + counts["sample"] + counts["sample_base"]
    assert all("results/paper/prompts/" in inputs for inputs in readers)


def test_broken_config_fails_at_load_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("flowgrpo: {clip_eps: 8.5e-3}", "flowgrpo: {clip_epsilon: 8.5e-3}"))
    done = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "clip_epsilon" in done.stdout + done.stderr
    bad.write_text(TINY.read_text().replace("seeds: [0]", "seeds: zero"))
    done = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "seeds" in done.stdout + done.stderr


def test_tiny_experiment_end_to_end_with_report(tmp_path):
    done = snakemake("--cores", "2", "--configfile", str(TINY), "--workflow-profile",
                     str(ROOT / "workflow" / "profiles" / "default"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results" / "tiny"
    main = pd.read_csv(results / "tables" / "main.csv", index_col=[0, 1, 2])
    assert list(main.index.get_level_values("variant")) == ["base", "flowgrpo", "grpo_guard"]
    assert (results / "tables" / "paper_main.md").is_file()
    assert (results / "tables" / "main_vs_paper.md").is_file()  # empty: the nano setting is not in the paper's table
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert {f"C{i}" for i in range(1, 13)} <= set(claims.id)
    # one seed: an interval over the run's evaluation images or iterations only (analysis/resample.py)
    assert set(claims.verdict) <= {"reproduced", "not reproduced", "inconclusive", "not tested"}
    setting = results / "nano" / "composition"
    for name in ("grad_norm", "clip_fractions", "training_curves", "gold_vs_proxy", "histograms/iteration1",
                 "histograms/iteration2"):
        assert (setting / "figures" / f"{name}.png").stat().st_size > 1000
        assert (setting / "figures" / f"{name}.pdf").is_file()
    # the histograms of each saved iteration: the baseline's and GRPO-Guard's rows, both signs per step
    log = (results / "logs" / "histograms_nano_composition_2.log").read_text()
    assert {"flowgrpo", "grpo_guard", "A>0", "A<0"} <= set(log.split())
    assert (setting / "tables" / "ablation.tex").is_file()
    for run in ("base", "flowgrpo/seed0", "grpo_guard/seed0"):
        assert (setting / run / "eval_images" / "images.jsonl").is_file()
        assert (setting / run / "scores" / "scores.csv").is_file()
    assert (results / "benchmarks" / "train" / "nano_composition_flowgrpo_seed0.tsv").is_file()
    # the sweep's second point ran as a variant of its own, outside the main table (above), and the verdict map has
    # the rows that name grpo_guard at both points
    assert (setting / "grpo_guard@lr=x4" / "seed0" / "scores" / "summary.jsonl").is_file()
    sensitivity = pd.read_csv(setting / "tables" / "claims_sensitivity.csv")
    assert set(sensitivity.point) == {"grpo_guard", "grpo_guard@lr=x4"}
    assert set(sensitivity[sensitivity.default].point) == {"grpo_guard"} and {"C7", "C11"} <= set(sensitivity.id)
    assert (setting / "figures" / "claims_sensitivity.png").stat().st_size > 1000
    assert not any(p for p in tmp_path.iterdir() if p.name not in ("results", ".snakemake"))
    report = snakemake("--configfile", str(TINY), "--report", "results/tiny/report.html", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (results / "report.html").stat().st_size > 10000
    assert "claims_sensitivity.md" in (results / "report.html").read_text()  # category Claims, after claims.md
    again = snakemake("-n", "--cores", "2", "--configfile", str(TINY), cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr
    # a changed variant reruns only that variant's runs and the analysis
    changed = tmp_path / "changed.yaml"
    changed.write_text(TINY.read_text().replace("grpo_guard: {clip_eps: 1.7e-4}", "grpo_guard: {clip_eps: 2.0e-4}"))
    assert changed.read_text() != TINY.read_text()
    dry = snakemake("-n", "--cores", "2", "--configfile", str(changed), cwd=tmp_path)
    text = dry.stdout + dry.stderr
    assert "grpo_guard/seed0/final.json" in text and "flowgrpo/seed0/final.json" not in text.split("Job stats")[0]


SHARED = ROOT.parent / "shared" / "datasets"


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the public prompt sets are not at {SHARED}")
def test_prompt_manifest_rule_on_the_real_files(tmp_path):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "flow_grpo").symlink_to(SHARED / "flow_grpo", target_is_directory=True)
    paper = str(ROOT / "workflow" / "config" / "paper.yaml")
    done = snakemake("results/paper/prompts/flux_pickscore.json", "--cores", "1", "--configfile", paper, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    manifest = json.loads((tmp_path / "results/paper/prompts/flux_pickscore.json").read_text())
    assert [f["n_records"] for f in manifest["files"]] == [25432, 2048]
    # the OCR training file is not in the public copy here: the job fails naming it and its source
    failed = snakemake("results/paper/prompts/sd35_ocr.json", "--cores", "1", "--configfile", paper, cwd=tmp_path)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "train.txt" in text and "flow_grpo" in text


def test_fetch_prompts_option_adds_a_download_job_per_missing_file(tmp_path):
    overlay = tmp_path / "fetch.yaml"
    overlay.write_text("fetch_prompts: true\n")
    paper = str(ROOT / "workflow" / "config" / "paper.yaml")
    done = snakemake("-n", "--cores", "1", "--configfile", paper, str(overlay), cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    # GenEval train + test + the 553 evaluation prompts, OCR train + test, PickScore train + test (shared by two settings)
    assert job_counts(text)["fetch_prompts"] == 7
    assert "datasets/geneval/evaluation_metadata.jsonl" in text and "datasets/flow_grpo/ocr/train.txt" in text
    manifest_inputs = re.findall(r"rule prompts_manifest:\n    input: ([^\n]*)", text)
    assert any("datasets/flow_grpo/geneval/train_metadata.jsonl" in i and "evaluation_metadata" in i for i in manifest_inputs)


PAPER_4NODES = [str(ROOT / "workflow" / "config" / f) for f in ("paper.yaml", "paper_4nodes.yaml")]


def test_the_paper_grid_on_four_nodes_runs_each_training_job_on_4_nodes_of_8_gpus(tmp_path):
    done = snakemake("-n", "--cores", "2", "--configfile", *PAPER_4NODES, cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    train = re.findall(r"rule train:\n(?:    [^\n]*\n)*?    resources: ([^\n]*)", text)
    assert len(train) == job_counts(text)["train"] == 20
    for resources in train:  # sbatch --nodes=4 --ntasks=4 --gpus-per-node=8 (the SLURM plugin's resources)
        assert "nodes=4" in resources and "tasks=4" in resources and "mpi=srun" in resources and "gpus=8" in resources
        assert "slurm_extra=--gpus-per-node=8" in resources and "slurm_partition=gpu" in resources
    # the rest of each job stays on one node
    other = re.findall(r"rule (?:base|sample|score):\n(?:    [^\n]*\n)*?    resources: ([^\n]*)", text)
    assert other and not any("nodes=" in r for r in other)


def test_the_paper_grid_on_four_nodes_starts_one_launcher_per_node(tmp_path):
    target = "results/paper/sd35/geneval/grpo_guard/seed0/final.json"
    done = snakemake(target, "-n", "-p", "--cores", "2", "--configfile", *PAPER_4NODES, cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    # 4 nodes, 8 processes per node, 32 CPUs per node (cpus_per_task), 8 GPUs per node
    assert f"{ROOT}/workflow/scripts/train_nodes.sh 4 8 32 8 -m guard.train --config" in text


def test_a_rollout_that_cannot_be_split_over_the_processes_fails_at_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    # 46 x 24 = 1104 samples: 138 per GPU on one node of 8, but not a whole number on 4 x 8
    bad.write_text((ROOT / "workflow" / "config" / "paper.yaml").read_text().replace(
        "prompts_per_iteration: 48", "prompts_per_iteration: 46"))
    assert snakemake("-n", "--configfile", str(bad), cwd=tmp_path).returncode == 0
    done = snakemake("-n", "--configfile", str(bad), PAPER_4NODES[1], cwd=tmp_path)
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "prompts_per_iteration x group_size (46 x 24 = 1104 samples)" in text
    assert "resources.train.nodes x resources.train.gpus (4 x 8: 32 processes" in text


def test_nodes_on_a_rule_other_than_train_fails_at_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.read_text().replace("resources:\n", "resources:\n  sample: {nodes: 2}\n"))
    done = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert done.returncode != 0 and "resources.sample.nodes: only the train rule" in done.stdout + done.stderr


def test_a_training_job_over_several_nodes_outside_slurm_says_what_to_do():
    script = ROOT / "workflow" / "scripts" / "train_nodes.sh"
    env = {k: v for k, v in ENV.items() if not k.startswith("SLURM_")}
    done = subprocess.run([str(script), "2", "1", "1", "0", "-m", "guard.train"], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "resources.train.nodes = 2 needs a SLURM job" in done.stderr
