"""The workflow on a real SLURM (slurmctld + two slurmd + munge on this machine) via the executor plugin.

Both nodes are this host (distinct node names and slurmd ports on loopback), so a 2-node training
job really goes through sbatch --nodes=2, srun and one accelerate launch per node, but not through
two machines' networks or GPUs. Where the installed SLURM cannot run two slurmd, the cluster has one
node and the 2-node test checks the submitted command lines, then skips the rest with the reason.
Skipped, with the reason, where SLURM cannot run (not root, packages missing, a real slurm.conf).
Status queries use squeue: without slurmdbd, sacct fails and the plugin's sacct mode waits forever.
"""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import cluster  # noqa: E402

from test_workflow import ENV, ROOT, TINY  # noqa: E402

pytestmark = pytest.mark.skipif(cluster.missing() is not None, reason=str(cluster.missing()))
TRAINING_SECONDS = 25
"""Training time of the time-limit test's run. SLURM checks for warnings every 30 s or so, so a 1-minute job with a
30-s warning gets it at most 30 s after its start, some 15 s after the trainer's start-up: 25 s of training need
two jobs or more (three or four seen)."""


def iterations_lasting(seconds: float, folder: Path) -> int:
    """How many iterations of the tiny config train for ``seconds`` on this machine (measured on 100 of them)."""
    config = yaml.safe_load(TINY.read_text())
    train = {**config["train"], "iterations": 100, "eval_every": 1000, "checkpoint_every": 1000, "variant": "flowgrpo"}
    train["backbone"] = {**train["backbone"], "weights": str(folder / "nano.safetensors")}
    path = folder / "calibrate.yaml"
    path.write_text(yaml.safe_dump(train))
    done = subprocess.run([sys.executable, "-m", "guard.train", "--config", str(path), "--out", str(folder / "run"),
                           "--threads", "1"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (folder / "run" / "train.jsonl").open()]
    per_iteration = sum(row["time_sample"] + row["time_reward"] + row["time_update"] for row in rows) / len(rows)
    return math.ceil(seconds / per_iteration)


SLURM_ARGS = ["--workflow-profile", str(ROOT / "workflow" / "profiles" / "slurm"), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "1"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """(folder, why the cluster has one node or None): two nodes where the installed SLURM runs two slurmd here."""
    folder = tmp_path_factory.mktemp("slurm")
    try:
        cluster.start(folder, nodes=2)
        one_node = None
    except (RuntimeError, subprocess.CalledProcessError) as err:
        cluster.stop(folder)
        one_node = f"the installed SLURM did not run two slurmd on this host: {err}"
        cluster.start(folder)
    yield folder, one_node
    subprocess.run(["scancel", "--user", "root"], check=False)
    cluster.stop(folder)


def snakemake(args, cwd, timeout=600):
    cmd = ["timeout", "-s", "KILL", str(timeout), sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)


def test_tiny_experiment_runs_through_slurm(slurm, tmp_path):
    done = snakemake(["--configfile", str(TINY), *SLURM_ARGS], tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (tmp_path / "results/tiny/nano/composition/tables/main.md").is_file()
    # every job went through sbatch (config rules are local rules)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", done.stdout + done.stderr)
    assert len(submitted) >= 2 + 2 + 3 * 2, (done.stdout + done.stderr)[-3000:]


def test_a_job_at_its_time_limit_checkpoints_is_resubmitted_and_ends_as_an_uninterrupted_run(slurm, tmp_path):
    """A 1-minute job with a warning 30 s ahead (SIGTERM): the trainer stops at an iteration boundary with a
    checkpoint (exit 75), snakemake resubmits it, and the run resumes there until it is done."""
    (tmp_path / "calibrate").mkdir()
    iterations = iterations_lasting(TRAINING_SECONDS, tmp_path / "calibrate")
    config = tmp_path / "long.yaml"
    config.write_text(TINY.read_text()
                      .replace("train: {runtime: 5, mem_mb: 1000, gpus: 0, threads: 1}",
                               "train: {runtime: 1, mem_mb: 1000, gpus: 0, threads: 1, warning_seconds: 30, "
                               "resubmissions: 8}")
                      .replace("iterations: 3", f"iterations: {iterations}")
                      .replace("checkpoint_every: 2", "checkpoint_every: 100000").replace("eval_every: 1", "eval_every: 200"))
    target = "results/tiny/nano/composition/flowgrpo/seed0/final.json"
    done = snakemake([target, "--configfile", str(config), "--verbose", *SLURM_ARGS], tmp_path, timeout=900)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    assert all("--signal=TERM@30" in line for line in text.splitlines() if "sbatch call:" in line and "rule_train" in line)
    run = tmp_path / target.removesuffix("/final.json")
    rows = [json.loads(line) for line in (run / "train.jsonl").open()]
    resumes = [row for row in rows if "resumed_from" in row]
    # each resubmission resumed at the iteration where the job before stopped on SIGTERM: no iteration redone
    assert resumes and all(row["resumed_from"] == f"ckpt-{row['iteration']:06d}" and row["stopped_by"] == "SIGTERM"
                           for row in resumes), resumes
    stops = [row["iteration"] for row in resumes]
    jobs = re.findall(r"submitted with SLURM jobid (\d+)", text)
    # the base model, the stopped train jobs and the last one (configs are local); a job whose warning came before the
    # trainer started stops with nothing done
    assert len(jobs) >= 1 + len(stops) + 1
    states = [subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout for job in jobs[1:]]
    # the stopped jobs ended before their limit (the trainer's exit 75 fails the job step), not in TIMEOUT
    assert all("JobState=FAILED" in state for state in states[:-1]), states
    # the same config, seed and base weights in one uninterrupted process
    reference = tmp_path / "one"
    resolved = "results/tiny/configs/nano/composition/flowgrpo.yaml"
    one = subprocess.run([sys.executable, "-m", "guard.train", "--config", resolved, "--seed", "0", "--out",
                          str(reference), "--threads", "1"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    straight = [json.loads(line) for line in (reference / "train.jsonl").open()]
    assert [row["iteration"] for row in rows] == list(range(iterations))
    drop = ("resumed_from", "stopped_by")
    assert [{k: v for k, v in row.items() if not k.startswith("time_") and k not in drop} for row in rows] == \
        [{k: v for k, v in row.items() if not k.startswith("time_")} for row in straight]
    for log in ("steps.jsonl", "eval.jsonl"):
        assert (run / log).read_text() == (reference / log).read_text()
    assert json.loads((run / "final.json").read_text()) == json.loads((reference / "final.json").read_text())
    print(f"time limit: {len(stops)} stops after iterations {stops} of {iterations}; {len(jobs)} jobs submitted")


def test_a_two_node_training_job_ends_as_the_one_process_run(slurm, tmp_path):
    _, one_node = slurm
    config = tmp_path / "nodes.yaml"
    config.write_text(TINY.read_text().replace("train: {runtime: 5, mem_mb: 1000, gpus: 0, threads: 1}",
                                               "train: {runtime: 5, mem_mb: 1000, gpus: 0, threads: 1, nodes: 2}"))
    assert "nodes: 2" in config.read_text()
    target = "results/tiny/nano/composition/flowgrpo/seed0/final.json"
    done = snakemake([target, "--configfile", str(config), "--verbose", *SLURM_ARGS], tmp_path, timeout=900)
    text = done.stdout + done.stderr
    # one job of 2 nodes with a task (an accelerate launch) each; the command runs in the batch step and starts srun
    sbatch = [line for line in text.splitlines() if "sbatch call:" in line and "rule_train" in line]
    assert len(sbatch) >= 1 and all(" --nodes=2" in c and " --ntasks=2" in c and "--cpus-per-task=1" in c for c in sbatch)
    assert "train_nodes.sh 2 1 1 0 -m guard.train" in text, text[-3000:]
    if one_node:
        pytest.skip(one_node)
    assert done.returncode == 0, text[-3000:]
    run = tmp_path / target.removesuffix("/final.json")
    log = (tmp_path / "results/tiny/logs/train/nano_composition_flowgrpo_seed0.log").read_text()
    assert "node 0 (node1) of 2, rendezvous at 127.0.0.1:" in log and "node 1 (node2) of 2" in log  # one launcher each
    # the same config, seed and base weights in one process here
    reference = tmp_path / "one"
    resolved = "results/tiny/configs/nano/composition/flowgrpo.yaml"
    one = subprocess.run([sys.executable, "-m", "guard.train", "--config", resolved, "--seed", "0", "--out", str(reference),
                          "--threads", "1"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = (load_file(r / "checkpoints/ckpt-000003/model.safetensors") for r in (reference, run))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    rows = [[json.loads(line) for line in (r / "train.jsonl").open()] for r in (reference, run)]
    assert [r["iteration"] for r in rows[1]] == [0, 1, 2]
    for r1, r2 in zip(*rows, strict=True):
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5) and r2["kept"] == r1["kept"]
    final = [json.loads((r / "final.json").read_text()) for r in (reference, run)]
    assert final[1] == pytest.approx(final[0], rel=1e-4, abs=1e-6)
