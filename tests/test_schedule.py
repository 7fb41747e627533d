"""Schedules against paper.md's SD3.5-M table (shift 3, 10 steps, a = 0.7) and DanceGRPO's grid."""

import pytest
import torch

from guard.schedule import dancegrpo_grid, dancegrpo_schedule, diffusers_flow_grid, flowgrpo_schedule, shift_time

# k: (t_k, h_k, sigma_k, s_k, 1/h_k) as printed in paper.md
PAPER_TABLE = {
    0: (1.000, 0.0399, 3.51, 0.700, 25.1),
    1: (0.960, 0.0468, 3.44, 0.743, 21.4),
    2: (0.913, 0.0557, 2.27, 0.536, 18.0),
    3: (0.858, 0.0673, 1.72, 0.446, 14.9),
    4: (0.790, 0.0831, 1.36, 0.392, 12.0),
    5: (0.707, 0.1051, 1.09, 0.353, 9.5),
    6: (0.602, 0.1373, 0.86, 0.319, 7.3),
    7: (0.465, 0.1868, 0.65, 0.282, 5.4),
    8: (0.278, 0.2691, 0.43, 0.225, 3.7),
}


@pytest.mark.parametrize("k", sorted(PAPER_TABLE))
def test_flowgrpo_schedule_matches_paper_table(k):
    sched = flowgrpo_schedule(num_steps=10, shift=3.0, a=0.7)
    t, h, sigma, s, inv_h = PAPER_TABLE[k]
    assert float(sched.t[k]) == pytest.approx(t, abs=6e-4)
    assert float(sched.h[k]) == pytest.approx(h, abs=6e-5)
    assert float(sched.sigma[k]) == pytest.approx(sigma, abs=6e-3)
    assert float(sched.s[k]) == pytest.approx(s, abs=6e-4)
    assert float(1 / sched.h[k]) == pytest.approx(inv_h, abs=6e-2)


def test_grid_ends_and_t1_rule():
    sched = flowgrpo_schedule()
    assert sched.t.shape == (11,) and float(sched.t[0]) == 1.0 and float(sched.t[-1]) == 0.0
    assert float(sched.t[9]) == pytest.approx(0.0089, abs=1e-4)  # not linspace(1, 1/10)
    assert float(sched.s[9]) == pytest.approx(0.0063, abs=1e-4)
    # t = 1 uses 1 - t_1 in the denominator: finite, and equal to a sqrt(1 / (1 - t_1))
    assert torch.isfinite(sched.sigma).all()
    assert float(sched.sigma[0]) == pytest.approx(0.7 * (1 / (1 - float(sched.t[1]))) ** 0.5, rel=1e-6)
    assert (sched.h > 0).all()
    assert float((1 / sched.h[:9]).mean()) == pytest.approx(13.0, abs=0.1)  # paper.md: Guard loss ~13x


def test_shift_and_diffusers_grid_agree_with_definition():
    u = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(shift_time(u, 3.0), 3 * u / (1 + 2 * u))
    grid = diffusers_flow_grid(4, shift=1.0)
    assert torch.allclose(grid, torch.tensor([1.0, 1 - 0.999 / 3, 1 - 2 * 0.999 / 3, 0.001, 0.0]), atol=1e-6)


def test_dancegrpo_grid_is_shifted_linspace():
    sched = dancegrpo_schedule(num_steps=16, shift=3.0, eta=0.3)
    u = torch.linspace(1, 0, 17, dtype=torch.float64)
    assert torch.allclose(sched.t.double(), 3 * u / (1 + 2 * u), atol=1e-7)
    assert torch.allclose(sched.sigma, torch.full((16,), 0.3))
    assert torch.allclose(sched.s, 0.3 * sched.h.sqrt())
    assert sched.num_steps == 16


@pytest.mark.parametrize("num_steps, shift", [(10, 3.0), (40, 3.0), (16, 1.0), (28, 5.0), (50, 3.0), (20, 2.0)])
def test_grid_is_diffusers_flow_match_scheduler_bit_for_bit(num_steps, shift):
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(num_steps)
    assert torch.equal(diffusers_flow_grid(num_steps, shift), scheduler.sigmas.float())


def test_defaults_are_the_reference_set_ups():
    """Called without options: Flow-GRPO's 10 steps, shift 3, a 0.7 and DanceGRPO's 16 steps, shift 3, eta 0.3."""
    assert torch.equal(diffusers_flow_grid(10), diffusers_flow_grid(10, 3.0, 1000))
    assert torch.equal(flowgrpo_schedule().s, flowgrpo_schedule(10, 3.0, 0.7).s)
    assert float(flowgrpo_schedule().sigma[0]) == pytest.approx(PAPER_TABLE[0][2], abs=6e-3)
    dance = dancegrpo_schedule()
    assert dance.num_steps == 16 and torch.equal(dance.t, dancegrpo_schedule(16, 3.0, 0.3).t)
    assert float(dance.sigma[0]) == pytest.approx(0.3)
    assert float(dance.t[8]) == pytest.approx(0.75)  # shifted(1/2) = 1.5 / 2
    assert (flowgrpo_schedule().kind, dance.kind) == ("flowgrpo", "dancegrpo")
    assert torch.equal(dancegrpo_grid(16), dancegrpo_grid(16, 3.0))
    # the shift reaches the grid
    assert torch.equal(flowgrpo_schedule(10, shift=1.0).t, diffusers_flow_grid(10, 1.0))
    assert torch.equal(dancegrpo_schedule(16, shift=1.0).t, torch.linspace(1, 0, 17))



@pytest.mark.parametrize("num_steps", [14, 16, 20])
def test_dancegrpo_grid_is_computed_in_float32_as_the_reference(num_steps):
    """DanceGRPO: sd3_time_shift(3, torch.linspace(1, 0, T + 1)) in float32 (float64 differs by an ulp at T = 14)."""
    u = torch.linspace(1, 0, num_steps + 1)
    assert torch.equal(dancegrpo_schedule(num_steps).t, (3 * u) / (1 + (3 - 1) * u))
