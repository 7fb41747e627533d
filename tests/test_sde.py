"""SDE transitions: reference-code forms, Euler limits, marginal preservation, log-prob reduction."""

import math

import pytest
import torch

from guard.schedule import dancegrpo_schedule, flowgrpo_noise_scale, shift_time, step_sizes
from guard.sde import dancegrpo_sde_mean, flowgrpo_sde_mean, gaussian_log_prob, ode_step, sde_sample


def _batch(seed=0, shape=(4, 3, 5, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_flowgrpo_mean_matches_signed_dt_form():
    """Flow-GRPO writes the step with dt = t_{k+1} - t_k < 0: x (1 + sigma^2 dt / (2t)) + v (1 + sigma^2 (1-t)/(2t)) dt."""
    x, v = _batch()
    t, t_next, sigma = 0.7, 0.6, 1.1
    dt = t_next - t
    expected = x * (1 + sigma**2 / (2 * t) * dt) + v * (1 + sigma**2 * (1 - t) / (2 * t)) * dt
    assert torch.allclose(flowgrpo_sde_mean(x, v, t, t - t_next, sigma), expected, atol=1e-6)


def test_dancegrpo_mean_matches_reference_form():
    """DanceGRPO: mean = x + dsigma v, then + (-eta^2/2) score dsigma with score from x0_hat = x - t v."""
    x, v = _batch(1)
    t, t_next, eta = 0.8, 0.65, 0.3
    dsigma = t_next - t
    x0_hat = x - t * v
    score = -(x - x0_hat * (1 - t)) / t**2
    expected = x + dsigma * v + (-0.5 * eta**2 * score) * dsigma
    assert torch.allclose(dancegrpo_sde_mean(x, v, t, t - t_next, eta), expected, atol=1e-6)


@pytest.mark.parametrize("mean_fn", [flowgrpo_sde_mean, dancegrpo_sde_mean])
def test_zero_noise_reduces_to_euler_ode_step(mean_fn):
    x, v = _batch(2)
    t, t_next = 0.55, 0.4
    euler = ode_step(x, v, t, t_next)
    assert torch.allclose(euler, x - 0.15 * v, atol=1e-6)
    assert torch.allclose(mean_fn(x, v, t, t - t_next, 0.0), euler, atol=1e-6)
    # and the deviation from Euler is O(sigma^2): halving sigma quarters it
    d1 = (mean_fn(x, v, t, t - t_next, 0.2) - euler).norm()
    d2 = (mean_fn(x, v, t, t - t_next, 0.1) - euler).norm()
    assert float(d1 / d2) == pytest.approx(4.0, rel=1e-4)


def test_per_sample_step_quantities_broadcast():
    x, v = _batch(3)
    t, h, sigma = torch.tensor([0.9, 0.5, 0.3, 0.2]), torch.tensor([0.1, 0.05, 0.1, 0.02]), torch.tensor([0.3] * 4)
    batched = dancegrpo_sde_mean(x, v, t, h, sigma)
    for i in range(4):
        single = dancegrpo_sde_mean(x[i : i + 1], v[i : i + 1], float(t[i]), float(h[i]), 0.3)
        assert torch.allclose(batched[i : i + 1], single, atol=1e-6)


def _exact_gaussian_velocity(c: float):
    """Exact flow velocity for data x0 ~ N(0, c^2 I) and x_t = (1-t) x0 + t n: v = (t - (1-t) c^2) x / var_t."""
    return lambda x, t: (t - (1 - t) * c**2) * x / ((1 - t) ** 2 * c**2 + t**2)


@pytest.mark.parametrize("kind", ["flowgrpo", "dancegrpo"])
def test_sde_preserves_the_flow_marginals(kind):
    """With the exact velocity, the SDE maps N(0, I) at t = 1 to the data law N(0, c^2) at t = 0."""
    c, steps = 0.5, 200
    t = shift_time(torch.linspace(1, 0, steps + 1, dtype=torch.float64), 1.0)
    h = step_sizes(t)
    sigma = flowgrpo_noise_scale(t, 0.7) if kind == "flowgrpo" else torch.full((steps,), 0.7, dtype=torch.float64)
    mean_fn = flowgrpo_sde_mean if kind == "flowgrpo" else dancegrpo_sde_mean
    velocity = _exact_gaussian_velocity(c)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    for k in range(steps - 1):  # the last step from t_{T-1} to 0 is deterministic
        mean = mean_fn(x, velocity(x, float(t[k])), float(t[k]), float(h[k]), float(sigma[k]))
        x = sde_sample(mean, float(sigma[k] * h[k].sqrt()), torch.randn(x.shape, generator=g, dtype=torch.float64))
    x = ode_step(x, velocity(x, float(t[-2])), float(t[-2]), 0.0)
    assert float(x.std()) == pytest.approx(c, rel=0.03)
    assert abs(float(x.mean())) < 0.02


def test_log_prob_is_per_dimension_mean_in_fp32():
    mean, noise = _batch(4)
    s = 0.37
    x_next = sde_sample(mean, s, noise)
    lp = gaussian_log_prob(x_next.half(), mean.half(), s)
    assert lp.dtype == torch.float32 and lp.shape == (4,)
    ref = torch.distributions.Normal(mean, s).log_prob(x_next).flatten(1)
    assert torch.allclose(gaussian_log_prob(x_next, mean, s), ref.mean(1), atol=1e-5)
    assert not torch.allclose(gaussian_log_prob(x_next, mean, s), ref.sum(1), atol=1e-2)


def test_log_prob_expected_value_and_detached_sample():
    """E[log N(mu + s eps; mu, s)] per dim = -1/2 - log s - log sqrt(2 pi); the sample carries no gradient."""
    mean = torch.zeros(256, 4, 8, 8, requires_grad=True)
    s = 0.2
    x_next = sde_sample(mean, s, torch.randn(256, 4, 8, 8, generator=torch.Generator().manual_seed(5)))
    lp = gaussian_log_prob(x_next, mean, s)
    assert float(lp.detach().mean()) == pytest.approx(-0.5 - math.log(s) - 0.5 * math.log(2 * math.pi), abs=0.01)
    lp.sum().backward()
    # d/dmu of -(x' - mu)^2 / (2 s^2) with x' detached is (x' - mu) / s^2 / D
    expected = (x_next.detach() - mean.detach()) / s**2 / (4 * 8 * 8)
    assert torch.allclose(mean.grad, expected, atol=1e-6)


def test_dancegrpo_schedule_feeds_the_step():
    sched = dancegrpo_schedule(16, 3.0, 0.3)
    x, v = _batch(6)
    k = 5
    mean = dancegrpo_sde_mean(x, v, sched.t[k], sched.h[k], sched.sigma[k])
    assert torch.allclose(mean, dancegrpo_sde_mean(x, v, float(sched.t[k]), float(sched.h[k]), 0.3), atol=1e-6)
