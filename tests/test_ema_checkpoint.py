"""EMA schedule and update, and the atomic checkpoint round trip, by hand-computed values."""

import json

import pytest
import torch

from guard.checkpoint import (CHECKSUMS, CheckpointError, damage, file_sha256, latest_checkpoint, load_checkpoint,
                              load_ema_weights, save_checkpoint, write_json_atomic)
from guard.ema import EMA, ema_decay


@pytest.mark.parametrize("n, expected", [(0, 0.1), (1, 2 / 11), (5, 0.4), (80, 0.9), (10**6, 0.9)])
def test_ema_decay_warms_up_to_the_cap(n, expected):
    assert ema_decay(n, 0.9) == pytest.approx(expected)


def test_ema_decay_never_exceeds_a_lower_cap():
    assert ema_decay(0, 0.05) == 0.05
    assert ema_decay(3, 0.3) == 0.3


def test_ema_updates_every_k_steps_with_the_warm_up_decay():
    p = torch.nn.Parameter(torch.tensor([0.0, 2.0]))
    ema = EMA([p], cap=0.9, every=2)
    with torch.no_grad():
        p.copy_(torch.tensor([10.0, 4.0]))
    ema.step()  # step 1: no update
    assert torch.equal(ema.shadow[0], torch.tensor([0.0, 2.0])) and ema.updates == 0
    ema.step()  # step 2: decay 0.1 -> shadow = 0.1 * shadow + 0.9 * p
    assert torch.allclose(ema.shadow[0], torch.tensor([9.0, 3.8]))
    assert (ema.optimizer_steps, ema.updates) == (2, 1)
    with torch.no_grad():
        p.copy_(torch.tensor([20.0, 3.8]))
    ema.step()
    ema.step()  # decay 2/11
    assert torch.allclose(ema.shadow[0], torch.tensor([9.0 * 2 / 11 + 20.0 * 9 / 11, 3.8]))
    assert ema.updates == 2


def test_ema_swapped_in_uses_the_shadow_and_restores_the_live_weights():
    p = torch.nn.Parameter(torch.tensor([1.0]))
    ema = EMA([p], cap=0.9, every=1)
    ema.shadow[0].fill_(5.0)
    with ema.swapped_in():
        assert p.item() == 5.0
    assert p.item() == 1.0
    with pytest.raises(RuntimeError), ema.swapped_in():
        raise RuntimeError("the live weights come back after an error too")
    assert p.item() == 1.0


def _state(value: float):
    p = torch.nn.Parameter(torch.full((3,), value))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.grad = torch.full((3,), value)
    opt.step()
    return p, [p.detach() * 2], opt, torch.Generator().manual_seed(int(value))


def test_checkpoint_round_trip_restores_everything(tmp_path):
    p, shadow, opt, gen = _state(1.0)
    root = tmp_path / "run" / "checkpoints"  # created with its parents
    folder = save_checkpoint(root, 7, [p], shadow, opt, gen, {"ema_updates": 3})
    assert folder.name == "ckpt-000007"
    expected_draw = torch.rand(4, generator=torch.Generator().set_state(gen.get_state()))
    q, q_shadow, q_opt, q_gen = _state(5.0)
    state = load_checkpoint(latest_checkpoint(root), [q], q_shadow, q_opt, q_gen)
    assert state["iteration"] == 7 and state["ema_updates"] == 3
    assert torch.equal(q, p) and torch.equal(q_shadow[0], shadow[0])
    assert torch.equal(q_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(4, generator=q_gen), expected_draw)
    load_ema_weights(folder, [q])
    assert torch.equal(q, shadow[0])


def test_the_newest_checkpoints_are_kept_and_latest_names_the_newest(tmp_path):
    p, shadow, opt, gen = _state(1.0)
    save_checkpoint(tmp_path, 2, [p], shadow, opt, gen, {}, keep=1)
    save_checkpoint(tmp_path, 2, [p], shadow, opt, gen, {"again": True}, keep=1)  # a rerun replaces the same iteration
    assert json.loads((tmp_path / "ckpt-000002" / "state.json").read_text())["again"]
    (tmp_path / "ckpt-000004.tmp").mkdir()  # a killed save
    save_checkpoint(tmp_path, 4, [p], shadow, opt, gen, {}, keep=1)
    assert sorted(d.name for d in tmp_path.iterdir()) == ["ckpt-000004", "latest"]
    assert json.loads((tmp_path / "latest").read_text()) == {"checkpoint": "ckpt-000004"}
    for iteration in (6, 8, 10):
        save_checkpoint(tmp_path, iteration, [p], shadow, opt, gen, {}, keep=2)
    assert sorted(d.name for d in tmp_path.iterdir()) == ["ckpt-000008", "ckpt-000010", "latest"]


def test_checksums_cover_every_file_and_find_a_changed_one(tmp_path):
    p, shadow, opt, gen = _state(1.0)
    folder = save_checkpoint(tmp_path, 1, [p], shadow, opt, gen, {})
    sums = json.loads((folder / CHECKSUMS).read_text())
    assert sorted(sums) == ["ema.safetensors", "model.safetensors", "optimizer.safetensors", "rng.safetensors",
                            "state.json"]
    assert damage(folder) is None and latest_checkpoint(tmp_path) == folder
    (folder / "state.json").write_text((folder / "state.json").read_text().replace('"iteration": 1', '"iteration": 2'))
    assert damage(folder) == "state.json does not match its checksum"
    # reading a finished run's weights does not fall back to an earlier checkpoint
    with pytest.raises(CheckpointError, match="ckpt-000001 is damaged \\(state.json does not match its checksum\\); "
                                              "delete .*final.json and rerun the training job"):
        latest_checkpoint(tmp_path)
    (folder / CHECKSUMS).unlink()  # a checkpoint from before checksums were recorded is taken as it is
    assert damage(folder) is None


def test_no_checkpoint_and_incomplete_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "ckpt-000001").mkdir()
    with pytest.raises(CheckpointError, match="incomplete"):
        latest_checkpoint(tmp_path)


def test_loading_into_another_model_names_the_mismatch(tmp_path):
    p, shadow, opt, gen = _state(1.0)
    folder = save_checkpoint(tmp_path, 1, [p], shadow, opt, gen, {})
    with pytest.raises(ValueError, match="holds 1 tensors, the model has 2 trainable ones: the checkpoint belongs to "
                                         "another backbone configuration"):
        load_ema_weights(folder, [p, p])
