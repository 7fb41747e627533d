"""Faults of long runs on the tiny nano trainer: a stop signal, damaged checkpoints, a full disk.

Each fault ends in a resume whose logs equal an uninterrupted run's (but for wall-clock times and
the resume record of train.jsonl). The time limit on a real SLURM is in test_slurm.py, a lost node
in test_distributed.py.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import guard.checkpoint
from guard.checkpoint import CheckpointError
from guard.stop import STOPPED_EXIT, Stopped, StopSignals
from test_train import TINY, _trainer, same_logs, tiny  # noqa: F401  (tiny: the module's fixture)

LONG = dict(iterations=6, checkpoint_every=2, eval_every=2)


class Kill(Exception):
    """A job killed while it runs (raised from the reward)."""


def at_call(n: int, action):
    """A composition reward that runs ``action`` on its ``n``-th call (one call per rollout and per evaluation)."""
    from eval.nano import composition

    calls = {"n": 0}

    def reward(images, prompts):
        calls["n"] += 1
        if calls["n"] == n:
            action()
        return composition(images, prompts)

    return reward


def kill():
    raise Kill


@pytest.fixture(scope="module")
def straight(tiny, tmp_path_factory):  # noqa: F811
    """An uninterrupted run of LONG."""
    out = tmp_path_factory.mktemp("straight")
    _trainer(tiny, out, **LONG).run()
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_stops_the_run_after_its_iteration_with_a_checkpoint(tiny, straight, tmp_path, sig):  # noqa: F811
    # calls: evaluation 0, rollouts 0 and 1, evaluation 2, rollout 2 (the 5th): the signal comes amid iteration 2
    stopped = _trainer(tiny, tmp_path, reward=at_call(5, lambda: os.kill(os.getpid(), sig)), **LONG)
    with StopSignals() as stop, pytest.raises(Stopped) as info:
        stopped.run(stop)
    assert info.value.iteration == 3 and info.value.reason == sig.name
    assert (tmp_path / "checkpoints" / "ckpt-000003").is_dir()  # off the checkpoint_every grid: written for the stop
    resumed = _trainer(tiny, tmp_path, **LONG)
    resumed.run()
    assert resumed.start == 3  # no iteration done twice
    assert same_logs(straight, tmp_path) == {"resumed_from": ["ckpt-000003"], "stopped_by": [sig.name]}
    assert signal.getsignal(sig) is signal.SIG_DFL  # the handlers are gone outside the block


def test_the_cli_exits_75_at_the_iteration_boundary_after_sigterm(tiny, tmp_path):  # noqa: F811
    weights, _, _ = tiny
    config = {"iterations": 400, "eval_every": 400, "checkpoint_every": 400, "eval_per_prompt": 2, "group_size": 4,
              "backbone": {"name": "nano", "weights": str(weights), "pretrain": TINY},
              "task": {"reward": "composition", "gold": {"n_per_prompt": 300}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "guard.train", "--config", str(path), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    train = out / "train.jsonl"
    deadline = time.time() + 240
    while not (train.is_file() and train.read_text().count("\n") >= 3) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == STOPPED_EXIT, output[-2000:]
    done = train.read_text().count("\n")
    assert 3 <= done < 400
    assert f"stopped by SIGTERM after iteration {done}: checkpoint ckpt-{done:06d} written" in output
    assert [d.name for d in (out / "checkpoints").glob("ckpt-*")] == [f"ckpt-{done:06d}"]


def damage_file(path: Path, how: str) -> None:
    """Truncate a file to half, or flip one bit in its middle."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        data[len(data) // 2] ^= 0x10
        path.write_bytes(data)


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tiny, straight, tmp_path, capsys, how):  # noqa: F811
    with pytest.raises(Kill):  # calls: ..., evaluation 4 (7th), rollout 4 (8th), rollout 5 (9th)
        _trainer(tiny, tmp_path, reward=at_call(9, kill), **LONG).run()
    root = tmp_path / "checkpoints"
    assert sorted(d.name for d in root.glob("ckpt-*")) == ["ckpt-000002", "ckpt-000004"]  # keep_checkpoints: 2
    damage_file(root / "ckpt-000004" / "model.safetensors", how)
    resumed = _trainer(tiny, tmp_path, **LONG)
    resumed.run()
    assert resumed.start == 2
    line = "checkpoint damaged: ckpt-000004: model.safetensors does not match its checksum (kept as .damaged); " \
           "resuming from ckpt-000002"
    assert line in capsys.readouterr().out.splitlines()
    assert (root / "ckpt-000004.damaged").is_dir()
    assert same_logs(straight, tmp_path) == {"resumed_from": ["ckpt-000002"],
                                             "damaged": [["ckpt-000004: model.safetensors does not match its checksum"]]}


def test_no_intact_checkpoint_is_a_one_line_error_naming_the_files(tiny, tmp_path):  # noqa: F811
    with pytest.raises(Kill):
        _trainer(tiny, tmp_path, reward=at_call(9, kill), **LONG).run()
    root = tmp_path / "checkpoints"
    damage_file(root / "ckpt-000004" / "ema.safetensors", "bit-flipped")
    damage_file(root / "ckpt-000002" / "optimizer.safetensors", "truncated")
    with pytest.raises(CheckpointError) as info:
        _trainer(tiny, tmp_path, **LONG).run()
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"no intact checkpoint in {root} (ckpt-000004: ema.safetensors does not match its checksum; "
                       "ckpt-000002: optimizer.safetensors does not match its checksum): restore its files from a "
                       f"backup, or delete {tmp_path} to start the run over")


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs (root, mount allowed); skipped otherwise (the injected ENOSPC test still runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_names_the_path_the_free_and_the_needed_space(tiny, straight, small_disk):  # noqa: F811
    out = small_disk / "run"
    filler = small_disk / "filler"

    def fill():  # amid iteration 2 (after the checkpoint of 2): leave 64 KiB free
        filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 64 * 1024))

    with pytest.raises(CheckpointError) as info:
        _trainer(tiny, out, reward=at_call(5, fill), **LONG).run()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"no space for the checkpoint of iteration 4: {out / 'checkpoints'} has 0.")
    assert "MiB free, a checkpoint needs " in message and message.endswith("rerun: the run resumes from ckpt-000002, "
                                                                           "which is intact")
    assert sorted(d.name for d in (out / "checkpoints").iterdir()) == ["ckpt-000002", "latest"]
    filler.unlink()
    resumed = _trainer(tiny, out, **LONG)
    resumed.run()
    assert resumed.start == 2
    assert same_logs(straight, out) == {"resumed_from": ["ckpt-000002"]}


def test_running_out_of_space_while_writing_keeps_the_previous_checkpoint(tiny, straight, tmp_path, monkeypatch):  # noqa: F811
    real = guard.checkpoint.save_file
    calls = {"n": 0}

    def save_file(tensors, path):  # the disk fills up amid the second checkpoint (another job wrote to it)
        calls["n"] += 1
        if calls["n"] == 4 + 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(tensors, path)

    monkeypatch.setattr(guard.checkpoint, "save_file", save_file)
    with pytest.raises(CheckpointError, match=r"^no space for the checkpoint of iteration 4: .* MiB free, a checkpoint "
                                              r"needs .*: the run resumes from ckpt-000002, which is intact$"):
        _trainer(tiny, tmp_path, **LONG).run()
    assert sorted(d.name for d in (tmp_path / "checkpoints").iterdir()) == ["ckpt-000002", "latest"]  # no .tmp left
    monkeypatch.setattr(guard.checkpoint, "save_file", real)
    _trainer(tiny, tmp_path, **LONG).run()
    assert same_logs(straight, tmp_path) == {"resumed_from": ["ckpt-000002"]}
