"""Data parallelism: a real 2-process CPU run (gloo, ``accelerate launch``) gives the 1-process update,
on one machine and on two "machines" (two launchers, ``--num_machines 2``, over loopback).

This file is also the worker that the launches run (``__main__``): each process trains every case
of CASES into ``<out>/<case>`` with ``Processes.launched()`` (on two machines: MACHINE_RUNS); the
tests train the same cases in this process alone and compare. A process group on the CPU needs
``--multi_gpu`` (torchrun); ``accelerate launch --cpu --num_processes 2`` starts a single process.

A lost machine: ``python -m guard.train`` on two machines, one of them frozen or killed mid-run; the other exits
within ``collective_timeout`` and one process resumes the run.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from eval.prompts.draw import KRepeatSampler
from eval.tasks import build_task
from guard.backbones.nano import NanoBackbone, NanoConfig, load_or_pretrain
from guard.stop import AGENT_PREFIX
from guard.distributed import Processes, Shard, sample_shard
from guard.train import NonFiniteLossError, Trainer
from jobs.config import ConfigError, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=64, cond_dim=32, depth=1, steps=300, batch=64, warmup=10)
# lr 1e-5: Adam's first steps move a weight by about lr whatever its gradient's size, so weights
# whose gradient is near Adam's eps turn float-rounding differences into differences of order lr
BASE = dict(iterations=2, eval_every=2, checkpoint_every=2, eval_per_prompt=2, histogram_iterations=[1],
            prompts_per_iteration=4, group_size=4, minibatches=2, inner_epochs=2, lr=1e-5)
CASES = {
    # GRPO-Guard with group std; the first group of iteration 0 (process 0's) scores a constant, so
    # its advantages are 0 and drop_zero_advantage leaves the processes uneven counts
    "group_std": {},
    # the FlowGRPO baseline with global std and KL, 5 random steps of 9 per sample, shared group noise
    "global_std": dict(variant="flowgrpo", adv_std="global", kl_beta=0.04, trained_steps=5, shared_group_noise=True,
                       minibatches=3),
}


def train_case(weights: Path, out: Path, case: str, processes: Processes, constant_reward: float = 0.0,
               **overrides) -> None:
    """Train ``case`` into ``out / case``; the first group's prompt of iteration 0 always scores ``constant_reward``.

    Processes other than the main one start from shifted weights, which the trainer must replace.
    """
    config = TrainConfig(**{**BASE, **CASES[case], **overrides})
    task = build_task("nano", {"reward": "composition", "gold": {"n_per_prompt": 300}})
    sampler = KRepeatSampler(task.prompts, config.prompts_per_iteration, config.group_size, config.seed)
    constant = sampler.draw(0).prompts[0]

    def reward(images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        held = torch.tensor([p == constant for p in prompts])
        return torch.where(held, constant_reward, task.reward(images, prompts))

    backbone = NanoBackbone(load_or_pretrain(weights, NanoConfig(**TINY))[0])
    if processes.rank > 0:  # the trainer starts every process from the main process's weights
        with torch.no_grad():
            for p in backbone.trainable_parameters():
                p.add_(0.1)
    Trainer(config, backbone, replace(task, reward=reward), out / case, processes=processes).run()


SD3 = {"name": "sd35", "resolution": 64, "mixed_precision": "no", "max_sequence_length": 16, "device": "cpu",
       "lora": {"rank": 2, "alpha": 4, "targets": ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"]}}


def train_sd3(pipeline: Path, out: Path, processes: Processes) -> None:
    """Two iterations of GRPO-Guard on a tiny SD3 folder (CFG 4.5, LoRA) into ``out / 'sd3'``."""
    from eval.nano import saturation
    from eval.tasks import Task
    from guard.backbones import build_backbone

    backbone = {**SD3, "path": str(pipeline)}
    config = TrainConfig(iterations=2, sampler="flowgrpo", num_steps=3, trained_steps=2, trainable_steps=2,
                         prompts_per_iteration=2, group_size=2, minibatches=2, eval_every=2, eval_per_prompt=1,
                         eval_steps=2, checkpoint_every=2, lr=1e-4, drop_zero_advantage=False, backbone=backbone)
    task = Task(["a red apple", "a blue car", "a green tree"], saturation, {"saturation": saturation})
    Trainer(config, build_backbone(backbone), task, out / "sd3", processes=processes).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--mixed_precision", "no", "--dynamo_backend", "no"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny nano base weights (and a tiny SD3 folder beside them)."""
    torch.set_flush_denormal(True)
    weights = tmp_path_factory.mktemp("nano") / "base.safetensors"
    load_or_pretrain(weights, NanoConfig(**TINY))
    from guard.backbones.tiny import build

    build("sd3", weights.parent / "sd3")
    return weights


@pytest.fixture(scope="module")
def runs(weights, tmp_path_factory):
    """(weights, folder of the 2-process runs, their stdout): the worker run by ``accelerate launch`` with 2 processes."""
    out = tmp_path_factory.mktemp("two")
    cmd = [*LAUNCH, "--num_machines", "1", "--main_process_port", str(free_port()), __file__, str(weights), str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    ranks = "\n".join(line for line in done.stderr.splitlines() if line.startswith("[rank"))
    assert done.returncode == 0, ranks[-6000:]
    return weights, out, done.stdout


MACHINE_RUNS = {  # folder: overrides of the group_std case, trained on two machines of one process each
    "whole": {},  # 2 whole groups per process
    "split": {"prompts_per_iteration": 3},  # 6 samples per process: group 1 spans the two machines
}


@pytest.fixture(scope="module")
def machines(weights, tmp_path_factory):
    """(weights, folder, stdout of machine 0): the worker on two "machines", one ``accelerate launch --num_machines 2
    --machine_rank r`` each, meeting at 127.0.0.1; it resumes a run that one process started (``relayout``)."""
    out = tmp_path_factory.mktemp("machines")
    train_case(weights, out / "relayout", "group_std", Processes(), iterations=1)
    port = str(free_port())
    launchers = [subprocess.Popen([*LAUNCH, "--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip",
                                   "127.0.0.1", "--main_process_port", port, __file__, str(weights), str(out), "machines"],
                                  cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for rank in (0, 1)]
    done = [launcher.communicate(timeout=900) for launcher in launchers]
    for launcher, (_, stderr) in zip(launchers, done):
        assert launcher.returncode == 0, stderr[-6000:]
    return weights, out, done[0][0]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("case", CASES)
def test_two_processes_give_the_one_process_update(runs, tmp_path, case):
    weights, two, _ = runs
    train_case(weights, tmp_path, case, Processes())
    one = tmp_path
    checkpoint = "checkpoints/ckpt-000002/model.safetensors"
    a, b = load_file(one / case / checkpoint), load_file(two / case / checkpoint)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    train_one, train_two = rows(one / case / "train.jsonl"), rows(two / case / "train.jsonl")
    assert [r["iteration"] for r in train_two] == [0, 1]  # written once, by the main process
    for r1, r2 in zip(train_one, train_two, strict=True):
        assert (r1["kept"], r1["updates"]) == (r2["kept"], r2["updates"])
        for key in ("reward_mean", "reward_std", "adv_abs_mean"):  # a half batch rounds the velocity net differently
            assert r2[key] == pytest.approx(r1[key], rel=1e-5, abs=1e-6), key
        assert r2["loss"] == pytest.approx(r1["loss"], abs=1e-6)
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5)
    assert train_one[0]["kept"] == 12  # the constant group is dropped: process 0 trains on 4, process 1 on 8
    # the per-step gradient norms are all-reduced: the main process logs the 1-process values (of the
    # minibatches it holds samples of: here it holds none of one update of 72 step rows)
    norms = {(r["iteration"], r["update"], r["step"]): r["step_grad_norm"]
             for r in rows(one / case / "steps.jsonl") if "step_grad_norm" in r}
    logged = [r for r in rows(two / case / "steps.jsonl") if "step_grad_norm" in r]
    assert len(logged) == ({"group_std": 63, "global_std": 0}[case])  # random steps: no single-step increments
    for r in logged:
        assert r["step_grad_norm"] == pytest.approx(norms[(r["iteration"], r["update"], r["step"])], rel=1e-4)
    # each process samples its half of the evaluation images (a half batch rounds the velocity net differently)
    for r1, r2 in zip(rows(one / case / "eval.jsonl"), rows(two / case / "eval.jsonl"), strict=True):
        assert r2 == pytest.approx(r1, rel=1e-4, abs=1e-6)


def test_two_processes_give_the_one_process_update_on_a_tiny_sd3_with_lora(runs, tmp_path):
    weights, two, _ = runs
    train_sd3(weights.parent / "sd3", tmp_path, Processes())
    checkpoint = "sd3/checkpoints/ckpt-000002/model.safetensors"
    a, b = load_file(tmp_path / checkpoint), load_file(two / checkpoint)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert len(a) > 0 and diff < 1e-6
    for r1, r2 in zip(rows(tmp_path / "sd3" / "train.jsonl"), rows(two / "sd3" / "train.jsonl"), strict=True):
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5) and r1["grad_norm"] > 0
    for r1, r2 in zip(rows(tmp_path / "sd3" / "eval.jsonl"), rows(two / "sd3" / "eval.jsonl"), strict=True):
        assert r2 == pytest.approx(r1, rel=1e-5)


def test_a_two_process_run_resumes_from_its_checkpoint(runs, tmp_path):
    weights, two, stdout = runs
    assert stdout.count(f"resuming {two / 'resumed' / 'group_std'} from ckpt-000001 at iteration 1") == 1  # main only
    train_case(weights, tmp_path, "group_std", Processes())
    checkpoint = "group_std/checkpoints/ckpt-000002/model.safetensors"
    a, b = load_file(tmp_path / checkpoint), load_file(two / "resumed" / checkpoint)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    assert [r["iteration"] for r in rows(two / "resumed" / "group_std" / "train.jsonl")] == [0, 1]


def assert_same_run(one: Path, two: Path) -> None:
    """Two runs of the group_std case end with the same weights (to 1e-6) and log the same iterations (as above)."""
    checkpoint = "checkpoints/ckpt-000002/model.safetensors"
    a, b = load_file(one / checkpoint), load_file(two / checkpoint)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6
    train_one, train_two = rows(one / "train.jsonl"), rows(two / "train.jsonl")
    assert [r["iteration"] for r in train_two] == [0, 1]
    for r1, r2 in zip(train_one, train_two, strict=True):
        assert (r1["kept"], r1["updates"]) == (r2["kept"], r2["updates"])
        for key in ("reward_mean", "reward_std", "adv_abs_mean"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-5, abs=1e-6), key
        assert r2["loss"] == pytest.approx(r1["loss"], abs=1e-6)
        assert r2["grad_norm"] == pytest.approx(r1["grad_norm"], rel=1e-5)
    for r1, r2 in zip(rows(one / "eval.jsonl"), rows(two / "eval.jsonl"), strict=True):
        assert r2 == pytest.approx(r1, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("run", MACHINE_RUNS)
def test_two_machines_give_the_one_process_update(machines, tmp_path, run):
    weights, out, _ = machines
    train_case(weights, tmp_path, "group_std", Processes(), **MACHINE_RUNS[run])
    assert_same_run(tmp_path / "group_std", out / run / "group_std")
    # the constant group (group 0, machine 0's) is dropped: 16 - 4 samples, or 12 - 4 with group 1 split
    assert rows(out / run / "group_std" / "train.jsonl")[0]["kept"] == {"whole": 12, "split": 8}[run]


def test_a_run_resumes_on_two_machines_from_a_checkpoint_of_either_layout(machines, tmp_path):
    weights, out, stdout = machines
    train_case(weights, tmp_path, "group_std", Processes())
    for started_on in ("resumed", "relayout"):  # two machines, or one process
        assert stdout.count(f"resuming {out / started_on / 'group_std'} from ckpt-000001 at iteration 1") == 1
        assert_same_run(tmp_path / "group_std", out / started_on / "group_std")


def test_each_machine_gets_the_values_of_its_own_first_process(machines):
    _, out, _ = machines
    for rank in (0, 1):  # the metric servers' URLs: each machine's own
        assert json.loads((out / f"node-{rank}.json").read_text()) == {"node_main": True, "value": rank, "main": 0}


def test_a_non_finite_loss_on_one_process_stops_every_process(runs):
    _, two, _ = runs
    assert "non-finite loss (nan) at iteration 0" in (two / "nan-0.txt").read_text()  # process 0 holds the NaN group
    assert "non-finite loss on another process at iteration 0" in (two / "nan-1.txt").read_text()
    assert not (two / "nan" / "group_std" / "checkpoints").exists()


def test_indivisible_prompts_stop_every_process_with_the_key(runs):
    _, two, _ = runs
    for rank in (0, 1):
        message = (two / f"error-{rank}.txt").read_text()
        assert "'prompts_per_iteration' x 'group_size' (3 x 3 = 9 samples)" in message
        assert "divisible by the number of processes (2)" in message


def test_blocks_gather_in_order_and_values_are_shared_on_every_process(runs):
    _, two, _ = runs
    for rank in (0, 1):
        gathered = json.loads((two / f"blocks-{rank}.json").read_text())
        assert gathered["3"] == [[[float(i)] * 2] * 2 for i in range(3)]
        assert gathered["1"] == [[[0.0] * 2] * 2]
        assert gathered["shared"] == {"url": "http://127.0.0.1:17000"}  # the main process's value everywhere


def test_evaluation_blocks_cover_the_set_in_order():
    class Rank(Processes):
        def __init__(self, rank):
            super().__init__()
            self.rank, self.world = rank, 4

    blocks = [Rank(r).block(5) for r in range(4)]
    assert blocks == [slice(0, 2), slice(2, 4), slice(4, 5), slice(5, 5)]
    assert [i for b in blocks for i in range(5)[b]] == list(range(5))


def test_shards_are_contiguous_equal_blocks_of_samples():
    assert [sample_shard(4, 3, r, 2) for r in (0, 1)] == [Shard(0, 6, 12), Shard(6, 12, 12)]
    assert [sample_shard(3, 4, r, 2) for r in (0, 1)] == [Shard(0, 6, 12), Shard(6, 12, 12)]  # group 1 is split
    assert sample_shard(48, 24, 31, 32) == Shard(1116, 1152, 1152)  # the authors' 48 x 24 images on 32 GPUs
    mine, local = Shard(6, 12, 12).take(torch.tensor([7, 2, 11, 6]))
    assert mine.tolist() == [True, False, True, True] and local.tolist() == [1, 5, 0]
    with pytest.raises(ConfigError, match="prompts_per_iteration' x 'group_size' \\(3 x 3 = 9 samples\\)"):
        sample_shard(3, 3, 0, 2)


def test_a_sigterm_to_every_process_of_a_launch_stops_it_at_an_iteration_boundary(weights, tmp_path):
    """SLURM signals every process of a job step: with guard.stop.AGENT_PREFIX (as the train rule starts an
    `accelerate launch`) the launcher ignores SIGTERM instead of killing its workers 30 s later, and the workers finish
    their iteration, checkpoint and exit 75."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**BASE, "iterations": 100, "eval_every": 100, "checkpoint_every": 100,
                                      "backbone": {"name": "nano", "weights": str(weights), "pretrain": TINY},
                                      "task": {"reward": "composition", "gold": {"n_per_prompt": 300}}}))
    run = tmp_path / "run"
    launch = " ".join([*LAUNCH, "--main_process_port", str(free_port()), "-m", "guard.train", "--config", str(config),
                       "--threads", "1", "--out", str(run)])
    proc = subprocess.Popen(["bash", "-c", f"{AGENT_PREFIX} {launch}"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    train = run / "train.jsonl"
    deadline = time.monotonic() + 240
    while not (train.is_file() and train.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        process.send_signal(signal.SIGTERM)  # the launcher and both workers, as slurmstepd signals a step
    output, _ = proc.communicate(timeout=120)
    done = train.read_text().count("\n")
    assert f"stopped by SIGTERM after iteration {done}: checkpoint ckpt-{done:06d} written" in output, output[-3000:]
    assert "death signal" not in output, output[-3000:]  # the agent did not shut its workers down
    assert "exitcode  : 75" in output, output[-3000:]  # they exited on their own, with the trainer's code
    assert [d.name for d in (run / "checkpoints").glob("ckpt-*")] == [f"ckpt-{done:06d}"]


LOST_TIMEOUT = 15
"""``collective_timeout`` (s) of the lost-node runs: above the few seconds one process may wait at the start for a
slower one (two launches sharing 2 busy cores), and short, since the survivor waits it out."""
LOST_MARGIN = 10
"""Seconds the survivor (worker and launcher) may take past ``LOST_TIMEOUT``: its collective times out, it raises,
tears down its interpreter, and its launcher notices (0.1 s polls) and exits. Measured 1.4-2.7 s on 2 busy cores
(a killed node: 1.2-3.4 s in all): some 4x headroom, and far below any library default (gloo's 30 min)."""


def progress(run: Path) -> tuple[list[int], int]:
    """The iterations of ``run``'s finished checkpoints and the number of rows in its train.jsonl."""
    done = sorted(int(p.name.removeprefix("ckpt-")) for p in (run / "checkpoints").glob("ckpt-" + "[0-9]" * 6))
    log = run / "train.jsonl"
    return done, len(log.read_text().splitlines()) if log.is_file() else 0


def without_times(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("time_")}


def end_launches(launchers: list[subprocess.Popen]) -> None:
    """Kill what is left of each launch (launcher and workers), stopped or not."""
    for launcher in launchers:
        try:
            tree = [psutil.Process(launcher.pid), *psutil.Process(launcher.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for process in tree:
            try:
                process.kill()
                process.send_signal(signal.SIGCONT)
            except psutil.NoSuchProcess:
                pass
        launcher.wait()


@pytest.mark.parametrize("lost", ["stopped", "killed"])
def test_the_survivors_of_a_lost_machine_exit_and_one_process_resumes_the_run(weights, tmp_path, lost):
    """``python -m guard.train`` on two machines; mid-run, machine 1 is lost: frozen (SIGSTOP: a power loss or
    a network partition, its connections stay open) or killed (its connections reset). Machine 0 must exit on its
    own, non-zero and saying why: a frozen peer after ``collective_timeout``, a killed one at once. The same command
    on one process then resumes from the last checkpoint and ends as an uninterrupted one-process run."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**BASE, "iterations": 10, "collective_timeout": LOST_TIMEOUT,
                                      "backbone": {"name": "nano", "weights": str(weights), "pretrain": TINY},
                                      "task": {"reward": "composition", "gold": {"n_per_prompt": 300}}}))
    train = ["-m", "guard.train", "--config", str(config), "--threads", "1", "--out"]
    run, port = tmp_path / "run", str(free_port())
    logs = [tmp_path / f"machine-{rank}.log" for rank in (0, 1)]
    launchers, reference = [], None
    try:
        try:
            for rank, log in enumerate(logs):
                with log.open("w") as sink:
                    launchers.append(subprocess.Popen(
                        [*LAUNCH, "--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip",
                         "127.0.0.1", "--main_process_port", port, *train, str(run)],
                        cwd=ROOT, env=ENV, stdout=sink, stderr=subprocess.STDOUT))
            # mid-run: a checkpoint written and an iteration logged after it (2 processes take ~1 s an iteration)
            deadline = time.monotonic() + 300
            while not ((done := progress(run))[0] and done[1] > done[0][-1]):
                assert all(launcher.poll() is None for launcher in launchers), logs[0].read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint within 300 s"
                time.sleep(0.05)
            # each machine: its launcher (torch's elastic agent) and its worker (psutil: a dependency of accelerate)
            machines = [[psutil.Process(launcher.pid), *psutil.Process(launcher.pid).children(recursive=True)]
                        for launcher in launchers]
            assert all(len(machine) >= 2 for machine in machines), machines
            for process in machines[1]:
                process.send_signal(signal.SIGSTOP if lost == "stopped" else signal.SIGKILL)
            lost_at = time.monotonic()
            if lost == "stopped":  # meanwhile, the uninterrupted one-process run of the same config
                reference = subprocess.Popen([sys.executable, *train, str(tmp_path / "one")], cwd=ROOT, env=ENV,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                launchers[0].wait(timeout=LOST_TIMEOUT + LOST_MARGIN)
            except subprocess.TimeoutExpired:
                pytest.fail(f"machine 0 still runs {LOST_TIMEOUT + LOST_MARGIN} s after machine 1 was {lost} "
                            f"(collective_timeout {LOST_TIMEOUT} s)")
            exited = time.monotonic() - lost_at
            survivor = logs[0].read_text()
            assert launchers[0].returncode != 0, survivor[-3000:]
            assert not any(p.is_running() for p in machines[0][1:]), "machine 0's worker outlived its launcher"
            if lost == "stopped":  # the survivor waited out its collective (it may have entered it a step earlier)
                assert exited > LOST_TIMEOUT - 2, survivor[-3000:]
                assert f"Timed out waiting {LOST_TIMEOUT * 1000}ms" in survivor, survivor[-3000:]
            else:  # the peer's connections reset: no wait
                assert exited < LOST_TIMEOUT, survivor[-3000:]
                assert re.search("Connection (reset|closed) by peer", survivor), survivor[-3000:]
            assert "guard.train FAILED" in survivor  # the launcher names the failed worker
            assert ("error: a collective with the other processes failed" in survivor
                    and f"collective_timeout ({LOST_TIMEOUT} s)" in survivor and "resubmit the job" in survivor)
        finally:  # the lost machine (stopped or not) and anything left of machine 0
            end_launches(launchers)
        print(f"machine 1 {lost}: machine 0 exited after {exited:.1f} s (rc {launchers[0].returncode})")
        if lost == "killed":  # the run folder is that of a stopped machine 1: its resume is tested there
            return
        assert not (run / "final.json").exists()
        logged = progress(run)[1]
        # the same command on one process resumes the run from its last checkpoint and finishes it
        resumed = subprocess.run([sys.executable, *train, str(run)], cwd=ROOT, env=ENV, capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        start = int(re.search(rf"resuming {re.escape(str(run))} from ckpt-\d+ at iteration (\d+)", resumed.stdout)[1])
        assert 0 < start <= logged < 10
        print(f"resumed at iteration {start}: {logged - start} logged iteration(s) redone")
        _, err = reference.communicate(timeout=300)
        assert reference.returncode == 0, err[-3000:]
    finally:
        if reference is not None and reference.poll() is None:
            reference.kill()
            reference.wait()
    # the same rows but for wall-clock times: those before the checkpoint come from 2 processes, whose gradient sums
    # round differently (as in assert_same_run), and the rest continue from their weights
    for name, iterations, rel in (("train.jsonl", range(10), 1e-5), ("eval.jsonl", range(0, 11, 2), 1e-4)):
        a, b = rows(tmp_path / "one" / name), rows(run / name)
        assert [r["iteration"] for r in b] == [r["iteration"] for r in a] == list(iterations)
        for r1, r2 in zip(a, b):
            r2 = without_times(r2)
            if r2["iteration"] == start and name == "train.jsonl":  # the first row after a resume names its checkpoint
                assert r2.pop("resumed_from", f"ckpt-{start:06d}") == f"ckpt-{start:06d}"
            assert r2 == pytest.approx(without_times(r1), rel=rel, abs=1e-6), (name, r2["iteration"])
    assert json.loads((run / "final.json").read_text()) == pytest.approx(
        json.loads((tmp_path / "one" / "final.json").read_text()), rel=1e-4, abs=1e-6)
    checkpoint = "checkpoints/ckpt-000010/model.safetensors"
    a, b = load_file(tmp_path / "one" / checkpoint), load_file(run / checkpoint)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def on_machines(weights: Path, out: Path, processes: Processes) -> None:
    """The worker of the ``machines`` fixture: MACHINE_RUNS, a run started and resumed here, the resume of a
    run one process started, and each machine's first process's value."""
    for run, overrides in MACHINE_RUNS.items():
        train_case(weights, out / run, "group_std", processes, **overrides)
    train_case(weights, out / "resumed", "group_std", processes, iterations=1)
    train_case(weights, out / "resumed", "group_std", processes)
    train_case(weights, out / "relayout", "group_std", processes)
    shared = {"node_main": processes.is_node_main, "value": processes.share_in_node(processes.rank),
              "main": processes.share(processes.rank)}
    (out / f"node-{processes.rank}.json").write_text(json.dumps(shared))


if __name__ == "__main__":  # one process of the launch in the ``runs`` (or ``machines``) fixture
    from jobs.cli import init_torch

    weights, out = map(Path, sys.argv[1:3])
    processes = Processes.launched(timedelta(hours=2))
    init_torch(1)
    if sys.argv[3:] == ["machines"]:
        on_machines(weights, out, processes)
        sys.exit(0)
    for name in CASES:
        train_case(weights, out, name, processes)
    train_sd3(weights.parent / "sd3", out, processes)
    train_case(weights, out / "resumed", "group_std", processes, iterations=1)  # then resumed from its checkpoint:
    train_case(weights, out / "resumed", "group_std", processes)
    try:  # group 0 (process 0's) scores NaN: only process 0's loss is non-finite
        train_case(weights, out / "nan", "group_std", processes, constant_reward=float("nan"))
    except NonFiniteLossError as err:
        (out / f"nan-{processes.rank}.txt").write_text(str(err))
    gathered = {}
    for n in (3, 1):  # blocks of 2 + 1 rows, and of 1 + 0 rows (an empty block does not know the row shape)
        block = torch.arange(float(n))[processes.block(n)]
        part = block.reshape(-1, 1, 1).expand(-1, 2, 2).contiguous() if len(block) else torch.zeros(0, 1, 1)
        gathered[n] = processes.gather_blocks(part, n).tolist()
    gathered["shared"] = processes.share({"url": f"http://127.0.0.1:{17000 + processes.rank}"})
    (out / f"blocks-{processes.rank}.json").write_text(json.dumps(gathered))
    try:
        backbone = NanoBackbone(load_or_pretrain(weights, NanoConfig(**TINY))[0])
        task = build_task("nano", {"reward": "composition"})
        indivisible = TrainConfig(**{**BASE, "prompts_per_iteration": 3, "group_size": 3})  # 9 samples
        Trainer(indivisible, backbone, task, out / "indivisible", processes=processes)
    except ConfigError as err:
        (out / f"error-{processes.rank}.txt").write_text(str(err))
