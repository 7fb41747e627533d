"""The SD3.5-M and FLUX.1-dev backbones on tiny random pipelines loaded from diffusers folders.

Full GRPO iterations for every variant, exact on-policy recomputation (with and without CFG), the
LoRA-disabled reference, resume equivalence, the missing-folder error and the prompt cache.
"""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from eval.nano import saturation
from eval.tasks import Task
from guard.backbones import build_backbone
from guard.backbones.tiny import build
from guard.ratio import VARIANTS
from guard.train import Trainer
from jobs.config import TrainConfig

PROMPTS = ["a red apple on a table", "a blue car next to a tree"]
SMALL = {"resolution": 64, "mixed_precision": "no", "max_sequence_length": 32, "lora": {"rank": 4, "alpha": 8,
         "targets": ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"]}}
SAMPLERS = {
    "sd35": dict(sampler="flowgrpo", num_steps=4, trained_steps=3, trainable_steps=3, noise_level=0.7),
    "flux": dict(sampler="dancegrpo", num_steps=4, trained_steps=2, trainable_steps=3, noise_level=0.3,
                 shared_group_noise=True, decode_x0_hat=True),
}
TIMES = ["time_sample", "time_reward", "time_update"]


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    """Tiny SD3 (built in-process) and FLUX (built through the CLI) pipeline folders."""
    root = tmp_path_factory.mktemp("pipelines")
    build("sd3", root / "sd3")
    done = subprocess.run([sys.executable, "-m", "guard.backbones.tiny", "flux", "--out", str(root / "flux")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {"sd35": root / "sd3", "flux": root / "flux"}


def backbone(folders, name, **options):
    return build_backbone({"name": name, "path": str(folders[name]), **SMALL, **options})


def saturation_task():
    """Proxy = gold = mean HSV saturation of the decoded image (works on any RGB image in [0, 1])."""
    return Task(PROMPTS, saturation, {"saturation": saturation})


def trainer(folders, name, out, bb=None, task=None, **overrides):
    config = dict(iterations=2, group_size=4, prompts_per_iteration=2, minibatches=2, eval_every=2, eval_per_prompt=1,
                  eval_steps=2, checkpoint_every=1, lr=1e-2, clip_eps=0.2, drop_zero_advantage=False,
                  variant="dancegrpo" if name == "flux" else "flowgrpo", backbone={"name": name, **SMALL})
    config = {**config, **SAMPLERS[name], **overrides}
    return Trainer(TrainConfig(**config), bb or backbone(folders, name), task or saturation_task(), out)


def assert_exactly_on_policy(out):
    """The first minibatch of each rollout recomputes the stored mu_old bit for bit."""
    steps = pd.read_json(out / "steps.jsonl", lines=True)
    first = steps[steps["update"] == 0]
    assert len(first) > 0
    assert (first.policy_shift_u == 0).all() and (first.log_ratio_mean == 0).all()
    assert (steps[steps["update"] == 1].policy_shift_u > 0).any()


@pytest.mark.parametrize("name", ["sd35", "flux"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rl_iteration_runs_for_every_variant(folders, tmp_path, name, variant):
    final = trainer(folders, name, tmp_path, variant=variant).run()
    train = pd.read_json(tmp_path / "train.jsonl", lines=True)
    assert list(train.iteration) == [0, 1] and train.loss.notna().all() and (train.updates == 2).all()
    assert 0 <= final["saturation"] <= 1 and final["iteration"] == 2
    assert (tmp_path / "samples" / "iter_000002.png").is_file()
    assert_exactly_on_policy(tmp_path)


@pytest.mark.parametrize("cfg", [1.0, 4.5])
def test_sd35_rollout_mean_equals_training_recomputation(folders, tmp_path, cfg):
    trainer(folders, "sd35", tmp_path, bb=backbone(folders, "sd35", cfg=cfg), iterations=1, minibatches=4).run()
    assert_exactly_on_policy(tmp_path)


@pytest.mark.parametrize("name", ["sd35", "flux"])
def test_a_row_does_not_depend_on_its_batch(folders, name):
    """Fixed-size transformer chunks: without them a row computed in a batch of 2 differs in the last bits."""
    bb = backbone(folders, name, **({"cfg": 1.0} if name == "sd35" else {}))
    x = torch.randn(9, *bb.latent_shape, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0.1, 0.9, 9)
    cond = bb.encode([PROMPTS[i % 2] for i in range(9)])
    whole = bb.velocity(x, t, cond)
    for rows in ([0], [4, 5], [2, 3, 4, 5, 6]):
        index = torch.tensor(rows)
        assert torch.equal(bb.velocity(x[index], t[index], bb.select(cond, index)), whole[index])


def test_reference_is_the_base_model_and_the_policy_moves(folders, tmp_path):
    from diffusers import SD3Transformer2DModel

    bb = backbone(folders, "sd35", cfg=1.0, forward_batch=2)  # the same batch shape as the direct call below
    x = torch.randn(2, *bb.latent_shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.9, 0.4])
    cond = bb.encode(PROMPTS)
    trainer(folders, "sd35", tmp_path, bb=bb, iterations=1).run()
    base = SD3Transformer2DModel.from_pretrained(folders["sd35"] / "transformer")
    with torch.no_grad():
        expected = base(hidden_states=x, timestep=1000 * t, encoder_hidden_states=cond.embeds,
                        pooled_projections=cond.pooled, return_dict=False)[0]
    assert torch.equal(bb.reference_velocity(x, t, cond), expected)
    assert not torch.allclose(bb.velocity(x, t, cond), expected)


def test_flux_feeds_the_pipeline_inputs_and_quantised_time(folders):
    """As FluxPipeline: packed 2x2 tokens, timestep t and guidance g unscaled; DanceGRPO's int(1000 t) / 1000."""
    from diffusers import FluxPipeline, FluxTransformer2DModel

    bb = backbone(folders, "flux", forward_batch=2)
    x = torch.randn(2, *bb.latent_shape, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.9137, 0.4001])
    cond = bb.encode(PROMPTS)
    base = FluxTransformer2DModel.from_pretrained(folders["flux"] / "transformer")
    with torch.no_grad():
        packed = base(hidden_states=FluxPipeline._pack_latents(x, 2, 16, 8, 8), timestep=torch.tensor([0.913, 0.4]),
                      guidance=torch.full((2,), 3.5), pooled_projections=cond.pooled, encoder_hidden_states=cond.embeds,
                      txt_ids=torch.zeros(cond.embeds.shape[1], 3),
                      img_ids=FluxPipeline._prepare_latent_image_ids(1, 4, 4, "cpu", torch.float32), return_dict=False)[0]
    assert torch.equal(bb.reference_velocity(x, t, cond), FluxPipeline._unpack_latents(packed, 64, 64, 8))
    exact = backbone(folders, "flux", forward_batch=2, quantize_time=False)
    assert not torch.equal(exact.velocity(x, t, cond), bb.velocity(x, t, cond))
    assert torch.equal(exact.velocity(x, torch.tensor([0.913, 0.4]), cond), bb.velocity(x, t, cond))


@pytest.mark.parametrize("name", ["sd35", "flux"])
def test_gradient_checkpointing_and_half_precision(folders, name):
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.9, 0.4])
    grads = []
    for checkpointing in (False, True):
        bb = backbone(folders, name, gradient_checkpointing=checkpointing)
        torch.nn.init.normal_(bb.trainable_parameters()[1], generator=torch.Generator().manual_seed(1))
        bb.velocity(x, t, bb.encode(PROMPTS)).square().sum().backward()
        grads.append([p.grad for p in bb.trainable_parameters()])
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(*grads))
    half = backbone(folders, name, mixed_precision="bf16", transformer_dtype="bf16")
    v = half.velocity(x, t, half.encode(PROMPTS))
    assert v.dtype == torch.float32 and torch.isfinite(v).all()
    assert half.pipe.transformer.dtype == torch.bfloat16  # frozen base in bf16, LoRA kept in fp32
    assert all(p.dtype == torch.float32 for p in half.trainable_parameters())


class Kill(Exception):
    """Stands for a job killed mid-iteration."""


@pytest.mark.parametrize("name", ["sd35", "flux"])
def test_killed_run_resumes_to_the_same_result(folders, tmp_path, name):
    straight = trainer(folders, name, tmp_path / "a", variant="grpo_guard").run()
    calls = {"n": 0}

    def killing(images, prompts):  # calls: eval 0, rollout 0, rollout 1 <- killed after checkpoint 1
        calls["n"] += 1
        if calls["n"] == 3:
            raise Kill
        return saturation(images, prompts)

    task = saturation_task()
    task.reward = killing
    with pytest.raises(Kill):
        trainer(folders, name, tmp_path / "b", task=task, variant="grpo_guard").run()
    assert json.loads((tmp_path / "b" / "checkpoints" / "latest").read_text())["checkpoint"] == "ckpt-000001"
    resumed = trainer(folders, name, tmp_path / "b", variant="grpo_guard")
    assert resumed.run() == straight and resumed.start == 1
    for log in ("train.jsonl", "eval.jsonl", "steps.jsonl"):
        a, b = (pd.read_json(tmp_path / run / log, lines=True).drop(columns=TIMES, errors="ignore") for run in "ab")
        if log == "train.jsonl":
            assert b.pop("resumed_from").dropna().tolist() == ["ckpt-000001"]
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(("name", "repo"), [("sd35", "stabilityai/stable-diffusion-3.5-medium"),
                                            ("flux", "black-forest-labs/FLUX.1-dev")])
def test_missing_or_incomplete_folder_says_what_to_get(folders, tmp_path, name, repo):
    missing = tmp_path / "weights"
    with pytest.raises(FileNotFoundError, match=rf"model_index\.json.*huggingface-cli download {repo} --local-dir"):
        build_backbone({"name": name, "path": str(missing)})
    missing.mkdir()
    shutil.copy(folders[name] / "model_index.json", missing)
    with pytest.raises(FileNotFoundError, match=r"missing .*transformer/.*expected the layout model_index\.json"):
        build_backbone({"name": name, "path": str(missing)})
    with pytest.raises(ValueError, match="unknown backbone option.*cfg_scale"):
        build_backbone({"name": name, "path": str(folders[name]), "cfg_scale": 2})


def test_each_prompt_is_encoded_once(folders):
    bb = backbone(folders, "sd35", cfg=4.5)
    seen = []
    encode = bb.pipe.encode_prompt

    def spy(prompts, *args, **kwargs):
        seen.append(list(prompts))
        return encode(prompts, *args, **kwargs)

    bb.pipe.encode_prompt = spy
    first = bb.encode([PROMPTS[0], PROMPTS[1], PROMPTS[0]])
    again = bb.encode([PROMPTS[1], PROMPTS[0]])
    x = torch.randn(2, *bb.latent_shape)
    for _ in range(2):
        bb.velocity(x, torch.tensor([0.5, 0.5]), again)
    assert seen == [[PROMPTS[0], PROMPTS[1]], [""]]
    assert torch.equal(first.embeds[1], again.embeds[0]) and torch.equal(first.pooled[2], again.pooled[1])


def test_fp16_autocast_trains_through_the_loss_scaler(folders, tmp_path):
    """fp16 autocast turns the trainer's GradScaler on: gradients are unscaled before clipping and logging."""
    runs = {}
    for precision in ("no", "fp16"):
        options = {**SMALL, "mixed_precision": precision}
        t = trainer(folders, "sd35", tmp_path / precision, bb=backbone(folders, "sd35", mixed_precision=precision),
                    backbone={"name": "sd35", **options})
        assert t.scaler.is_enabled() == (precision == "fp16")
        t.run()
        runs[precision] = pd.read_json(tmp_path / precision / "train.jsonl", lines=True)
    state = json.loads((tmp_path / "fp16" / "checkpoints" / "ckpt-000002" / "state.json").read_text())
    assert state["grad_scaler"]["scale"] > 1  # scaled by 2^k, saved for resume
    ratio = runs["fp16"].grad_norm / runs["no"].grad_norm
    assert ratio.between(0.5, 2.0).all(), ratio  # unscaled: the fp32 run's gradient size, not 2^16 times it
