"""The paper grid's presets resolve to exactly the settings paper.md lists (one table-driven test)."""

from pathlib import Path

import pytest
import yaml

from jobs.config import config_from_dict, resolve_run

PAPER = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "config" / "paper.yaml").read_text())

SD35 = dict(sampler="flowgrpo", num_steps=10, shift=3.0, noise_level=0.7, trained_steps=9, trainable_steps=9,
            eval_steps=40, group_size=24, prompts_per_iteration=48, minibatches=2, inner_epochs=1,
            weight_decay=1e-4, grad_clip=1.0, ema_decay=0.9, ema_every=8, adv_clip=5.0, adv_std_eps=1e-4,
            drop_zero_advantage=True, shared_group_noise=False)
GUARD = dict(SD35, variant="grpo_guard", lr=1e-4, kl_beta=0.0, adv_std="group", eval_every=30)
FLOWGRPO = dict(SD35, variant="flowgrpo", lr=3e-4, clip_eps=1e-4, adv_std="group", eval_every=60, bias_reduction="sample")
SD35_BACKBONE = {"cfg": 4.5, "negative_prompt": "", "resolution": 512, "mixed_precision": "fp16",
                 "lora": {"rank": 32, "alpha": 64}}

# (setting, variant): expected values, from paper.md "Reference training set-up"
EXPECTED = {
    ("sd35/geneval", "grpo_guard"): dict(GUARD, clip_eps=2e-6, bias_reduction="sample"),
    ("sd35/geneval", "grpo_guard_public"): dict(GUARD, clip_eps=2e-6, bias_reduction="batch"),
    ("sd35/ocr", "grpo_guard_public"): dict(GUARD, clip_eps=2e-6, bias_reduction="batch"),
    ("sd35/pickscore", "grpo_guard_public"): dict(GUARD, clip_eps=4e-6, bias_reduction="batch"),
    ("sd35/geneval", "flowgrpo"): dict(FLOWGRPO, kl_beta=0.04),
    ("sd35/geneval", "flowgrpo_public"): dict(FLOWGRPO, kl_beta=0.04, adv_std="global"),
    ("sd35/ocr", "flowgrpo_public"): dict(FLOWGRPO, kl_beta=0.04, adv_std="global"),
    ("sd35/pickscore", "flowgrpo_public"): dict(FLOWGRPO, kl_beta=0.01, adv_std="global"),
    ("flux/pickscore", "dancegrpo"): dict(variant="dancegrpo", sampler="dancegrpo", num_steps=16, shift=3.0,
                                          noise_level=0.3, trainable_steps=15, trained_steps=9, group_size=12,
                                          shared_group_noise=True, decode_x0_hat=True, clip_eps=1e-4, kl_beta=0.0,
                                          lr=1e-5, adv_std_eps=1e-8, adv_std_unbiased=True),
}


@pytest.mark.parametrize("setting, variant", sorted(EXPECTED))
def test_preset_resolves_to_the_listed_values(setting, variant):
    config = config_from_dict(resolve_run(PAPER, variant, setting)).to_dict()
    expected = EXPECTED[(setting, variant)]
    assert {k: config[k] for k in expected} == expected
    if setting.startswith("sd35"):
        backbone = config["backbone"]
        assert backbone["name"] == "sd35" and {k: backbone[k] for k in ("cfg", "negative_prompt", "resolution", "mixed_precision")} == {
            k: SD35_BACKBONE[k] for k in ("cfg", "negative_prompt", "resolution", "mixed_precision")}
        assert {k: backbone["lora"][k] for k in ("rank", "alpha")} == SD35_BACKBONE["lora"]
    else:
        assert config["backbone"]["guidance"] == 3.5 and config["backbone"]["resolution"] == 720


@pytest.mark.parametrize("method, deviation", [("grpo_guard", "bias_reduction"), ("flowgrpo", "adv_std")])
@pytest.mark.parametrize("setting", ["sd35/geneval", "sd35/ocr", "sd35/pickscore"])
def test_public_preset_differs_from_the_paper_faithful_one_only_in_its_deviation(setting, method, deviation):
    paper = config_from_dict(resolve_run(PAPER, method, setting)).to_dict()
    public = config_from_dict(resolve_run(PAPER, f"{method}_public", setting)).to_dict()
    assert {k for k in paper if paper[k] != public[k]} == {deviation}
