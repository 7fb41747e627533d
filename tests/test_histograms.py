"""Log-ratio histograms per step: hand-counted clip fractions, the predicted distribution, errors naming what exists."""

import json
import math

import numpy as np
import pytest
import torch
import yaml

from analysis.__main__ import main
from analysis.histograms import (NotRecordedError, form_values, histogram_figure, load_samples, mixture_density,
                                 predicted_moments, sample_moments)
from guard.ratio import log_ratio, mean_bias, normalised_log_ratio
from guard.sde import gaussian_log_prob

EPS = 0.1  # window log(0.9) = -0.105 .. log(1.1) = 0.095
RAW = [-0.2, -0.05, 0.2, 0.3, -0.3, 0.0]
ADV = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0]


def write_run(folder, variant, rows, clip_eps=EPS, bias_reduction="sample"):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"variant": variant, "clip_eps": clip_eps,
                                                        "bias_reduction": bias_reduction}))
    (folder / "logratios.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def row(iteration, update, step, raw, adv, b, s=0.5, dims=4, normalised=None):
    normalised = normalised or [s * (r + bi) for r, bi in zip(raw, b)]
    return {"iteration": iteration, "update": update, "step": step, "s": s, "dims": dims, "raw": raw,
            "normalised": normalised, "adv": adv, "b": b}


@pytest.fixture
def runs(tmp_path):
    b = [0.01] * 6
    write_run(tmp_path / "flowgrpo" / "seed0", "flowgrpo", [
        row(5, 0, 0, [9.0] * 6, ADV, [0.0] * 6),  # on-policy: never drawn
        row(5, 1, 0, RAW, ADV, b),
        row(5, 1, 1, [0.0] * 6, ADV, b),
        row(7, 1, 0, [0.0] * 6, ADV, b),
    ])
    write_run(tmp_path / "flowgrpo" / "seed1", "flowgrpo", [row(5, 1, 0, [0.0, 0.0], [1.0, -1.0], [0.01] * 2)])
    return tmp_path


def test_panel_clip_fractions_equal_a_hand_count(runs):
    samples = load_samples(runs, seeds=[0], iterations=[5])
    _, counts = histogram_figure(samples)
    step0 = counts[counts.step == 0].set_index("sign")
    # A > 0: -0.2 below, 0.2 and 0.3 above, of 4; A < 0: -0.3 below, of 2 (update 0's 9.0s are left out)
    assert step0.loc["A>0", ["n", "below", "above"]].tolist() == [4, 0.25, 0.5]
    assert step0.loc["A<0", ["n", "below", "above"]].tolist() == [2, 0.5, 0.0]
    assert counts[counts.step == 1][["below", "above"]].to_numpy().sum() == 0
    # seeds pool: seed 1 adds one sample of each sign inside the window
    pooled = histogram_figure(load_samples(runs, iterations=[5], steps=[0]))[1].set_index("sign")
    assert pooled.loc["A>0", ["n", "above"]].tolist() == [5, 0.4] and pooled.loc["A<0", "below"] == pytest.approx(1 / 3)


def test_used_form_is_the_log_ratio_each_variant_clips(tmp_path):
    raw, b, s = [-0.02, 0.01], [0.03, 0.01], 0.5
    write_run(tmp_path / "mean_revised" / "seed0", "mean_revised", [row(1, 1, 0, raw, [1.0, -1.0], b, s)])
    write_run(tmp_path / "grpo_guard" / "seed0", "grpo_guard", [row(1, 1, 0, raw, [1.0, -1.0], b, s)])
    write_run(tmp_path / "rationorm" / "seed0", "rationorm", [row(1, 1, 0, raw, [1.0, -1.0], b, s, normalised=[7.0, 8.0])],
              bias_reduction="batch")
    samples = load_samples(tmp_path).set_index("variant")
    np.testing.assert_allclose(form_values(samples.loc[["mean_revised"]], "used"), [0.01, 0.02])
    np.testing.assert_allclose(form_values(samples.loc[["grpo_guard"]], "used"), [s * 0.01, s * 0.02])
    np.testing.assert_allclose(form_values(samples.loc[["rationorm"]], "used"), [7.0, 8.0])  # as the trainer stored it
    np.testing.assert_allclose(form_values(samples.loc[["grpo_guard"]], "raw"), raw)
    # batch reduction: b_used is the mean b of the row, each sample's predicted centre s (mean b - b)
    mean, _ = sample_moments(samples.loc[["rationorm"]], "used")
    np.testing.assert_allclose(mean, [s * (0.02 - 0.03), s * (0.02 - 0.01)])


def test_overlay_mean_and_spread_follow_the_formula():
    b, dims, s = np.array([0.02, 0.5]), np.array([768, 768]), 0.3
    mean, std = predicted_moments(b, b, dims, np.ones(2), np.zeros(2, bool))
    np.testing.assert_allclose(mean, -b)
    np.testing.assert_allclose(std, np.sqrt(2 * b / 768))
    mean, std = predicted_moments(b, b, dims, np.full(2, s), np.ones(2, bool))
    np.testing.assert_allclose(mean, 0)
    np.testing.assert_allclose(std, s * np.sqrt(2 * b / 768))
    # the mixture of the panel's samples: one component is that normal; it integrates to one
    x = np.linspace(-1, 1, 20001)
    one = mixture_density(x, np.array([-0.1]), np.array([0.05]))
    np.testing.assert_allclose(one.max(), 1 / (0.05 * math.sqrt(2 * math.pi)), rtol=1e-6)
    assert np.trapezoid(mixture_density(x, np.array([-0.1, 0.2]), np.array([0.05, 0.1])), x) == pytest.approx(1, abs=1e-6)


@pytest.mark.parametrize("reduction", ["sample", "batch"])
def test_prediction_matches_log_ratios_drawn_through_guard_ratio(reduction):
    """Log r of x' = mu_old + s eps for fixed mu_theta: per sample mean -b and std sqrt(2 b / D) over eps."""
    g = torch.Generator().manual_seed(0)
    dims, s, draws = (3, 16, 16), 0.4, 4000
    mu_old = torch.randn(2, *dims, generator=g)
    mu = mu_old + torch.tensor([0.02, 0.1]).view(2, 1, 1, 1) * torch.randn(2, *dims, generator=g)
    x_next = mu_old.repeat(draws, 1, 1, 1) + s * torch.randn(2 * draws, *dims, generator=g)
    mu_, mu_old_ = mu.repeat(draws, 1, 1, 1), mu_old.repeat(draws, 1, 1, 1)
    raw = log_ratio(gaussian_log_prob(x_next, mu_, s), gaussian_log_prob(x_next, mu_old_, s)).double()
    b_used = mean_bias(mu_, mu_old_, s, reduction).double()
    normalised = normalised_log_ratio(raw, b_used, s)
    b = mean_bias(mu, mu_old, s).double().numpy()
    D = np.full(2, mu[0].numel())
    for values, scale in ((raw, 1.0), (normalised, s)):
        mean, std = predicted_moments(b, b_used[:2].numpy(), D, np.full(2, scale), np.full(2, scale != 1.0))
        per_sample = values.view(draws, 2)
        np.testing.assert_allclose(per_sample.mean(0), mean, atol=4 * std.max() / math.sqrt(draws))
        np.testing.assert_allclose(per_sample.std(0), std, rtol=0.05)


def test_missing_selection_fails_naming_what_was_recorded(runs, capsys):
    with pytest.raises(NotRecordedError, match=r"iteration \[30\].*recorded: \[5, 7\]"):
        load_samples(runs, iterations=[30])
    with pytest.raises(NotRecordedError, match=r"step \[6\].*recorded: \[0, 1\]"):
        load_samples(runs, seeds=[0], iterations=[5], steps=[6])
    with pytest.raises(NotRecordedError, match=r"seed \[2\].*recorded: \[0, 1\]"):
        load_samples(runs, seeds=[2])
    with pytest.raises(NotRecordedError, match=r"variant \['mean_revised'\].*recorded: \['flowgrpo'\]"):
        load_samples(runs, variants=["mean_revised"])
    with pytest.raises(SystemExit) as exit_:
        main(["histograms", "--runs", str(runs), "--iterations", "30", "--out", str(runs / "h.png")])
    assert exit_.value.code == 2 and "recorded: [5, 7]" in capsys.readouterr().err


def test_cli_draws_the_requested_panels(runs, capsys):
    out = runs / "h.pdf"
    assert main(["histograms", "--runs", str(runs), "--seeds", "0", "--iterations", "5", "7", "--steps", "0",
                 "--sharex", "none", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "A>0" in printed and len(printed.strip().splitlines()) == 1 + 2 * 2  # header, 2 iterations x 2 signs
