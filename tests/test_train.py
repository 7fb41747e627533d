"""The GRPO trainer on a tiny nano backbone: schema, resume equivalence, NaN stop, learning, CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from analysis.histograms import clip_counts, form_values, read_run
from eval.nano import NanoGold, composition
from eval.nano_world import prompts
from eval.tasks import Task, nano_gold_metrics
from guard.backbones.nano import NanoBackbone, NanoConfig, load_or_pretrain
from guard.train import NonFiniteLossError, Trainer
from jobs.config import ConfigError, TrainConfig, load_config

TINY = dict(width=64, cond_dim=32, depth=1, steps=300, batch=64, warmup=10)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.set_flush_denormal(True)  # as guard.train's CLI does: denormals slow these CPU fits 20-50x
    path = tmp_path_factory.mktemp("nano") / "base.safetensors"
    net, _ = load_or_pretrain(path, NanoConfig(**TINY))
    return path, net, NanoGold.fit(n_per_prompt=300)


def _trainer(tiny, out, reward=composition, **overrides):
    _, net, gold = tiny
    base = dict(iterations=4, eval_every=2, checkpoint_every=2, eval_per_prompt=2, histogram_iterations=[1],
                prompts_per_iteration=2, group_size=4, minibatches=2)
    return Trainer(TrainConfig(**{**base, **overrides}), NanoBackbone(net), Task(prompts(), reward, nano_gold_metrics(gold), gold.score), out)


def on_policy(first: pd.DataFrame) -> bool:
    """The first minibatch of a rollout is on-policy to float32 rounding. Exactly 0 on most CPUs and in the nano
    default's runs; on a Sapphire Rapids CPU (AMX) the tiny config's minibatch rounds its rows otherwise than the
    whole batch did (measured: log-ratio terms up to 3e-8, policy_shift_u up to 4e-6, against off-policy medians
    of 2e-4 and 0.09 in the nano runs)."""
    ratio = first[["log_ratio_mean", "log_ratio_std", "norm_log_ratio_mean"]].abs().max().max()
    return bool(ratio < 1e-6 and first.policy_shift_u.abs().max() < 1e-4)


def test_logging_schema(tiny, tmp_path):
    final = _trainer(tiny, tmp_path).run()
    train = pd.read_json(tmp_path / "train.jsonl", lines=True)
    steps = pd.read_json(tmp_path / "steps.jsonl", lines=True)
    ev = pd.read_json(tmp_path / "eval.jsonl", lines=True)
    hist = pd.read_json(tmp_path / "logratios.jsonl", lines=True)
    assert list(train.iteration) == [0, 1, 2, 3]
    assert {"reward_mean", "reward_std", "loss", "grad_norm", "time_sample", "time_reward", "time_update"} <= set(train)
    assert {"iteration", "update", "step", "log_ratio_mean", "log_ratio_std", "norm_log_ratio_mean",
            "norm_log_ratio_std", "clip_pos_upper", "clip_neg_lower", "clip_pos_lower", "clip_neg_upper",
            "step_grad_norm", "policy_shift_u", "approx_kl"} <= set(steps)
    assert sorted(steps.step.unique()) == list(range(9))  # the first 9 of 10 steps are trained
    # the first minibatch of a rollout is on-policy, and the stored mu_old equals the training recomputation
    # (RatioNorm's identity needs it), to float32 rounding
    assert on_policy(steps[steps["update"] == 0])
    assert (steps[steps["update"] == 1].log_ratio_std > 0).any()
    assert list(ev.iteration) == [0, 2, 4] and {"proxy", "loglik", "accuracy", "diversity"} <= set(ev)
    assert final == json.loads((tmp_path / "eval.jsonl").read_text().splitlines()[-1])
    assert set(hist.iteration) == {1} and sorted(hist.step.unique()) == list(range(9))
    assert all(len(r) == len(n) >= 1 for r, n in zip(hist.raw, hist.normalised))
    assert (tmp_path / "samples" / "iter_000004.png").is_file()
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["variant"] == "grpo_guard"


def test_every_evaluation_writes_its_images_as_units(tiny, tmp_path):
    _trainer(tiny, tmp_path, iterations=2).run()
    ev = pd.read_json(tmp_path / "eval.jsonl", lines=True)
    units = pd.read_json(tmp_path / "eval_units.jsonl", lines=True)  # every image of every evaluation, scored once
    assert units.groupby("iteration").image.apply(list).to_dict() == {i: list(range(len(prompts()) * 2)) for i in (0, 2)}
    assert list(units.prompt[:4]) == [prompts()[0]] * 2 + [prompts()[1]] * 2
    means = units.groupby("iteration")[["proxy", "loglik", "correct"]].mean()
    assert means.proxy.to_numpy() == pytest.approx(ev.proxy.to_numpy(), rel=1e-6)  # the row: a float32 mean
    assert means.loglik.to_numpy() == pytest.approx(ev.loglik.to_numpy(), rel=1e-9)
    assert means.correct.to_numpy() == pytest.approx(ev.accuracy.to_numpy(), rel=1e-9)


class Kill(Exception):
    """Stands for a job killed mid-iteration."""


def _killing_reward(at_call: int):
    calls = {"n": 0}

    def reward(images, prompts_):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise Kill
        return composition(images, prompts_)

    return reward


@pytest.mark.parametrize("variant", ["flowgrpo", "grpo_guard"])
def test_killed_run_resumes_to_the_same_result(tiny, tmp_path, variant):
    straight = _trainer(tiny, tmp_path / "a", variant=variant, lr=1e-3).run()
    # rewards are called once per rollout and once per evaluation: the 6th call is iteration 3's rollout
    with pytest.raises(Kill):
        _trainer(tiny, tmp_path / "b", reward=_killing_reward(6), variant=variant, lr=1e-3).run()
    assert json.loads((tmp_path / "b" / "checkpoints" / "latest").read_text())["checkpoint"] == "ckpt-000002"
    resumed = _trainer(tiny, tmp_path / "b", variant=variant, lr=1e-3)
    assert resumed.run() == straight
    assert resumed.start == 2
    assert same_logs(tmp_path / "a", tmp_path / "b") == {"resumed_from": ["ckpt-000002"]}


RESUME_KEYS = ("resumed_from", "stopped_by", "damaged")
"""train.jsonl's record of a resume, on the first row after it."""


def same_logs(a, b) -> dict[str, list]:
    """Assert that two run folders hold the same logs but for wall-clock times and resume records; returns the
    resume records of ``b`` (key: values)."""
    assert json.loads((a / "final.json").read_text()) == json.loads((b / "final.json").read_text())
    records = {}
    for name in ("train.jsonl", "steps.jsonl", "eval.jsonl", "eval_units.jsonl", "logratios.jsonl"):
        x, y = (pd.read_json(d / name, lines=True) for d in (a, b))
        times = [c for c in x.columns if c.startswith("time_")]
        found = {k: y[k].dropna().tolist() for k in RESUME_KEYS if k in y}
        pd.testing.assert_frame_equal(x.drop(columns=times), y.drop(columns=[*times, *found]))
        records |= found
    return records


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    def nan_reward(images, prompts_):
        r = composition(images, prompts_)
        return r * float("nan") if nan_reward.calls == 5 else r

    def counting(images, prompts_):
        nan_reward.calls += 1
        return nan_reward(images, prompts_)

    nan_reward.calls = 0
    trainer = _trainer(tiny, tmp_path, reward=counting, drop_zero_advantage=False)
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        trainer.run()
    assert json.loads((tmp_path / "checkpoints" / "latest").read_text())["checkpoint"] == "ckpt-000002"
    assert not (tmp_path / "final.json").exists()


def test_changed_config_in_an_existing_run_is_refused(tiny, tmp_path):
    _trainer(tiny, tmp_path, iterations=2).run()
    with pytest.raises(ConfigError, match="clip_eps"):
        _trainer(tiny, tmp_path, iterations=2, clip_eps=0.5).run()


def test_short_run_raises_the_proxy(tiny, tmp_path):
    trainer = _trainer(tiny, tmp_path, variant="flowgrpo", iterations=30, lr=3e-3, eval_every=30,
                       checkpoint_every=30, histogram_iterations=[], clip_eps=1e-2, group_size=8, minibatches=4)
    trainer.run()
    ev = pd.read_json(tmp_path / "eval.jsonl", lines=True)
    train = pd.read_json(tmp_path / "train.jsonl", lines=True)
    assert ev.proxy.iloc[-1] > ev.proxy.iloc[0] + 0.02
    assert train.reward_mean.tail(10).mean() > train.reward_mean.head(10).mean()


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="variant"):
        TrainConfig(variant="ppo")
    with pytest.raises(ConfigError, match="trained_steps"):
        TrainConfig(trained_steps=11)
    bad = tmp_path / "bad.yaml"
    bad.write_text("variant: grpo_guard\nclip_epsilon: 0.1\n")
    with pytest.raises(ConfigError, match="clip_epsilon"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_cli_runs_a_config_end_to_end(tiny, tmp_path):
    weights, _, _ = tiny
    config = {"iterations": 2, "eval_every": 2, "checkpoint_every": 2, "eval_per_prompt": 2, "group_size": 4,
              "backbone": {"name": "nano", "weights": str(weights), "pretrain": TINY},
              "task": {"reward": "composition", "gold": {"n_per_prompt": 300}}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "guard.train", "--config", str(path), "--out", str(out),
                           "--variant", "rationorm"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["iteration"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["variant"] == "rationorm"
    path.write_text("variant: nope\n")
    bad = subprocess.run([sys.executable, "-m", "guard.train", "--config", str(path), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "variant" in bad.stderr


def test_micro_batches_accumulate_to_the_same_update(tiny, tmp_path):
    """Gradient accumulation over micro-batches (3 + 1 of each 4-sample minibatch) gives the whole-minibatch update."""
    whole = _trainer(tiny, tmp_path / "whole", iterations=2, drop_zero_advantage=False)
    parts = _trainer(tiny, tmp_path / "parts", iterations=2, drop_zero_advantage=False, micro_batch=3)
    whole.run(), parts.run()
    for a, b in zip(whole.params, parts.params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    steps = pd.read_json(tmp_path / "parts" / "steps.jsonl", lines=True)
    assert set(steps.n) == {3, 1}  # one diagnostics row per micro-batch and step
    # the loss sums terms of size |A| / n that cancel to ~1e-6: the order of summation moves it by ~1e-7
    losses = [pd.read_json(tmp_path / d / "train.jsonl", lines=True).loss for d in ("whole", "parts")]
    torch.testing.assert_close(torch.tensor(losses[0].values), torch.tensor(losses[1].values), rtol=0, atol=1e-6)


@pytest.mark.parametrize("variant,reduction", [("mean_revised", "sample"), ("grpo_guard", "batch")])
def test_logratio_rows_carry_advantage_and_b_consistent_with_the_steps(tiny, tmp_path, variant, reduction):
    # a tiny clip range: many samples of either sign are clipped, so a misplaced advantage shows
    # (3 off-policy minibatches of 8 samples)
    _trainer(tiny, tmp_path / variant / "seed0", variant=variant, bias_reduction=reduction, iterations=2,
             clip_eps=1e-6, group_size=8, inner_epochs=2).run()
    folder = tmp_path / variant / "seed0"
    hist = pd.read_json(folder / "logratios.jsonl", lines=True)
    steps = pd.read_json(folder / "steps.jsonl", lines=True)
    steps = steps[steps.iteration == 1].reset_index(drop=True)
    # one histogram row per diagnostic row, in the same order, over the same samples
    assert hist[["iteration", "update", "step"]].equals(steps[["iteration", "update", "step"]])
    assert [len(a) for a in hist.adv] == list(steps.n) and (hist.dims == 3 * 16 * 16).all()
    np.testing.assert_allclose([-np.mean(b) for b in hist.b], -steps.bias_mean, rtol=1e-5)
    assert all(np.ptp(b) > 0 for b in hist.b[hist["update"] > 0])  # b per sample, whatever the reduction
    b_used = [np.mean(b) if reduction == "batch" else np.array(b) for b in hist.b]
    np.testing.assert_allclose(np.concatenate([s * (np.array(r) + u) for s, r, u in zip(hist.s, hist.raw, b_used)]),
                               np.concatenate(hist.normalised.to_list()), rtol=1e-4, atol=1e-9)
    # the advantages sit with their samples: the clip fractions by sign are the trainer's
    samples = read_run(folder, variant, 0)  # one row per sample, in the file's order
    row_of = np.repeat(np.arange(len(hist)), [len(a) for a in hist.adv])
    values = form_values(samples, "used")
    off = steps[steps["update"] > 0]
    assert 0 < off.clip_pos_upper.mean() < 1 and 0 < off.clip_neg_lower.mean() < 1
    for r, step_row in steps.iterrows():
        mine = row_of == r
        counts = clip_counts(values[mine], samples.adv.to_numpy()[mine], samples.clip_eps.iloc[0])
        fractions = [counts["A>0"].upper, counts["A>0"].lower, counts["A<0"].lower, counts["A<0"].upper]
        assert fractions == pytest.approx(list(step_row[["clip_pos_upper", "clip_pos_lower", "clip_neg_lower", "clip_neg_upper"]]))


@pytest.mark.parametrize("overrides", [{}, {"variant": "flowgrpo", "trained_steps": 5}])  # 5 random steps per sample
def test_all_steps_in_one_backward_give_the_per_step_update(tiny, tmp_path, overrides):
    """Every trained step of a minibatch in one forward/backward gives the update and the diagnostic rows of one
    step per backward (each step's gradient norm included, where a column is one step), and the first minibatch
    of a rollout stays on-policy."""
    base = dict(iterations=2, step_grad_norm_every=1, drop_zero_advantage=False, **overrides)
    per_step = _trainer(tiny, tmp_path / "per_step", steps_per_backward=1, **base)
    together = _trainer(tiny, tmp_path / "together", **base)
    per_step.run(), together.run()
    for a, b in zip(per_step.params, together.params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    rows = [pd.read_json(tmp_path / d / "steps.jsonl", lines=True) for d in ("per_step", "together")]
    keys = ["iteration", "update", "step", "n"]
    assert list(rows[0].columns) == list(rows[1].columns)
    pd.testing.assert_frame_equal(rows[0][keys], rows[1][keys])
    first = rows[1][rows[1]["update"] == 0]
    assert on_policy(first)
    start = [r[(r["iteration"] == 0) & (r["update"] == 0)] for r in rows]  # the same weights: the same rows
    rounding = ["log_ratio_mean", "log_ratio_std", "norm_log_ratio_mean", "norm_log_ratio_std", "policy_shift_u"]
    assert on_policy(start[0]) and on_policy(start[1])  # the on-policy terms: 0 up to rounding (on_policy)
    pd.testing.assert_frame_equal(start[0].drop(columns=rounding), start[1].drop(columns=rounding), check_exact=False,
                                  rtol=1e-5, atol=1e-6)  # the rest as the params
    assert ("step_grad_norm" in rows[1]) == ("trained_steps" not in overrides)  # random steps: no column is one step
