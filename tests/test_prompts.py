"""Prompt loaders, the per-epoch K-repeat draw and the manifest CLI, on real and tmp files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eval.prompts.draw import KRepeatSampler
from eval.prompts.records import (
    DUPLICATE_POLICY,
    EMPTY_POLICY,
    ExcludeObject,
    GenEvalRecord,
    IncludeObject,
    Position,
    PromptFileError,
    load_geneval,
    load_ocr,
    load_pickscore,
    ocr_target,
    tag_histogram,
)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"public prompt files not found at {DATA} (../shared/datasets)"
)

GENEVAL_EVAL = DATA / "geneval" / "evaluation_metadata.jsonl"
GENEVAL_TEST = DATA / "flow_grpo" / "geneval" / "test_metadata.jsonl"
OCR_TEST = DATA / "flow_grpo" / "ocr" / "test.txt"
PICK_TRAIN = DATA / "flow_grpo" / "pickscore" / "train.txt"
PICK_TEST = DATA / "flow_grpo" / "pickscore" / "test.txt"

# Counted by hand; two files lack a final newline, so `wc -l` reports one line fewer (2211, 1017).
REAL_COUNTS = [
    (load_geneval, GENEVAL_EVAL, 553),
    (load_geneval, GENEVAL_TEST, 2212),
    (load_ocr, OCR_TEST, 1018),
    (load_pickscore, PICK_TRAIN, 25432),
    (load_pickscore, PICK_TEST, 2048),
]
REAL_IDS = ["geneval-eval", "flow_grpo-geneval", "ocr-test", "pickscore-train", "pickscore-test"]
NANO = [
    "a red circle", "a green circle", "a blue circle",
    "a red square", "a green square", "a blue square",
    "a red triangle", "a green triangle", "a blue triangle",
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    """A tmp prompt file with exactly ``text``."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def geneval_line(prompt: str = "a photo of a cow", **extra: object) -> str:
    """One valid single-object GenEval line, with fields overridden by ``extra``."""
    obj = {"tag": "single_object", "include": [{"class": "cow", "count": 1}], "prompt": prompt}
    obj.update(extra)
    return json.dumps(obj)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m eval.prompts ...`` in a fresh interpreter."""
    cmd = [sys.executable, "-m", "eval.prompts", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------------------- real files


@needs_data
@pytest.mark.parametrize("loader,path,expected", REAL_COUNTS, ids=REAL_IDS)
def test_real_record_counts(loader, path, expected):
    loaded = loader(path)
    assert len(loaded.records) == loaded.report.n_records == expected
    assert len(path.read_bytes().splitlines()) == expected
    assert loaded.report.empty_lines == ()


@needs_data
def test_real_duplicates_reported():
    """Flow-GRPO's GenEval test set is GenEval's 553 prompts four times each; others are unique."""
    report = load_geneval(GENEVAL_TEST).report
    assert report.n_duplicated_prompts == 553
    assert len(report.duplicate_lines) == 2212 - 553
    assert report.duplicate_policy == "kept"
    for loader, path, _ in REAL_COUNTS:
        if path != GENEVAL_TEST:
            assert loader(path).report.duplicate_lines == ()


@needs_data
def test_real_ocr_targets():
    records = {r.line: r for r in load_ocr(OCR_TEST).records}
    assert records[1].target == "Spring Collection 2024"
    assert records[2].target == "Step Goal Achieved"
    assert records[36].target == "World's Smallest Elephant"
    assert records[344].target == "Emily & Jake Forever"
    assert records[428].target == "Don't Burn the Bread"
    assert records[1018].target == "Mars Colony One"
    assert records[1].prompt.startswith("A high-fashion runway with a sleek")


@needs_data
def test_real_geneval_tag_histogram():
    text = GENEVAL_EVAL.read_text()
    tags = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]
    by_substring = {tag: text.count(f'"tag": "{tag}"') for tag in tags}
    expected = {"single_object": 80, "two_object": 99, "counting": 80,
                "colors": 94, "position": 100, "color_attr": 100}
    assert by_substring == expected
    assert tag_histogram(load_geneval(GENEVAL_EVAL).records) == expected


@needs_data
def test_real_geneval_records_typed():
    records = {r.line: r for r in load_geneval(GENEVAL_EVAL).records}
    assert records[354] == GenEvalRecord(
        prompt="a photo of a dog right of a teddy bear",
        tag="position",
        include=(
            IncludeObject("teddy bear", 1),
            IncludeObject("dog", 1, position=Position("right of", 0)),
        ),
        exclude=(),
        line=354,
    )
    assert records[180].include == (IncludeObject("clock", 2),)
    assert records[180].exclude == (ExcludeObject("clock", 3),)
    assert records[260].include == (IncludeObject("fire hydrant", 1, color="blue"),)


@needs_data
@pytest.mark.parametrize("path", [GENEVAL_EVAL, GENEVAL_TEST], ids=["geneval", "flow_grpo"])
def test_real_geneval_round_trip(path):
    lines = path.read_text().splitlines()
    records = load_geneval(path).records
    assert [r.to_metadata() for r in records] == [json.loads(line) for line in lines]


# ---------------------------------------------------------------------------- malformed lines


COW = {"class": "cow", "count": 1}
DOG = {"class": "dog", "count": 1}
MALFORMED_GENEVAL = {
    "bad json": '{"tag": "single_object", "include": [',
    "not an object": "[1, 2]",
    "missing prompt": json.dumps({"tag": "colors", "include": [{"class": "cow", "count": 1}]}),
    "prompt not str": geneval_line(prompt=3),
    "empty include": geneval_line(include=[]),
    "count is str": geneval_line(include=[{"class": "cow", "count": "1"}]),
    "count is bool": geneval_line(include=[{"class": "cow", "count": True}]),
    "missing class": geneval_line(include=[{"count": 1}]),
    "unknown key": geneval_line(exlude=[]),
    "bad relation": geneval_line(include=[COW, {**DOG, "position": ["near", 0]}]),
    "self position": geneval_line(include=[COW, {**DOG, "position": ["above", 1]}]),
    "short position": geneval_line(include=[COW, {**DOG, "position": ["above"]}]),
    "exclude color": geneval_line(exclude=[{"class": "cow", "count": 2, "color": "red"}]),
}


@pytest.mark.parametrize("bad", MALFORMED_GENEVAL.values(), ids=MALFORMED_GENEVAL.keys())
def test_malformed_geneval_line_names_file_and_line(tmp_path, bad):
    path = write(tmp_path, "meta.jsonl", f"{geneval_line('a')}\n{geneval_line('b')}\n{bad}\n")
    with pytest.raises(PromptFileError) as info:
        load_geneval(path)
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ")


def test_ocr_line_without_target_names_file_and_line(tmp_path):
    path = write(tmp_path, "ocr.txt", 'a sign "OPEN"\na sign "SHUT"\na sign without text\n')
    with pytest.raises(PromptFileError, match=r"ocr\.txt:3: no \"quoted\" target"):
        load_ocr(path)


def test_ocr_target_rules():
    assert ocr_target('a "B" and "C"') == "B"
    for bad in ['one "quote', 'empty "" target', "none"]:
        with pytest.raises(ValueError):
            ocr_target(bad)


def test_non_utf8_line_names_file_and_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"one\ntwo\nbad \xff byte\n")
    with pytest.raises(PromptFileError, match=r"p\.txt:3: not UTF-8"):
        load_pickscore(path)


def test_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="flow_grpo/tree/main/dataset"):
        load_ocr(tmp_path / "absent.txt")


# ---------------------------------------------------------------------------- empty and repeated


def test_plain_empty_dropped_repeats_kept_and_reported(tmp_path):
    path = write(tmp_path, "p.txt", "a\n\nb\r\n a \n  \nb\na")
    loaded = load_pickscore(path)
    expected = [("a", 1), ("b", 3), ("a", 4), ("b", 6), ("a", 7)]
    assert [(r.prompt, r.line) for r in loaded.records] == expected
    report = loaded.report
    assert (report.n_lines, report.n_records) == (7, 5)
    assert report.empty_lines == (2, 5)
    assert report.duplicate_lines == (4, 6, 7)
    assert report.n_duplicated_prompts == 2
    assert (report.empty_policy, report.duplicate_policy) == (EMPTY_POLICY, DUPLICATE_POLICY)
    assert (EMPTY_POLICY, DUPLICATE_POLICY) == ("dropped", "kept")
    assert "2 empty (dropped)" in report.summary()
    assert "3 repeats of 2 prompts (kept)" in report.summary()


def test_geneval_blank_prompt_and_blank_line_reported(tmp_path):
    lines = [geneval_line("a"), "", geneval_line(" "), geneval_line("a")]
    loaded = load_geneval(write(tmp_path, "m.jsonl", "\n".join(lines) + "\n"))
    assert [r.line for r in loaded.records] == [1, 4]
    assert loaded.report.empty_lines == (2, 3)
    assert loaded.report.duplicate_lines == (4,)


def test_trailing_newlines_count_as_empty_lines(tmp_path):
    report = load_pickscore(write(tmp_path, "p.txt", "a\nb\n\n")).report
    assert (report.n_lines, report.n_records, report.empty_lines) == (3, 2, (3,))


# ---------------------------------------------------------------------------- per-epoch draw


def test_draw_groups_share_one_prompt():
    draw = KRepeatSampler(NANO, n_prompts=3, group_size=4, seed=7).draw(0)
    assert draw.group == (0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2)
    assert len(draw.prompts) == 12
    for g in range(3):
        members = [p for p, gg in zip(draw.prompts, draw.group) if gg == g]
        assert len(set(members)) == 1
    assert len(set(draw.index)) == 3
    assert draw.prompts == [NANO[i] for i in draw.index]


def test_draw_matches_flow_grpo_prompt_choice():
    """The reference draws randperm(len)[:m] from a generator seeded seed + epoch."""
    for seed, epoch in [(0, 0), (3, 5), (42, 1)]:
        g = torch.Generator()
        g.manual_seed(seed + epoch)
        reference = torch.randperm(len(NANO), generator=g)[:4].tolist()
        draw = KRepeatSampler(NANO, n_prompts=4, group_size=2, seed=seed).draw(epoch)
        assert list(draw.index[::2]) == reference


def test_draw_reproducible_and_resume_equal():
    sampler = KRepeatSampler(NANO, n_prompts=5, group_size=3, seed=11)
    uninterrupted = [sampler.draw(e) for e in range(6)]
    resumed = KRepeatSampler(list(NANO), n_prompts=5, group_size=3, seed=11)
    assert [resumed.draw(e) for e in range(3, 6)] == uninterrupted[3:]
    assert sampler.draw(2) == uninterrupted[2]


def test_draw_differs_between_epochs_and_seeds():
    sampler = KRepeatSampler(NANO, n_prompts=4, group_size=2, seed=0)
    indices = {sampler.draw(e).index for e in range(5)}
    assert len(indices) == 5
    assert KRepeatSampler(NANO, n_prompts=4, group_size=2, seed=100).draw(0).index not in indices


def test_draw_all_prompts_once_each():
    draw = KRepeatSampler(NANO, n_prompts=9, group_size=1).draw(3)
    assert sorted(draw.index) == list(range(9))


@needs_data
def test_draw_accepts_records():
    records = load_geneval(GENEVAL_EVAL).records
    draw = KRepeatSampler(records, n_prompts=8, group_size=4, seed=1).draw(2)
    assert all(isinstance(r, GenEvalRecord) for r in draw.items)
    assert draw.prompts == [records[i].prompt for i in draw.index]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_prompts": 10, "group_size": 2}, "n_prompts=10 exceeds the 9 prompts"),
        ({"n_prompts": 0, "group_size": 2}, "n_prompts must be >= 1"),
        ({"n_prompts": 2, "group_size": 0}, "group_size must be >= 1"),
        ({"n_prompts": 2, "group_size": 2, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_sampler_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        KRepeatSampler(NANO, **kwargs)


def test_draw_rejects_negative_epoch():
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        KRepeatSampler(NANO, n_prompts=2, group_size=2).draw(-1)


# ---------------------------------------------------------------------------- CLI


@needs_data
def test_cli_manifest(tmp_path):
    out = tmp_path / "sub" / "manifest.json"
    files = [str(GENEVAL_EVAL), str(GENEVAL_TEST)]
    result = run_cli("manifest", "--task", "geneval", "--files", *files, "--out", str(out))
    assert result.returncode == 0, result.stderr
    manifest = json.loads(out.read_text())
    assert manifest["task"] == "geneval"
    first, second = manifest["files"]
    assert first["path"] == str(GENEVAL_EVAL)
    assert first["sha256"] == hashlib.sha256(GENEVAL_EVAL.read_bytes()).hexdigest()
    assert first["n_records"] == 553
    assert first["tags"]["color_attr"] == 100 and first["tags"]["colors"] == 94
    assert (first["empty_lines"], first["duplicate_lines"]) == ([], [])
    assert (second["n_records"], second["n_duplicated_prompts"]) == (2212, 553)
    assert second["duplicate_policy"] == "kept" and second["empty_policy"] == "dropped"
    assert "553 records" in result.stdout


def test_cli_missing_file_exit_2(tmp_path):
    present = write(tmp_path, "ok.txt", 'a sign "OPEN"\n')
    missing = tmp_path / "train.txt"
    out = tmp_path / "m.json"
    files = [str(present), str(missing)]
    result = run_cli("manifest", "--task", "ocr", "--files", *files, "--out", str(out))
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "https://github.com/yifan123/flow_grpo/tree/main/dataset" in result.stderr
    assert not out.exists()


def test_cli_malformed_exit_1(tmp_path):
    path = write(tmp_path, "p.txt", 'ok "A"\nok "B"\nno target\n')
    out = tmp_path / "m.json"
    result = run_cli("manifest", "--task", "ocr", "--files", str(path), "--out", str(out))
    assert result.returncode == 1
    assert f"{path}:3:" in result.stderr


# ---------------------------------------------------------------------------- fetch CLI


def test_fetch_downloads_validates_and_names_the_source_on_failure(tmp_path):
    src = write(tmp_path, "src.txt", 'a sign that says "hello"\nposter with "grpo"\n')
    out = tmp_path / "datasets" / "ocr" / "train.txt"
    done = run_cli("fetch", "--task", "ocr", "--out", str(out), "--url", src.as_uri())
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == src.read_bytes() and f"{out}: 2 records" in done.stdout
    bad = write(tmp_path, "bad.txt", "a prompt without a quoted target\n")
    failed = run_cli("fetch", "--task", "ocr", "--out", str(tmp_path / "x" / "test.txt"), "--url", bad.as_uri())
    assert failed.returncode == 1 and "bad.txt" in failed.stderr and not (tmp_path / "x" / "test.txt").exists()
    missing = run_cli("fetch", "--task", "ocr", "--out", str(tmp_path / "y.txt"), "--url", (tmp_path / "nope").as_uri())
    assert missing.returncode == 2 and "flow_grpo" in missing.stderr and "by hand" in missing.stderr


def test_source_urls_point_at_the_public_repositories():
    from eval.prompts.manifest import source_url

    assert source_url("ocr", "train.txt").endswith("yifan123/flow_grpo/main/dataset/ocr/train.txt")
    assert source_url("geneval", "evaluation_metadata.jsonl").endswith("djghosh13/geneval/main/prompts/evaluation_metadata.jsonl")
