"""The whole workflow on the real code paths: a tiny SD3 pipeline folder, the PickScore task from a
prompts folder, PickScore as the proxy and ImageReward as the gold metric (tiny random weights).

Everything a cluster run of ``paper.yaml`` does, at toy size: weights check, prompt manifest, base
check, LoRA training through ``python -m guard.train``, sampling the final set, per-metric scoring,
tables, figures and the summary.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from guard.backbones.tiny import build
from tiny_metrics import imagereward_files, pickscore_files

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
PROMPTS = ["a sign that says \"grpo\"", "a poster with the words \"guard\"", "a mug printed with \"flow\"",
           "a neon light reading \"clip\""]


def experiment(root: Path) -> dict:
    """A two-variant SD3 x PickScore experiment whose paths point into ``root``."""
    lora = {"rank": 2, "alpha": 4, "targets": ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"]}
    return {
        "experiment": "real_tiny",
        "seeds": [0],
        "resources": {"train": {"runtime": 10, "mem_mb": 4000, "gpus": 0, "threads": 1}},
        "train": {
            "iterations": 2, "sampler": "flowgrpo", "num_steps": 3, "trained_steps": 2, "trainable_steps": 2,
            "prompts_per_iteration": 2, "group_size": 2, "minibatches": 2, "eval_every": 1, "eval_per_prompt": 1,
            "eval_steps": 2, "checkpoint_every": 1, "drop_zero_advantage": False, "histogram_iterations": [1],
            "ema_every": 1,
            "backbone": {"name": "sd35", "path": "weights/sd3", "resolution": 64, "mixed_precision": "no",
                         "max_sequence_length": 16, "lora": lora},
            "task": {"reward": "pickscore", "prompts": "prompts/pickscore", "gold": ["imagereward"],
                     "final_per_prompt": 2},
            "metrics": {"pickscore": pickscore_files(root / "weights" / "pickscore"),
                        "imagereward": imagereward_files(root / "weights" / "imagereward")},
        },
        "grid": {"sd35": {"pickscore": {"variants": {"flowgrpo": {"clip_eps": 1e-4}, "grpo_guard": {"clip_eps": 2e-6}}}}},
        "analysis": {"gold": ["imagereward"], "baseline": "flowgrpo", "normalised": "grpo_guard",
                     "comparisons": {"ablation": ["flowgrpo", "grpo_guard"]}},
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    build("sd3", root / "weights" / "sd3")
    (root / "prompts" / "pickscore").mkdir(parents=True)
    (root / "prompts" / "pickscore" / "train.txt").write_text("\n".join(PROMPTS) + "\n")
    (root / "prompts" / "pickscore" / "test.txt").write_text("\n".join(PROMPTS[:2]) + "\n")
    config = root / "real_tiny.yaml"
    config.write_text(yaml.safe_dump(experiment(root), sort_keys=False))
    return root, config


def run(cwd, *args, timeout=900):
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def test_weights_check_passes_when_every_folder_is_there(project):
    root, config = project
    done = run(root, "-m", "eval.weights", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok      backbone sd35: weights/sd3" in done.stdout and "ok      imagereward" in done.stdout


@pytest.fixture(scope="module")
def workflow(project):
    """The whole workflow, run once for this module."""
    root, config = project
    return run(root, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", "--configfile", str(config),
               "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default"))


def test_the_workflow_runs_end_to_end_on_a_tiny_sd3_with_real_metrics(project, workflow):
    root, _ = project
    assert workflow.returncode == 0, (workflow.stdout + workflow.stderr)[-4000:]
    results = root / "results" / "real_tiny"
    manifest = json.loads((results / "prompts" / "sd35_pickscore.json").read_text())
    assert [f["n_records"] for f in manifest["files"]] == [4, 2]
    setting = results / "sd35" / "pickscore"
    for run_dir in ("base", "flowgrpo/seed0", "grpo_guard/seed0"):
        scores = pd.read_csv(setting / run_dir / "scores" / "scores.csv")
        assert set(scores.metric) == {"proxy", "imagereward"} and len(scores) == 2 * 2 * 2  # 2 test prompts x 2 images
        assert scores.score.notna().all()
    run_dir = setting / "grpo_guard" / "seed0"
    assert (run_dir / "checkpoints" / "latest").is_file()
    ev = pd.read_json(run_dir / "eval.jsonl", lines=True)
    assert {"proxy", "imagereward"} <= set(ev) and list(ev.iteration) == [0, 1, 2]
    main = pd.read_csv(results / "tables" / "main.csv", index_col=[0, 1, 2])
    assert list(main.index.get_level_values("variant")) == ["base", "flowgrpo", "grpo_guard"]
    assert list(main.columns) == ["seeds", "proxy", "imagereward", "avg_gold"]
    assert (setting / "figures" / "logratio_per_step.png").is_file()
    # the EMA LoRA of each run as a peft folder, loadable onto the base transformer
    adapter = setting / "grpo_guard" / "seed0" / "lora"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}


def test_exported_adapter_loads_onto_the_base_transformer_as_the_ema_policy(project, workflow):
    import torch
    from diffusers import SD3Transformer2DModel
    from peft import PeftModel

    from guard.backbones import build_backbone
    from guard.checkpoint import latest_checkpoint, load_ema_weights
    from jobs.config import load_config

    root, config = project
    assert workflow.returncode == 0
    run_dir = root / "results" / "real_tiny" / "sd35" / "pickscore" / "grpo_guard" / "seed0"
    options = {**load_config(config, setting="sd35/pickscore").backbone, "path": str(root / "weights" / "sd3")}
    backbone = build_backbone(options)
    load_ema_weights(latest_checkpoint(run_dir / "checkpoints"), [p for p in backbone.trainable_parameters()])
    base = SD3Transformer2DModel.from_pretrained(root / "weights" / "sd3" / "transformer")
    loaded = PeftModel.from_pretrained(base, run_dir / "lora")
    trained = {n: p for n, p in backbone.transformer.named_parameters() if "lora_" in n}
    exported = {n: p for n, p in loaded.named_parameters() if "lora_" in n}
    assert trained.keys() == exported.keys() and len(trained) > 0
    for name, value in trained.items():
        torch.testing.assert_close(exported[name], value, rtol=0, atol=0, msg=name)
    assert any(float(v.detach().abs().max()) > 0 for n, v in trained.items() if "lora_B" in n)  # B moved off its zero init


def test_one_command_scores_an_image_folder_with_every_metric_of_a_setting(project, workflow, tmp_path):
    """``python -m eval.score`` on the experiment file: the same scores as the workflow's score job."""
    root, config = project
    assert workflow.returncode == 0
    images = root / "results" / "real_tiny" / "sd35" / "pickscore" / "base" / "eval_images"
    done = run(root, "-m", "eval.score", "--config", str(config), "--setting", "sd35/pickscore", "--images", str(images),
               "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    expected = (images.parent / "scores" / "summary.jsonl").read_text()
    assert json.loads(done.stdout.splitlines()[-1]) == json.loads(expected)
    assert "proxy " in done.stderr and "imagereward " in done.stderr  # a progress bar per metric, also in logs


def test_training_with_a_missing_metric_folder_stops_before_loading_the_model(project, tmp_path):
    root, config = project
    broken = tmp_path / "broken.yaml"
    data = yaml.safe_load(config.read_text())
    data["train"]["metrics"]["imagereward"]["checkpoint"] = str(tmp_path / "ImageReward.pt")
    broken.write_text(yaml.safe_dump(data))
    done = run(root, "-m", "guard.train", "--config", str(broken), "--setting", "sd35/pickscore", "--out",
               str(tmp_path / "run"), timeout=300)
    assert done.returncode == 2 and "metrics.imagereward.checkpoint" in done.stderr
    assert "huggingface-cli download THUDM/ImageReward" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
