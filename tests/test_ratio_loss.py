"""The ratio forms, step weights and clipped loss against the formulas of paper.md."""

import pytest
import torch

from guard.loss import clip_fractions, clipped_surrogate, grpo_group_loss, kl_to_reference, policy_shift
from guard.ratio import VARIANTS, get_variant, log_ratio, mean_bias, step_weight, variant_log_ratio
from guard.schedule import flowgrpo_schedule
from guard.sde import gaussian_log_prob, group_mean, group_sum, sde_sample

SCHED = flowgrpo_schedule()
D = 3 * 4 * 4


def _transition(seed=0, batch=6, scale=0.05, s=0.4):
    """mu_old, a live mu_theta = mu_old - dmu (leaf), eps and x' = mu_old + s eps."""
    g = torch.Generator().manual_seed(seed)
    mu_old = torch.randn(batch, 3, 4, 4, generator=g)
    dmu = scale * torch.randn(batch, 3, 4, 4, generator=g)
    eps = torch.randn(batch, 3, 4, 4, generator=g)
    mu = (mu_old - dmu).requires_grad_(True)
    return mu_old, mu, dmu, eps, sde_sample(mu_old, s, eps)


def _log_probs(mu, mu_old, x_next, s):
    return gaussian_log_prob(x_next, mu, s), gaussian_log_prob(x_next, mu_old, s)


class _StepLoss:
    """One step's loss (mean over its rows) and diagnostics (0-d): grpo_group_loss with every row in group 0."""

    def __init__(self, variant, lp, lp_old, mu, mu_old, adv, s, h, sigma, clip_eps, kl_beta=0.0, mu_ref=None,
                 bias_reduction="sample"):
        out = grpo_group_loss(variant, lp, lp_old, mu, mu_old, adv, s, h, sigma, clip_eps, torch.zeros(len(adv), dtype=torch.long),
                              1, kl_beta, mu_ref, bias_reduction)
        self.loss = out.loss_sum / len(adv)
        self.diagnostics = {key: value[0] for key, value in out.diagnostics.items()}


def _fractions(log_r, adv, eps):
    return {key: value[0] for key, value in clip_fractions(log_r, adv, eps, torch.zeros(len(adv), dtype=torch.long), 1).items()}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_on_policy_ratio_is_exactly_one_and_gradient_is_policy_gradient(name):
    variant, k = get_variant(name), 4
    s, h, sigma = SCHED.s[k], SCHED.h[k], SCHED.sigma[k]
    mu_old, _, _, eps, x_next = _transition(s=float(s))
    mu = mu_old.clone().requires_grad_(True)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    adv = torch.tensor([1.0, -1.0, 0.5, -2.0, 3.0, 0.0])
    used = variant_log_ratio(variant, lp, lp_old, mu, mu_old, s)
    assert torch.equal(torch.exp(used.detach()), torch.ones(6))
    out = _StepLoss(variant, lp, lp_old, mu, mu_old, adv, s, h, sigma, clip_eps=1e-4)
    out.loss.backward()
    # plain policy gradient: d/dmu mean_B(-A log p) = -A (x' - mu) / (s^2 D) / B
    pg = -adv.view(-1, 1, 1, 1) * (x_next - mu_old) / (s**2 * D) / 6
    scale = {"plain": 1.0, "mean_revised": 1.0, "normalised": float(s)}[variant.ratio]
    weight = {"one": 1.0, "noise_std": float(s), "inv_step": float(1 / h)}[variant.weight]
    assert torch.allclose(mu.grad, weight * scale * pg, rtol=1e-4, atol=1e-7)
    assert float(out.loss.detach()) == pytest.approx(weight * float(-adv.mean()), rel=1e-6)


def test_ratio_norm_equals_minus_dmu_dot_eps():
    for k in range(9):
        s = SCHED.s[k]
        mu_old, mu, dmu, eps, x_next = _transition(seed=k, s=float(s), scale=0.3)
        lp, lp_old = _log_probs(mu, mu_old, x_next, s)
        expected = -(dmu * eps).flatten(1).mean(1)
        norm = variant_log_ratio(VARIANTS["rationorm"], lp, lp_old, mu, mu_old, s)
        assert torch.allclose(norm, expected, atol=2e-6)
        revised = variant_log_ratio(VARIANTS["mean_revised"], lp, lp_old, mu, mu_old, s)
        assert torch.allclose(revised, expected / s, atol=2e-5)
        # the baseline carries the negative bias: log r = -mean(dmu^2)/(2 s^2) - mean(dmu eps)/s
        plain = log_ratio(lp, lp_old)
        assert torch.allclose(plain, -(dmu**2).flatten(1).mean(1) / (2 * s**2) + expected / s, atol=2e-5)


def test_baseline_log_ratio_mean_and_std_follow_the_formula_across_steps():
    """E[log r] = -mean(dmu^2)/(2 s^2); std[log r] = |dmu| / (s D): a schedule-dependent shift and spread."""
    g = torch.Generator().manual_seed(0)
    dmu = 0.1 * torch.randn(1, D, generator=g)
    n = 40000
    stds = []
    for k in range(9):
        s = float(SCHED.s[k])
        mu_old = torch.zeros(n, D)
        x_next = sde_sample(mu_old, s, torch.randn(n, D, generator=g))
        lr = log_ratio(gaussian_log_prob(x_next, mu_old - dmu, s), gaussian_log_prob(x_next, mu_old, s))
        mean_expected = float((dmu**2).mean() / (2 * s**2))
        std_expected = float(dmu.norm() / (s * D))
        assert float(lr.mean()) < 0
        assert float(lr.mean()) == pytest.approx(-mean_expected, abs=4 * std_expected / n**0.5 + 1e-6)
        assert float(lr.std()) == pytest.approx(std_expected, rel=0.02)
        stds.append(float(lr.std()))
    # spread across steps follows 1/s_k: largest at the low-noise end
    assert stds[8] / stds[1] == pytest.approx(float(SCHED.s[1] / SCHED.s[8]), rel=0.03)


def test_bias_uses_the_live_mean_not_a_detached_copy():
    """d/dmu_theta of s (log r + b) is eps / D; with b detached it would be (dmu + s eps) / (s D)."""
    s = 0.3
    mu_old, mu, dmu, eps, x_next = _transition(seed=3, s=s, scale=0.5)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    variant_log_ratio(VARIANTS["rationorm"], lp, lp_old, mu, mu_old, s).sum().backward()
    assert torch.allclose(mu.grad, eps / D, atol=1e-6)
    detached_form = (dmu + s * eps) / (s * D)
    assert not torch.allclose(mu.grad, detached_form * s, atol=1e-3)


def _euler_toy_grad(variant_name, k, eps):
    """Gradient wrt theta of the on-policy step loss for the linear toy mu_theta = x - h theta, A = 1."""
    s, h, sigma = SCHED.s[k], SCHED.h[k], SCHED.sigma[k]
    theta = torch.zeros(1, D, requires_grad=True)
    x = torch.ones(1, D)
    mu = x - h * theta
    mu_old = mu.detach()
    x_next = sde_sample(mu_old, s, eps)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    _StepLoss(get_variant(variant_name), lp, lp_old, mu, mu_old, torch.ones(1), s, h, sigma, 1e-4).loss.backward()
    return theta.grad


def test_gradient_scales_of_the_ablation_table():
    """Per step: baseline h eps / (s D), RatioNorm h eps / D, GRPO-Guard eps / D (independent of h and s)."""
    eps = torch.randn(1, D, generator=torch.Generator().manual_seed(9))
    for k in range(9):
        s, h = float(SCHED.s[k]), float(SCHED.h[k])
        assert torch.allclose(_euler_toy_grad("flowgrpo", k, eps), h * eps / (s * D), rtol=1e-4, atol=1e-8)
        assert torch.allclose(_euler_toy_grad("rationorm", k, eps), h * eps / D, rtol=1e-4, atol=1e-8)
        assert torch.allclose(_euler_toy_grad("grpo_guard", k, eps), eps / D, rtol=1e-4, atol=1e-8)
    baseline = [float(_euler_toy_grad("flowgrpo", k, eps).norm()) for k in range(9)]
    guard = [float(_euler_toy_grad("grpo_guard", k, eps).norm()) for k in range(9)]
    assert max(baseline) / min(baseline) > 3 and max(guard) / min(guard) == pytest.approx(1.0, abs=1e-4)


def test_clipping_zeroes_the_right_gradients():
    eps_clip = 0.1
    log_r = torch.log(torch.tensor([1.5, 0.5, 0.5, 1.5, 1.05, 1.05])).requires_grad_(True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0, -1.0])
    clipped_surrogate(log_r, adv, eps_clip).sum().backward()
    ratio = log_r.detach().exp()
    # A>0 above 1+eps and A<0 below 1-eps: clipped, no gradient; the other sides pass -A r unclipped
    expected = torch.stack([torch.tensor(0.0), -ratio[1], torch.tensor(0.0), ratio[3], -ratio[4], ratio[5]])
    assert torch.allclose(log_r.grad, expected)


def test_hand_computed_surrogate_values():
    adv = torch.tensor([-1.0, 1.0, 1.0, -1.0])
    log_r = torch.log(torch.tensor([1.0, 2.0, 0.5, 0.5]))
    # ratio 1, A = -1 -> 1.0; ratio 2, A = 1 -> -(1+eps); ratio 0.5, A = 1 -> -0.5; ratio 0.5, A = -1 -> (1-eps)
    expected = torch.tensor([1.0, -1.2, -0.5, 0.8])
    assert torch.allclose(clipped_surrogate(log_r, adv, 0.2), expected)


def test_clip_fractions_by_sign_and_side():
    log_r = torch.log(torch.tensor([1.5, 1.0, 0.5, 0.5, 0.5, 1.5, 1.0, 1.0]))
    adv = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 0.0])
    f = _fractions(log_r, adv, 0.1)
    assert float(f["clip_pos_upper"]) == pytest.approx(1 / 4)
    assert float(f["clip_pos_lower"]) == pytest.approx(2 / 4)
    assert float(f["clip_neg_lower"]) == pytest.approx(1 / 3)
    assert float(f["clip_neg_upper"]) == pytest.approx(1 / 3)
    assert float(f["clip_frac"]) == pytest.approx(5 / 8)


def test_guard_weight_multiplies_the_clipped_loss_and_not_the_kl():
    k = 2
    s, h, sigma = SCHED.s[k], SCHED.h[k], SCHED.sigma[k]
    mu_old, mu, _, _, x_next = _transition(seed=4, s=float(s), scale=0.2)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    adv = torch.linspace(-2, 2, 6)
    mu_ref = mu_old + 0.1
    args = (lp, lp_old, mu, mu_old, adv, s, h, sigma, 1e-3)
    guard = _StepLoss(VARIANTS["grpo_guard"], *args, kl_beta=0.04, mu_ref=mu_ref)
    norm = _StepLoss(VARIANTS["rationorm"], *args, kl_beta=0.04, mu_ref=mu_ref)
    kl = kl_to_reference(mu, mu_ref, sigma).mean()
    assert float((guard.loss - 0.04 * kl).detach()) == pytest.approx(float((norm.loss - 0.04 * kl).detach() / h), rel=1e-5)
    assert float(guard.diagnostics["kl"]) == pytest.approx(float(kl.detach()))
    with pytest.raises(ValueError, match="^kl_beta > 0 needs the reference mean mu_ref$"):
        _StepLoss(VARIANTS["grpo_guard"], *args, kl_beta=0.04)


def test_kl_divides_by_sigma_squared_and_averages_dims():
    mu = torch.zeros(2, 3, 4, 4)
    mu_ref = torch.zeros(2, 3, 4, 4)
    mu_ref[0, 0, 0, 0] = 2.0
    kl = kl_to_reference(mu, mu_ref, 0.5)
    assert torch.allclose(kl, torch.tensor([4.0 / D / (2 * 0.25), 0.0]))


def test_step_weights():
    s, h = SCHED.s[:9], SCHED.h[:9]
    assert torch.allclose(step_weight(VARIANTS["flowgrpo"], s, h), torch.ones(9))
    assert torch.allclose(step_weight(VARIANTS["temp_reweight"], s, h), s)
    assert torch.allclose(step_weight(VARIANTS["grpo_guard"], s, h), 1 / h)


def test_batch_bias_reduction_centres_only_the_batch_mean():
    """Public script: b is one scalar per step; samples are off-centre by s (b_mean - b_i)."""
    s = 0.35
    mu_old, mu, dmu, eps, x_next = _transition(seed=8, s=s, scale=0.4)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    per_sample = variant_log_ratio(VARIANTS["rationorm"], lp, lp_old, mu, mu_old, s, "sample")
    batch = variant_log_ratio(VARIANTS["rationorm"], lp, lp_old, mu, mu_old, s, "batch")
    target = -(dmu * eps).flatten(1).mean(1)
    assert torch.allclose(per_sample, target, atol=2e-6)
    assert float(batch.detach().mean()) == pytest.approx(float(target.mean()), abs=2e-6)
    b = mean_bias(mu, mu_old, s)
    assert torch.allclose(batch - target, s * (b.mean() - b), atol=2e-6)
    assert (batch - target).abs().max() > 1e-3


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="grpo_guard"):
        get_variant("guard")


def test_kl_with_the_transition_std_is_the_exact_gaussian_kl():
    """mean_dims |mu - mu_ref|^2 / (2 s^2) = per-dim KL(N(mu, s^2) || N(mu_ref, s^2)); with sigma it is that times h."""
    g = torch.Generator().manual_seed(11)
    mu, mu_ref = torch.randn(4, 3, 4, 4, generator=g), torch.randn(4, 3, 4, 4, generator=g)
    k = 3
    s, sigma, h = SCHED.s[k], SCHED.sigma[k], SCHED.h[k]
    exact = torch.distributions.kl_divergence(torch.distributions.Normal(mu, s), torch.distributions.Normal(mu_ref, s))
    assert torch.allclose(kl_to_reference(mu, mu_ref, s), exact.flatten(1).mean(1), rtol=1e-5)
    assert torch.allclose(kl_to_reference(mu, mu_ref, sigma), exact.flatten(1).mean(1) * h, rtol=1e-5)


def test_clip_fractions_at_the_boundary_and_with_one_sample_of_a_sign():
    """A ratio exactly at 1 +- eps is inside the window; a sign with one sample gives fractions 0 or 1."""
    at_one = _fractions(torch.zeros(3), torch.tensor([1.0, -1.0, -1.0]), 0.0)
    assert all(float(v) == 0.0 for v in at_one.values())
    one_each = _fractions(torch.log(torch.tensor([2.0, 0.5])), torch.tensor([1.0, -1.0]), 0.1)
    assert (float(one_each["clip_pos_upper"]), float(one_each["clip_neg_lower"])) == (1.0, 1.0)


def test_policy_shift_is_the_full_l2_norm_in_units_of_s():
    mu_old = torch.zeros(2, 3, 4, 4)
    mu = torch.zeros(2, 3, 4, 4)
    mu[0, 0, 0, :2] = torch.tensor([3.0, 4.0])  # |dmu| = 5
    assert torch.allclose(policy_shift(mu, mu_old, 0.5), torch.tensor([10.0, 0.0]))


def test_step_loss_diagnostics_by_hand():
    """Every diagnostic the trainer logs, recomputed from its formula (population std, KL ~ 0.5 log r^2)."""
    k = 5
    s, h, sigma = SCHED.s[k], SCHED.h[k], SCHED.sigma[k]
    mu_old, mu, dmu, _, x_next = _transition(seed=12, s=float(s), scale=0.3)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    adv = torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5])
    out = _StepLoss(VARIANTS["temp_reweight"], lp, lp_old, mu, mu_old, adv, s, h, sigma, 1e-3)
    raw = (lp - lp_old).detach()
    b = (dmu**2).flatten(1).mean(1) / (2 * s**2)
    norm = s * (raw + b)
    expected = {
        "policy_loss": float(out.loss.detach()),
        "log_ratio_mean": raw.mean(), "log_ratio_std": raw.std(unbiased=False),
        "norm_log_ratio_mean": norm.mean(), "norm_log_ratio_std": norm.std(unbiased=False),
        "approx_kl": 0.5 * (raw**2).mean(), "bias_mean": b.mean(),
        "policy_shift_u": dmu.flatten(1).norm(dim=1).mean() / s, "step_weight": s,
    }
    assert set(out.diagnostics) == {*expected, "clip_frac", "clip_pos_upper", "clip_pos_lower", "clip_neg_lower",
                                    "clip_neg_upper"}
    for key, value in expected.items():
        assert float(out.diagnostics[key]) == pytest.approx(float(value), rel=1e-4, abs=1e-9), key


def test_step_loss_uses_the_configured_bias_reduction():
    s = 0.35
    mu_old, mu, _, _, x_next = _transition(seed=8, s=s, scale=0.4)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    adv = torch.linspace(-1, 1, 6)
    args = (lp, lp_old, mu, mu_old, adv, s, 0.1, 1.0, 1e-5)
    per_sample, batch = (_StepLoss(VARIANTS["rationorm"], *args, bias_reduction=r) for r in ("sample", "batch"))
    assert float(per_sample.loss.detach()) != pytest.approx(float(batch.loss.detach()), rel=1e-3)
    b = mean_bias(mu.detach(), mu_old, s)
    assert float(batch.diagnostics["bias_mean"]) == pytest.approx(float(b.mean()))
    centred_on_the_batch = s * ((lp - lp_old).detach() + b.mean())  # the diagnostics use the same b as the loss
    assert float(batch.diagnostics["norm_log_ratio_std"]) == pytest.approx(float(centred_on_the_batch.std(unbiased=False)))
    with pytest.raises(ValueError, match="bias_reduction must be 'sample' or 'batch', got 'dims'"):
        mean_bias(mu, mu_old, s, "dims")


@pytest.mark.parametrize("reduction", ["sample", "batch"])
@pytest.mark.parametrize("name", ["flowgrpo", "temp_reweight", "mean_revised", "grpo_guard"])
def test_group_loss_of_mixed_steps_equals_each_step_on_its_own(name, reduction):
    """Rows at several steps (DanceGRPO's per-sample draws) in any order: the summed loss, its gradient and each
    group's diagnostics equal those of one step's rows on their own (b averaged within a group for ``batch``)."""
    variant, steps = VARIANTS[name], torch.tensor([3, 7, 3, 1, 7, 7, 3, 1, 7])
    groups = torch.tensor([1, 2, 1, 0, 2, 2, 1, 0, 2])
    s, h, sigma = SCHED.s[steps], SCHED.h[steps], SCHED.sigma[steps]
    g = torch.Generator().manual_seed(5)
    mu_old = torch.randn(9, 3, 4, 4, generator=g)
    mu = (mu_old - 0.3 * torch.randn(9, 3, 4, 4, generator=g)).requires_grad_(True)
    x_next = sde_sample(mu_old, s.view(-1, 1, 1, 1), torch.randn(9, 3, 4, 4, generator=g))
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    adv, mu_ref = torch.linspace(-2, 2, 9), mu_old + 0.05
    out = grpo_group_loss(variant, lp, lp_old, mu, mu_old, adv, s, h, sigma, 1e-3, groups, 3, 0.04, mu_ref, reduction)
    (grad,) = torch.autograd.grad(out.loss_sum, mu)
    total, expected_grad = 0.0, torch.zeros_like(mu)
    for group, step in enumerate([1, 3, 7]):
        m = groups == group
        part = mu[m].detach().requires_grad_(True)
        lp_m = gaussian_log_prob(x_next[m], part, SCHED.s[step])
        one = _StepLoss(variant, lp_m, lp_old[m], part, mu_old[m], adv[m], SCHED.s[step], SCHED.h[step],
                        SCHED.sigma[step], 1e-3, 0.04, mu_ref[m], reduction)
        total += float(one.loss.detach()) * int(m.sum())
        expected_grad[m] = torch.autograd.grad(one.loss * int(m.sum()), part)[0]
        for key, value in one.diagnostics.items():
            assert float(out.diagnostics[key][group]) == pytest.approx(float(value), rel=1e-5, abs=1e-8), (key, step)
    assert float(out.loss_sum) == pytest.approx(total, rel=1e-5)
    assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-8)


def test_group_loss_defaults_are_no_kl_and_b_per_sample():
    s, h, sigma = SCHED.s[4], SCHED.h[4], SCHED.sigma[4]
    mu_old, mu, _, _, x_next = _transition(seed=3, s=float(s), scale=0.3)
    lp, lp_old = _log_probs(mu, mu_old, x_next, s)
    args = (VARIANTS["rationorm"], lp, lp_old, mu, mu_old, torch.linspace(-1, 1, 6), s, h, sigma, 1e-4,
            torch.zeros(6, dtype=torch.long), 1)
    default, explicit = grpo_group_loss(*args), grpo_group_loss(*args, 0.0, None, "sample")
    assert "kl" not in default.diagnostics
    assert torch.equal(default.loss_sum, explicit.loss_sum)
    assert all(torch.equal(default.diagnostics[k], v) for k, v in explicit.diagnostics.items())


def test_group_sums_and_means_keep_the_dtype():
    x = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64)
    groups = torch.tensor([2, 0, 2, 0, 0])
    assert group_sum(x, groups, 4).tolist() == [26.0, 0.0, 5.0, 0.0] and group_sum(x, groups, 4).dtype == torch.float64
    assert group_mean(x, groups, 3)[[0, 2]].tolist() == [26.0 / 3, 2.5] and group_mean(x, groups, 3).dtype == torch.float64
