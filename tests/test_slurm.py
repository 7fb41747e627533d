"""The workflow on a real one-node SLURM (slurmctld + slurmd + munge on this machine) via the executor plugin.

Skipped, with the reason, where SLURM cannot run (not root, packages missing, a real slurm.conf).
Status queries use squeue: without slurmdbd, sacct fails and the plugin's sacct mode waits forever.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import cluster  # noqa: E402

from test_workflow import ENV, ROOT, TINY  # noqa: E402

pytestmark = pytest.mark.skipif(cluster.missing() is not None, reason=str(cluster.missing()))
SLURM_ARGS = ["--workflow-profile", str(ROOT / "workflow" / "profiles" / "slurm"), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "1"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    cluster.start(folder)
    yield folder
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


def test_killed_training_job_is_resubmitted_and_resumes(slurm, tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(TINY.read_text().replace("iterations: 3", "iterations: 400").replace("checkpoint_every: 2", "checkpoint_every: 5")
                      .replace("eval_every: 1", "eval_every: 100"))
    target = "results/tiny/nano/composition/flowgrpo/seed0/final.json"
    cmd = ["timeout", "-s", "KILL", "600", sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), target,
           "--configfile", str(config), *SLURM_ARGS]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    latest = tmp_path / "results/tiny/nano/composition/flowgrpo/seed0/checkpoints/latest"
    deadline = time.time() + 300
    while not latest.is_file() and time.time() < deadline:
        time.sleep(0.2)
    assert latest.is_file(), "no checkpoint appeared"
    killed_at = json.loads(latest.read_text())["checkpoint"]
    subprocess.run(["scancel", "--user", "root", "--name", "*"], check=False)
    subprocess.run(["scancel", "--user", "root"], check=True)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / target).is_file()
    log = (tmp_path / "results/tiny/logs/train/nano_composition_flowgrpo_seed0.log").read_text()
    assert "resuming" in log and "from ckpt-" in log, log[-2000:]
    resumed_from = int(log.split("from ckpt-")[1][:6])
    assert resumed_from >= int(killed_at.removeprefix("ckpt-"))
    train = [json.loads(line) for line in (tmp_path / "results/tiny/nano/composition/flowgrpo/seed0/train.jsonl").open()]
    assert [row["iteration"] for row in train] == list(range(400))
