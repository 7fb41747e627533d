"""The nano CPU domain: renderer, velocity net, pretraining cache, backbone, proxy and gold metrics."""

from __future__ import annotations

import math

import pytest
import torch

from eval.nano import (
    PROXIES,
    NanoGold,
    PPCAGaussian,
    average_gold,
    composition,
    diversity,
    kmeans,
    ppca_log_density,
    saturation,
)
from eval.nano_world import LATENT_SHAPE, prompt_ids, prompts, render
from guard.backbones.nano import (
    NanoBackbone,
    NanoConfig,
    VelocityNet,
    cosine_lr,
    load_or_pretrain,
    parameter_count,
    pretrain,
    timestep_embedding,
)

@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine, 2 threads ran this file 100x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = NanoConfig(width=64, cond_dim=32, depth=1, steps=150, batch=64, warmup=10, lr=3e-3)


def _renders(ids: torch.Tensor, seed: int) -> torch.Tensor:
    return (render(ids, torch.Generator().manual_seed(seed)) + 1) / 2


def _names(ids: torch.Tensor) -> list[str]:
    return [prompts()[i] for i in ids]


# ---------------------------------------------------------------------------------------------- renderer


def test_prompts_are_nine_distinct_colour_shape_pairs():
    names = prompts()
    assert len(set(names)) == 9
    assert "a red circle" in names and "a blue triangle" in names
    assert prompt_ids(names).tolist() == list(range(9))


def test_render_shape_range_and_determinism():
    ids = torch.arange(9).repeat(20)
    a = render(ids, torch.Generator().manual_seed(0))
    b = render(ids, torch.Generator().manual_seed(0))
    c = render(ids, torch.Generator().manual_seed(1))
    assert a.shape == (180, *LATENT_SHAPE)
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(a[:, :, 0, 0], torch.zeros(180, 3))  # grey corner, 0 in [-1, 1]


def test_render_colour_matches_prompt():
    ids = torch.arange(9).repeat(10)
    images = _renders(ids, 0)
    channel_excess = (images - 0.5).clamp(min=0).sum(dim=(2, 3))  # (B, 3)
    assert torch.equal(channel_excess.argmax(dim=1), ids // 3)


def test_render_shapes_differ_in_area_profile():
    ids = torch.tensor([0, 1, 2]).repeat_interleave(300)  # red circle, square, triangle
    coverage = (_renders(ids, 0)[:, 0] - 0.5).clamp(min=0).flatten(1)
    sorted_profile = coverage.sort(dim=1, descending=True).values.view(3, 300, -1).mean(1)
    gaps = torch.cdist(sorted_profile, sorted_profile)
    assert gaps[~torch.eye(3, dtype=torch.bool)].min() > 0.1


# ---------------------------------------------------------------------------------------------- network


def test_default_net_size_and_output_shape():
    net = VelocityNet(NanoConfig())
    assert 1_000_000 <= parameter_count(net) <= 5_000_000
    x = torch.randn(5, *LATENT_SHAPE)
    assert net(x, torch.rand(5), torch.arange(5)).shape == x.shape


def test_timestep_embedding_at_zero_is_cos_one_sin_zero():
    emb = timestep_embedding(torch.zeros(2), 8)
    assert torch.equal(emb, torch.tensor([[1.0] * 4 + [0.0] * 4] * 2))


def test_cosine_lr_warms_up_and_decays_to_zero():
    config = NanoConfig(steps=100, warmup=10, lr=1e-3)
    assert cosine_lr(0, config) == pytest.approx(1e-4)
    assert cosine_lr(10, config) == pytest.approx(1e-3)
    assert cosine_lr(55, config) == pytest.approx(5e-4)
    assert cosine_lr(99, config) < 1e-6


def test_config_rejects_warmup_longer_than_training():
    with pytest.raises(ValueError, match="warmup"):
        NanoConfig(steps=10, warmup=10)


def test_short_pretraining_lowers_the_loss():
    state, stats = pretrain(TINY)
    assert stats["final_loss"] < 0.6 * stats["first_loss"]
    net = VelocityNet(TINY)
    net.load_state_dict(state)
    assert stats["parameters"] == parameter_count(net)


# ---------------------------------------------------------------------------------------------- cache


def test_load_or_pretrain_round_trip_and_config_mismatch(tmp_path):
    config = NanoConfig(width=16, cond_dim=8, depth=1, steps=3, batch=4, warmup=1)
    path = tmp_path / "sub" / "nano.safetensors"
    first, stats = load_or_pretrain(path, config)
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["nano.safetensors"]
    mtime = path.stat().st_mtime_ns
    second, stats_again = load_or_pretrain(path, config)
    assert path.stat().st_mtime_ns == mtime and stats_again == stats
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="nano.safetensors.*width"):
        load_or_pretrain(path, NanoConfig(width=32, cond_dim=8, depth=1, steps=3, batch=4, warmup=1))


# ---------------------------------------------------------------------------------------------- backbone


@pytest.fixture()
def backbone() -> NanoBackbone:
    torch.manual_seed(0)
    net = VelocityNet(NanoConfig(width=32, cond_dim=16, depth=1, steps=2, warmup=1))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)  # zero-initialised layers would make every velocity 0
    return NanoBackbone(net)


def test_backbone_interface_shapes(backbone):
    names = ["a red circle", "a blue square", "a green triangle"]
    cond = backbone.encode(names)
    assert backbone.latent_shape == (3, 16, 16)
    assert cond.tolist() == [0, 7, 5]
    assert backbone.select(cond, torch.tensor([2, 0])).tolist() == [5, 0]
    x = torch.randn(3, *backbone.latent_shape)
    v = backbone.velocity(x, torch.rand(3), cond)
    assert v.shape == x.shape and v.requires_grad
    assert backbone.velocity(x, torch.tensor(0.5), cond).shape == x.shape
    assert not backbone.reference_velocity(x, torch.rand(3), cond).requires_grad
    params = list(backbone.trainable_parameters())
    assert all(p.requires_grad for p in params)
    assert sum(p.numel() for p in params) == parameter_count(backbone.reference)


def test_reference_is_unaffected_by_policy_updates(backbone):
    cond = backbone.encode(["a red circle", "a green square"])
    x, t = torch.randn(2, *backbone.latent_shape), torch.tensor([0.9, 0.3])
    ref_before = backbone.reference_velocity(x, t, cond)
    pol_before = backbone.velocity(x, t, cond).detach()
    assert torch.allclose(ref_before, pol_before)
    with torch.no_grad():
        for p in backbone.trainable_parameters():
            p.add_(0.1)
    assert not torch.allclose(backbone.velocity(x, t, cond), pol_before)
    assert torch.equal(backbone.reference_velocity(x, t, cond), ref_before)


def test_unknown_prompt_names_it_and_lists_valid_ones(backbone):
    with pytest.raises(ValueError, match="'a purple circle'.*a red circle"):
        backbone.encode(["a red circle", "a purple circle"])


def test_decode_maps_to_unit_interval(backbone):
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5).expand(1, 3, 16, 5)
    assert backbone.decode(x)[0, 0, 0].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


# ---------------------------------------------------------------------------------------------- proxy


def _blob(colour: tuple[float, float, float], rows: slice, cols: slice) -> torch.Tensor:
    image = torch.full((1, 3, 16, 16), 0.5)
    image[0, :, rows, cols] = torch.tensor(colour).view(3, 1, 1)
    return image


def test_composition_zero_at_target_and_low_in_far_corner():
    red = (1.0, 0.0, 0.0)
    at_target = composition(_blob(red, slice(2, 6), slice(2, 6)), ["a red circle"])
    toward_corner = composition(_blob(red, slice(10, 14), slice(10, 14)), ["a red circle"])
    far_corner = composition(_blob(red, slice(12, 16), slice(12, 16)), ["a red square"])
    assert at_target.item() == pytest.approx(0.0, abs=1e-3)
    assert toward_corner.item() == pytest.approx(-math.sqrt(2) * 8 / 16, abs=1e-3)
    assert far_corner.item() == pytest.approx(-math.sqrt(2) * 10 / 16, abs=1e-3)
    assert far_corner.item() < -0.85  # the minimum over all images is -sqrt(2) * 11.5 / 16 = -1.02


def test_composition_only_counts_the_prompted_colour():
    blue_at_target = _blob((0.0, 0.0, 1.0), slice(2, 6), slice(2, 6))
    assert composition(blue_at_target, ["a blue circle"]).item() == pytest.approx(0.0, abs=1e-3)
    red_prompt = composition(blue_at_target, ["a red circle"]).item()
    assert red_prompt == pytest.approx(-math.sqrt(2) * 4 / 16, abs=1e-3)  # falls back to the centre


def test_composition_of_real_renders_is_near_the_documented_base():
    ids = torch.arange(9).repeat(50)
    assert -0.40 < composition(_renders(ids, 3), _names(ids)).mean().item() < -0.25


def test_saturation_grey_red_and_half():
    grey, red = torch.full((1, 3, 16, 16), 0.5), _blob((1.0, 0.0, 0.0), slice(0, 16), slice(0, 16))
    half = _blob((1.0, 0.0, 0.0), slice(0, 8), slice(0, 16))
    scores = saturation(torch.cat([grey, red, half]), ["a red circle"] * 3)
    assert scores.tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert set(PROXIES) == {"composition", "saturation"}


# ---------------------------------------------------------------------------------------------- gold


@pytest.fixture(scope="module")
def gold() -> NanoGold:
    return NanoGold.fit(n_per_prompt=400, seed=0)


def test_ppca_log_density_equals_the_full_gaussian():
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64)).Q
    f64 = torch.float64
    eigenvalues, residual = torch.tensor([2.0, 0.5], dtype=f64), torch.tensor(0.1, dtype=f64)
    g = PPCAGaussian(torch.randn(6, dtype=f64), basis, eigenvalues, residual)
    projector = basis @ basis.T
    cov = basis @ torch.diag(g.eigenvalues) @ basis.T + g.residual * (torch.eye(6, dtype=f64) - projector)
    x = torch.randn(4, 6, dtype=torch.float64)
    expected = torch.distributions.MultivariateNormal(g.mean, cov).log_prob(x)
    assert torch.allclose(ppca_log_density(x, g), expected)


def test_kmeans_separates_two_blobs():
    x = torch.cat([torch.randn(50, 3), torch.randn(50, 3) + 20]).double()
    labels = kmeans(x, 2, torch.Generator().manual_seed(0))
    assert labels[:50].unique().numel() == 1 and labels[50:].unique().numel() == 1 and labels[0] != labels[-1]


def test_gold_prefers_real_renders_over_noise_and_wrong_prompts(gold):
    ids = torch.arange(9).repeat(20)
    real = _renders(ids, 99)
    right, wrong = _names(ids), _names((ids + 1) % 9)
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(5))
    good, bad, noisy = gold.score(real, right), gold.score(real, wrong), gold.score(noise, right)
    assert good["accuracy"] > 0.9 and bad["accuracy"] < 0.1 and noisy["accuracy"] < 0.5
    assert good["loglik"] > bad["loglik"] + 1 and good["loglik"] > noisy["loglik"] + 10
    rows = gold.per_image(real, right)
    assert rows["loglik"].shape == rows["correct"].shape == (180,)


def test_composition_is_hackable_by_painting_colour_at_the_target(gold):
    ids = torch.zeros(20, dtype=torch.long)  # "a red circle"
    real = _renders(ids, 11)
    hacked = real.clone()
    hacked[:, :, 3:5, 3:5] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    names = _names(ids)
    assert (composition(hacked, names) > composition(real, names) + 0.01).all()
    assert gold.score(hacked, names)["loglik"] < gold.score(real, names)["loglik"] - 0.5


def test_gold_likelihood_falls_with_added_noise(gold):
    ids = torch.arange(9).repeat(10)
    real = _renders(ids, 7)
    blurred = (real + 0.1 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert gold.score(blurred, _names(ids))["loglik"] < gold.score(real, _names(ids))["loglik"] - 0.5


def test_diversity_zero_for_identical_and_positive_for_renders():
    ids = torch.tensor([0, 0, 0, 4, 4])
    same = _renders(ids[:1], 0).expand(5, -1, -1, -1)
    assert diversity(same, _names(ids)) == 0.0
    assert diversity(_renders(ids, 0), _names(ids)) > 0.05
    two = torch.stack([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)])
    assert diversity(two, ["a red circle"] * 2) == pytest.approx(1.0)


def test_average_gold_is_one_at_base_and_orders_with_quality():
    base = {"loglik": -2.0, "accuracy": 0.9, "diversity": 0.1}
    assert average_gold(base, base) == pytest.approx(1.0)
    worse = {**base, "loglik": -3.0}  # a naive ratio -3 / -2 = 1.5 would call this better
    assert average_gold(worse, base) == pytest.approx((math.exp(-1.0) + 2) / 3)
    better = {"loglik": -1.5, "accuracy": 0.95, "diversity": 0.12}
    assert average_gold(better, base) > 1.0
    shifted = {k: v + 5.0 * (k == "loglik") for k, v in better.items()}
    shifted_base = {k: v + 5.0 * (k == "loglik") for k, v in base.items()}
    assert average_gold(shifted, shifted_base) == pytest.approx(average_gold(better, base))


def test_gold_cache_round_trip_and_option_check(tmp_path):
    path = tmp_path / "gold.safetensors"
    fitted = NanoGold.load_or_fit(path, n_per_prompt=100, seed=3)
    loaded = NanoGold.load_or_fit(path, n_per_prompt=100, seed=3)
    images = (render(torch.arange(9), torch.Generator().manual_seed(1)) + 1) / 2
    assert torch.equal(fitted.log_likelihoods(images), loaded.log_likelihoods(images))
    other = NanoGold.load_or_fit(path, n_per_prompt=100, seed=4)  # other options: refit, not the cached one
    assert not torch.equal(other.log_likelihoods(images), fitted.log_likelihoods(images))
