"""The paper's tasks: prompts and evaluation sets from the real files, metrics built lazily from the weights section."""

from pathlib import Path

import pytest
import torch

from eval.metrics import MissingWeightsError
from eval.tasks import build_task, fixed_subset

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"public prompt files not found at {DATA} (../shared/datasets)")


def test_fixed_subset_is_seeded_ordered_and_complete_without_a_size():
    items = [f"p{i}" for i in range(100)]
    a, b = fixed_subset(items, 10, seed=3), fixed_subset(items, 10, seed=3)
    assert a == b and len(a) == 10 and a == sorted(a, key=items.index)
    assert fixed_subset(items, 10, seed=4) != a
    assert fixed_subset(items, None, 0) == items and fixed_subset(items, 500, 0) == items


@needs_data
def test_pickscore_task_reads_train_and_test_lists_and_subsets_the_evaluation(tmp_path):
    task = build_task("sd35", {"reward": "pickscore", "prompts": str(DATA / "flow_grpo" / "pickscore"),
                               "gold": ["hpsv2"], "eval_subset": 64, "final_subset": 32})
    assert len(task.prompts) == 25432
    assert len(task.evaluation_prompts()) == 64 and len(task.final_set()) == 32
    test = (DATA / "flow_grpo" / "pickscore" / "test.txt").read_text().splitlines()
    assert set(task.evaluation_prompts()) <= {line.strip() for line in test}
    assert list(task.per_image_metrics()) == ["proxy", "hpsv2"] and task.eval_gold == ("hpsv2",)


@needs_data
def test_geneval_final_set_is_the_553_evaluation_prompts_times_four(tmp_path):
    (tmp_path / "geneval").mkdir()
    (tmp_path / "geneval" / "train_metadata.jsonl").symlink_to(DATA / "flow_grpo" / "geneval" / "test_metadata.jsonl")
    (tmp_path / "geneval" / "test_metadata.jsonl").symlink_to(DATA / "flow_grpo" / "geneval" / "test_metadata.jsonl")
    task = build_task("sd35", {"reward": "geneval", "prompts": str(tmp_path / "geneval"), "final_per_prompt": 4,
                               "final_prompts": str(DATA / "geneval" / "evaluation_metadata.jsonl"), "gold": []})
    assert len(task.final_set()) == 553 and task.final_per_prompt == 4
    assert len(task.evaluation_prompts()) == 2212 and task.proxy is not None  # accuracy, apart from the training score


@needs_data
def test_a_metric_without_its_weights_fails_on_first_use_naming_the_option(tmp_path):
    task = build_task("sd35", {"reward": "pickscore", "prompts": str(DATA / "flow_grpo" / "pickscore"), "gold": []},
                      {"pickscore": {"model": str(tmp_path / "nowhere"), "processor": str(tmp_path / "nothere")}})
    with pytest.raises(MissingWeightsError, match="metrics.pickscore.model") as err:
        task.reward(torch.zeros(1, 3, 8, 8), ["a cat"])
    assert str(tmp_path / "nowhere") in str(err.value) and "python -m eval.weights" in str(err.value)


def test_missing_prompt_folder_names_the_file_and_its_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="flow_grpo"):
        build_task("flux", {"reward": "ocr", "prompts": str(tmp_path / "ocr"), "gold": []})


def _weights_cli(config):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "eval.weights", "--config", str(config)], cwd=root,
                          capture_output=True, text=True, timeout=120)


def test_weights_check_lists_each_missing_weight_once_with_how_to_get_it():
    done = _weights_cli("workflow/config/paper.yaml")
    assert done.returncode == 1, done.stderr
    out = done.stdout
    for option in ("metrics.hpsv2.checkpoint", "metrics.pickscore.model", "metrics.imagereward.med_config",
                   "metrics.geneval.clip_checkpoint", "metrics.unifiedreward.model_path"):
        assert out.count(option) == 1, option
    assert "huggingface-cli download xswu/HPSv2" in out and "needed by sd35/geneval, sd35/ocr, sd35/pickscore, flux/pickscore" in out
    assert "MISSING backbone flux: weights/FLUX.1-dev" in out and "ok      ocr" in out
    assert _weights_cli("workflow/config/nano.yaml").returncode == 0


@needs_data
def test_geneval_set_score_is_the_mean_over_tags_not_over_images():
    from eval.tasks import geneval_summary
    from eval.prompts.records import load_geneval

    path = DATA / "geneval" / "evaluation_metadata.jsonl"
    records = load_geneval(path).records
    prompts = [r.prompt for r in records]
    correct = [1.0 if r.tag == "single_object" else 0.0 for r in records]  # 80 of 553 images right
    summary = geneval_summary([str(path)], prompts, correct)
    assert summary["proxy"] == pytest.approx(1 / 6) and summary["geneval_single_object"] == 1.0
    assert sum(correct) / len(correct) == pytest.approx(80 / 553)  # what a per-image mean would have said
    assert {k for k in summary if k.startswith("geneval_")} == {f"geneval_{t}" for t in (
        "single_object", "two_object", "counting", "colors", "position", "color_attr")}
