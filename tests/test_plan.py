"""The cost planner: its FLOP count against a real trainer iteration, its memory estimate against a
measured CPU peak, the plan of the paper grid, and the one-GPU check at tiny size on the CPU."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench.cost import evaluation_flops, from_folder, iteration_flops, memory_per_gpu
from eval.nano import saturation
from eval.tasks import Task
from guard.backbones import build_backbone
from guard.backbones.tiny import build
from jobs.config import TrainConfig
from guard.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["a red apple on a table", "a blue car next to a tree", "two cats on a sofa"]
SAMPLERS = {
    "sd35": dict(sampler="flowgrpo", num_steps=3, trained_steps=2, trainable_steps=2, kl_beta=0.04),
    "flux": dict(sampler="dancegrpo", num_steps=4, trained_steps=2, trainable_steps=3, noise_level=0.3,
                 shared_group_noise=True, decode_x0_hat=True),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    return {"sd35": build("sd3", root / "sd3"), "flux": build("flux", root / "flux")}


def tiny_config(folder, name, **backbone):
    options = {"name": name, "path": str(folder), "resolution": 64, "mixed_precision": "no", "forward_batch": 4,
               "device": "cpu", **backbone}
    return TrainConfig(iterations=1, group_size=3, prompts_per_iteration=2, minibatches=2, micro_batch=2,
                       eval_per_prompt=2, eval_steps=2, eval_batch=4, drop_zero_advantage=False,
                       step_grad_norm_every=0, backbone=options, **SAMPLERS[name])


def counted(fn):
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, counter.get_total_flops()


@pytest.mark.parametrize("name", ["sd35", "flux"])
def test_planned_flops_equal_a_counted_trainer_iteration(folders, tmp_path, name):
    config = tiny_config(folders[name], name)
    task = Task(PROMPTS[:2], saturation, {"saturation": saturation}, eval_prompts=PROMPTS)
    with sdpa_kernel(SDPBackend.MATH):  # the CPU's fused attention kernel is not in the counter's table; its matmuls are
        trainer = Trainer(config, build_backbone(config.backbone), task, tmp_path / "run")
        trainer.prepare()
        (batch, _), rollout = counted(lambda: trainer.rollout(0))
        _, update = counted(lambda: trainer.train_on(batch, 0))
        _, evaluation = counted(lambda: trainer.evaluate(0))
    arch = from_folder(name, folders[name])
    planned = iteration_flops(config, arch)
    assert planned["rollout"] == pytest.approx(rollout, rel=0.05)
    assert planned["update"] == pytest.approx(update, rel=0.05)
    assert evaluation_flops(config, arch, len(PROMPTS) * config.eval_per_prompt) == pytest.approx(evaluation, rel=0.05)


MEASURE = """
import json, re, sys, torch
from guard.backbones import build_backbone
options, rows = json.loads(sys.argv[1]), int(sys.argv[2])
backbone = build_backbone(options)
x = torch.randn(rows, *backbone.latent_shape)
cond = backbone.encode(["a red apple on a table"] * rows)
with torch.no_grad():  # one-time allocations (thread pools, kernels' buffers) before the baseline
    backbone.velocity(x[:1], torch.full((1,), 0.5), cond.select(torch.tensor([0])))
def kib(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
open("/proc/self/clear_refs", "w").write("5")  # the peak RSS (VmHWM) starts again from the current RSS
before = kib("VmRSS")
backbone.velocity(x, torch.full((rows,), 0.5), cond).sum().backward()
print((kib("VmHWM") - before) * 1024)
"""


def measured_peak_rise(options, samples):
    """Rise of the peak RSS over the current one during one forward + backward of ``samples`` samples, in a
    fresh process; large allocations are mmap-ed (MALLOC_MMAP_THRESHOLD_) so that freed memory leaves the RSS."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(options), str(samples)], capture_output=True,
                          text=True, check=True, cwd=ROOT, env=env)
    return int(done.stdout.splitlines()[-1])


def test_activation_memory_estimate_is_within_a_factor_of_a_measured_cpu_peak(folders):
    """The estimate's activations (bytes saved for the backward of a micro-batch; fp32, tiny SD3 at 256 px) are
    within a factor 1.5 of the measured rise of the CPU peak RSS over one forward + backward, at 4 and 12
    samples (8 and 24 rows), and so is their growth between the two (measured here: 28 / 85 MB estimated,
    33 / 91 MB measured)."""
    arch = from_folder("sd35", folders["sd35"])
    config = tiny_config(folders["sd35"], "sd35", resolution=256, forward_batch=8)
    config.group_size, config.steps_per_backward = 12, 1  # one denoising step per forward/backward, as measured
    estimate, measured = [], []
    for samples in (4, 12):
        config.micro_batch = samples
        estimate.append(memory_per_gpu(config, arch)["activations"] * 2**30)
        measured.append(measured_peak_rise(config.backbone, samples))
    assert measured[1] - measured[0] > 30 * 2**20  # well above the allocator's noise (a few MB)
    for e, m in [*zip(estimate, measured), (estimate[1] - estimate[0], measured[1] - measured[0])]:
        assert 1 / 1.5 < e / m < 1.5
    config.steps_per_backward = 0  # every trained step of the micro-batch in one call: that many times the rows
    assert memory_per_gpu(config, arch)["activations"] * 2**30 == pytest.approx(config.trained_steps * estimate[1])


def test_plan_of_the_paper_grid_lists_every_training_job_with_its_gpus_and_prints_only_the_plan(tmp_path, capfd):
    done = subprocess.run([sys.executable, "-m", "bench.plan", "--configfile", "workflow/config/paper.yaml",
                           "--out", str(tmp_path / "plan")], cwd=ROOT)
    stdout, stderr = capfd.readouterr()
    assert done.returncode == 0, stderr[-3000:]
    # diffusers warns on every meta build of a transformer cast to a dtype (bench/cost.py silences it there)
    assert not [line for line in (stdout + stderr).splitlines() if "should be kept in float32" in line]
    assert stdout.startswith("# Plan of `paper`")
    plan = json.loads((tmp_path / "plan.json").read_text())
    train = [job for job in plan["jobs"] if job["rule"] == "train"]
    assert len(train) == 7 + 7 + 4 + 2 and all(job["gpus"] == 8 for job in train)
    assert {job["run"] for job in train} >= {"sd35/geneval/grpo_guard/seed0", "flux/pickscore/dancegrpo/seed0"}
    assert all(job["memory_gb"] > 0 and job["gpu_hours"] > 0 for job in train)
    assert plan["total"]["gpu_hours"] > sum(job["gpu_hours"] for job in train)  # plus sampling and scoring
    assert "assumed" in (tmp_path / "plan.md").read_text()
    assert "GPU-hours" in stdout


def test_gpu_check_runs_tiny_on_the_cpu(tmp_path, monkeypatch):
    from bench.plan import main

    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, "bench/gpu_check.py", "--size", "tiny", "--device", "cpu",
                           "--iterations", "2", "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"flowgrpo", "grpo_guard"} <= set(result["variants"])
    for row in result["variants"].values():
        assert row["time_sample"] > 0 and row["time_update"] > 0 and row["achieved_tflops"]["update"] > 0
    assert result["grpo_guard_over_baseline"]["time_total"] > 0 and result["device"]
    # the planner reads the measurement in place of its assumption for that backbone (SD3.5-M here); run in this
    # process (the CLI in a fresh one is the paper grid's test): its FLOP counts are then cached for the pilot's test
    monkeypatch.chdir(ROOT)
    assert main(["--configfile", "workflow/config/lite.yaml", "--throughput", str(out), "--out", str(tmp_path / "plan")]) == 0
    jobs = json.loads((tmp_path / "plan.json").read_text())["jobs"]
    train = [job for job in jobs if job["rule"] == "train"]
    assert all(job["throughput"].startswith("measured by bench/gpu_check.py on cpu") for job in train)
    update = result["variants"]["grpo_guard"]["achieved_tflops"]["update"]
    assert train[0]["gpu_hours"] > 200 * train[0]["tflop_update_per_iteration"] / update / 3600  # 200 updates alone


def test_lite_tier_dry_runs_and_fits_its_budget_on_one_gpu(tmp_path):
    lite = str(ROOT / "workflow" / "config" / "lite.yaml")
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-n", "--cores", "2",
                           "--configfile", lite], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (done.stdout + done.stderr).count("rule train:") == 4 * 2
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "plan", "--cores", "1",
                           "--configfile", lite], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    plan = json.loads((tmp_path / "results" / "lite" / "plan.json").read_text())
    train = [job for job in plan["jobs"] if job["rule"] == "train"]
    assert len(train) == 8 and all(job["gpus"] == 1 and job["memory_gb"] < 80 and not job["warnings"] for job in train)
    assert plan["total"]["gpu_hours"] <= 24


def test_evaluation_and_final_sets_are_capped_by_their_own_subset():
    from bench.plan import prompt_count

    task = {"reward": "ocr", "prompts": "no/such/folder", "eval_subset": 64, "final_subset": 256}
    assert prompt_count(task, "test") == 64 and prompt_count(task, "final") == 256
    assert prompt_count({"reward": "ocr", "prompts": "no/such/folder"}, "final") == 1018  # README "Data"
    geneval = {"reward": "geneval", "prompts": "no/such/folder", "final_prompts": "no/such/file.jsonl", "eval_subset": 256}
    assert prompt_count(geneval, "final") == 553 and prompt_count(geneval, "test") == 256


def test_diffusers_logging_is_quiet_only_while_models_are_built():
    from diffusers.utils import logging

    from bench.cost import diffusers_on_meta

    before = logging.get_verbosity()
    with diffusers_on_meta():
        assert logging.get_verbosity() == logging.ERROR and torch.empty(1).device.type == "meta"
    assert logging.get_verbosity() == before != logging.ERROR


# ----------------------------------------------------------------------------------------------
# Power plan from a pilot's claims tables (python -m bench.plan --pilot)

CLAIM_COLUMNS = ["id", "claim", "check", "variants", "per_seed", "seeds", "mean", "ci95_low", "ci95_high", "band_low",
                 "band_high", "strict", "verdict", "reason", "covers", "units", "seed_sd", "seeds_needed",
                 "p_improvement", "p_improvement_low", "p_improvement_high", "paper", "source"]
NAN, INF = float("nan"), float("inf")


def claim(id_, variants, verdict, mean, seed_sd, seeds=3, band=(0.0, INF), reason=""):
    """One row of a pilot's claims.csv."""
    values = {"id": id_, "claim": "words", "check": f"check {id_}", "variants": variants, "seeds": seeds,
              "mean": mean, "band_low": band[0], "band_high": band[1], "strict": False, "verdict": verdict,
              "reason": reason, "covers": "seeds x images", "seed_sd": seed_sd}
    return {c: values.get(c, NAN) for c in CLAIM_COLUMNS}


@pytest.fixture
def pilot(tmp_path):
    """results/<pilot>/nano/composition/tables/claims.csv with one row of each case, and the experiment's summary
    table (tables/claims.csv, other columns), which the power plan must not read."""
    rows = [claim("C1", "flowgrpo,grpo_guard", "reproduced", 0.3, 0.05),
            claim("C2", "flowgrpo,grpo_guard", "inconclusive", 0.05, 0.1),  # hand: 18 seeds (below)
            claim("C3", "temp_reweight,grpo_guard", "inconclusive", -0.5, 0.4, band=(-INF, 0.0)),
            claim("C4", "grpo_guard", "inconclusive", 0.05, NAN, seeds=1),  # one seed: judged within its run, no spread over seeds
            claim("C5", "grpo_guard", "not tested", NAN, NAN, seeds=0, reason="no seed has this value"),
            claim("C6", "mean_revised", "not tested", 5.0, 1.0, seeds=3, band=(-INF, INF), reason="no schedule-only prediction")]
    folder = tmp_path / "pilot"
    (folder / "nano" / "composition" / "tables").mkdir(parents=True)
    pd.DataFrame(rows, columns=CLAIM_COLUMNS).to_csv(folder / "nano" / "composition" / "tables" / "claims.csv",
                                                     index=False)
    (folder / "tables").mkdir()
    pd.DataFrame({"backbone": ["nano"], "task": ["composition"]}).to_csv(folder / "tables" / "claims.csv")
    return folder


def job(rule, run, gpu_hours):
    return {"rule": rule, "run": run, "gpu_hours": gpu_hours, "wall_hours": gpu_hours, "gpus": 1}


def synthetic_plan():
    """Two seeds; flowgrpo in sd35/ocr (10 + 1 GPU-hours a seed), grpo_guard in sd35/ocr and sd35/geneval (8 + 1
    each); scoring and base jobs cost 100 and must not count."""
    jobs = []
    for seed in (0, 1):
        for run, train in [("sd35/ocr/flowgrpo", 10.0), ("sd35/ocr/grpo_guard", 8.0), ("sd35/geneval/grpo_guard", 8.0)]:
            jobs += [job("train", f"{run}/seed{seed}", train), job("sample", f"{run}/seed{seed}", 1.0),
                     job("score", f"{run}/seed{seed}", 100.0)]
    jobs += [job("sample", f"sd35/{t}/base", 100.0) for t in ("ocr", "geneval")]
    return {"jobs": jobs}


def test_power_table_prices_the_seeds_a_decisive_verdict_needs(pilot):
    from bench.plan import DECIDED, UNKNOWN_SPREAD, power_table, read_pilot

    table = power_table(read_pilot(pilot), synthetic_plan()).set_index("id")
    assert list(table.index) == ["C1", "C2", "C3", "C4", "C5", "C6"] and set(table.setting) == {"nano/composition"}
    assert table.loc["C1", "seeds needed"] == DECIDED and math.isnan(table.loc["C1", "GPU-hours"])
    # C2: t_{n-1} 0.1 / sqrt(n) < 0.05 first at n = 18 (t_16 2.120 / sqrt 17 = 0.514; t_17 2.110 / sqrt 18 = 0.497)
    assert table.loc["C2", "seeds needed"] == 18
    assert table.loc["C2", "GPU-hours per seed"] == pytest.approx(11 + 18)  # grpo_guard's two settings: 2 x (8 + 1)
    assert table.loc["C2", "GPU-hours"] == pytest.approx(18 * 29) and table.loc["C2", "note"] == ""
    # C3: temp_reweight is not planned: priced at the plan's mean per variant ((11 + 18) / 2), and said so
    assert table.loc["C3", "GPU-hours per seed"] == pytest.approx(14.5 + 18)
    assert "temp_reweight" in table.loc["C3", "note"] and "mean per variant" in table.loc["C3", "note"]
    assert isinstance(table.loc["C3", "seeds needed"], int)
    assert table.loc["C4", "seeds needed"] == UNKNOWN_SPREAD and math.isnan(table.loc["C4", "GPU-hours"])
    assert table.loc["C5", "seeds needed"] == "not measured in the pilot: no seed has this value"
    # a value without a band to judge it by (C5 of an ablation) has nothing a seed count could decide
    assert table.loc["C6", "seeds needed"] == "not measured in the pilot: no schedule-only prediction"


def test_plan_with_a_pilot_prints_and_writes_the_power_plan(pilot, tmp_path, capsys, monkeypatch):
    from bench.plan import UNKNOWN_SPREAD, main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "plan"
    assert main(["--configfile", "workflow/config/lite.yaml", "--pilot", str(pilot), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.index("# Plan of `lite`") < printed.index("# Power plan of `lite`") and UNKNOWN_SPREAD in printed
    power = pd.read_csv(f"{out}_power.csv").set_index("id")
    assert Path(f"{out}_power.md").read_text() in printed
    jobs = pd.DataFrame(json.loads(out.with_suffix(".json").read_text())["jobs"])
    per_seed = jobs[jobs.rule.isin(["train", "sample"]) & jobs.run.str.contains("/(?:flowgrpo|grpo_guard)/")]
    assert power.loc["C2", "GPU-hours"] == pytest.approx(18 * per_seed.gpu_hours.sum() / 2)  # lite.yaml: 2 seeds


def test_a_pilot_without_claims_tables_fails_naming_the_folder(tmp_path):
    from bench.plan import main

    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        main(["--configfile", str(ROOT / "workflow" / "config" / "lite.yaml"), "--pilot", str(tmp_path)])


# ----------------------------------------------------------------------------------------------
# Time limits: resubmissions past resources.train.runtime (warning_seconds, resubmissions)

def limited(seconds, runtime=60, iteration=10.0, evaluation=50.0, checkpoint=5.0, **train):
    """bench.plan.time_limit of a job planned at ``seconds`` under resources.train ``runtime`` (minutes) and ``train``;
    checkpoints every 30 iterations, evaluations every 60; its longest stop is 10 + 50 + 5 = 65 s."""
    from bench.plan import time_limit

    experiment = {"resources": {"train": {"runtime": runtime, **train}}}
    return time_limit(experiment, TrainConfig(checkpoint_every=30, eval_every=60), seconds, iteration, evaluation,
                      checkpoint)


def test_a_run_past_its_runtime_needs_the_resubmissions_its_jobs_time_gives():
    from bench.plan import PROFILE, needed_resubmissions, profile_retries

    # a job of 60 min trains 3600 - 600 = 3000 s: 3 h need 4 jobs, 3 resubmissions; exactly 2 jobs' worth needs 1
    assert limited(3 * 3600, warning_seconds=600, resubmissions=5)["resubmissions"] == 3
    assert limited(6000, warning_seconds=600, resubmissions=5)["resubmissions"] == 1
    assert limited(3000, warning_seconds=600)["resubmissions"] == 0
    # under the runtime but past runtime - warning_seconds: stopped once all the same
    assert limited(3300, warning_seconds=600)["resubmissions"] == 1
    assert needed_resubmissions(10_800, 3000) == 3 and needed_resubmissions(10_800, 3000, lost=1000) == 4
    # resubmissions unset: the SLURM profile's retries
    retries = yaml.safe_load(PROFILE.read_text())["retries"]
    assert limited(3 * 3600, warning_seconds=600)["allowed_resubmissions"] == retries == profile_retries() == 2


def test_a_run_its_resubmissions_cover_is_a_note_and_one_they_do_not_a_warning():
    from bench.plan import markdown

    covered = limited(3 * 3600, warning_seconds=600, resubmissions=3)
    assert not covered["warnings"] and covered["notes"] == [
        "planned 3.0 h > resources.train.runtime 1 h: continues in 3 resubmissions (of 3 allowed), resuming from its "
        "checkpoint (start-up not counted)"]
    short = limited(3 * 3600, warning_seconds=600, resubmissions=2)
    assert not short["notes"] and short["warnings"] == [
        "planned 3.0 h > resources.train.runtime 1 h: will fail: needs 3 resubmissions, 2 allowed: set "
        "resources.train.resubmissions: 3"]
    # rendered: the note under Notes, not among the Warnings (which say none)
    job = {"rule": "train", "run": "sd35/ocr/flowgrpo/seed0", "gpus": 8, "iterations": 100,
           "tflop_rollout_per_iteration": 1.0, "tflop_update_per_iteration": 1.0, "tflop_per_evaluation": 1.0,
           "memory_gb_without_checkpointing": 1.0, "memory_gb_with_checkpointing": 1.0, "wall_hours": 3.0,
           "gpu_hours": 24.0, "throughput": "assumed", **covered}
    total = {"gpu_hours": 24.0, "train_gpu_hours": 24.0, "wall_hours_one_job_at_a_time": 3.0,
             "wall_hours_all_jobs_in_parallel": 3.0, "gpus_all_jobs_in_parallel": 8}
    text = markdown({"experiment": "x", "gpu_memory_gb": 80, "jobs": [job], "total": total})
    warnings, notes = text.split("## Warnings")[1].split("## Notes")
    assert warnings.strip() == "- none" and "continues in 3 resubmissions" in notes
    assert "| 3 (3)" in text.split("## Warnings")[0]  # the table's resubmissions (allowed)
    assert "65 s (sd35/ocr/flowgrpo/seed0); resources.train.warning_seconds 600 covers it" in notes


def test_without_warning_seconds_each_stop_loses_its_iterations_since_the_checkpoint():
    # killed at the limit: up to 30 iterations and the evaluation among them are lost, 30 x 10 + 50 = 350 s a stop,
    # so a job keeps 3250 s; the last one trains its full hour: ceil((7200 - 3600) / 3250) = 2 (1 without the loss)
    limits = limited(2 * 3600, resubmissions=2)
    assert limits["resubmissions"] == 2 and not limits["warnings"]
    assert limits["notes"] == [
        "planned 2.0 h > resources.train.runtime 1 h: continues in 2 resubmissions (of 2 allowed), resuming from its "
        "checkpoint (start-up not counted); each stop at the limit loses up to 30 iterations (0.1 planned h): set "
        "resources.train.warning_seconds to at least 300 (its longest iteration, 60 s with an evaluation at the "
        "planned throughput, plus a checkpoint's write, 5 s at an assumed 0.1 GB/s, rounded up to whole 5 min)"]
    assert limited(3600)["resubmissions"] == 0 and not limited(3600)["notes"]  # never stopped: nothing lost
    # warning_seconds shorter than the longest stop (65 s): a stop may still be killed before its checkpoint
    early = limited(2 * 3600, warning_seconds=30, resubmissions=2)
    assert "warning_seconds 30 < its longest stop (65 s)" in early["notes"][0] and early["resubmissions"] == 2
    assert "loses" not in limited(2 * 3600, warning_seconds=65, resubmissions=2)["notes"][0]


def test_warning_seconds_of_the_whole_runtime_is_flagged():
    for warning in (3600, 4000):  # runtime 60 min
        limits = limited(600, warning_seconds=warning)
        assert limits["resubmissions"] is None and not limits["notes"]
        assert limits["warnings"] == [f"resources.train.warning_seconds {warning} >= resources.train.runtime 60 min "
                                      f"(3600 s): every job would stop as soon as it starts"]
    assert not limited(600, warning_seconds=3000)["warnings"]  # 600 s left: enough for this job


def test_the_paper_grids_longest_pickscore_runs_plan_as_resumed():
    """paper.yaml's SD3.5-M PickScore Flow-GRPO runs (48.9 h against a 48 h runtime) continue in one resubmission of
    the profile's two; its warning_seconds covers their longest stop, and without it the note says what a stop loses."""
    from bench.plan import load_throughput, train_job
    from jobs.config import config_from_dict, resolve_run

    paper = yaml.safe_load((ROOT / "workflow" / "config" / "paper.yaml").read_text())
    assert paper["resources"]["train"]["warning_seconds"] > 0 and "resubmissions" not in paper["resources"]["train"]

    def planned(experiment, variant):
        config = config_from_dict(resolve_run(experiment, variant, "sd35/pickscore"))
        return train_job(experiment, f"sd35/pickscore/{variant}/seed0", config, load_throughput(None), 80.0)

    for variant in ("flowgrpo", "flowgrpo_public"):
        job = planned(paper, variant)
        assert job["wall_hours"] > 48 and job["resubmissions"] == 1 and job["allowed_resubmissions"] == 2
        assert not job["warnings"] and job["notes"] == [
            "planned 48.9 h > resources.train.runtime 48 h: continues in 1 resubmission (of 2 allowed), resuming from "
            "its checkpoint (start-up not counted)"]
        assert job["stop_seconds"] < paper["resources"]["train"]["warning_seconds"]
    train = {**paper["resources"]["train"], "warning_seconds": 0}
    unwarned = {**paper, "resources": {**paper["resources"], "train": train}}
    assert "each stop at the limit loses up to 30 iterations" in planned(unwarned, "flowgrpo")["notes"][0]
