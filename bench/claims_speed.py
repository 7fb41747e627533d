"""Time of the claims table (with its resampled intervals) on the nano default and on a synthetic setting the
size of one paper.yaml setting.

Run: ``python -m bench.claims_speed [--nano results/nano/nano/composition] [--out bench/results/claims_speed.json]``.
The synthetic setting: 5 variants (FlowGRPO sampler, SD3.5-M / GenEval configs), 1 seed, 20 evaluations of
553 prompts x 4 images with three gold metrics and GenEval's tags, 1,860 iterations x 9 steps x 2 off-policy
minibatches, final scores of the same set; values are random (the timing does not depend on them). Targets
(issue 25): nano at most 20 s, paper-size at most 60 s on 2 cores. Prints and writes seconds per setting.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.claims import claims_table

VARIANTS = ["flowgrpo", "temp_reweight", "mean_revised", "rationorm", "grpo_guard"]
GOLD = ["hpsv2", "imagereward", "unifiedreward"]
TAGS = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]


def write_jsonl(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_json(path, orient="records", lines=True)


def units(rng: np.random.Generator, prompts: int, per_prompt: int, shift: float) -> pd.DataFrame:
    """One evaluation's per-image rows: GenEval 0/1 proxy with tags, three gold scores."""
    n = prompts * per_prompt
    frame = pd.DataFrame({"image": np.arange(n), "prompt": np.repeat([f"p{i}" for i in range(prompts)], per_prompt),
                          "tag": np.repeat([TAGS[i % len(TAGS)] for i in range(prompts)], per_prompt),
                          "proxy": (rng.random(n) < 0.6 + shift).astype(float)})
    for g in GOLD:
        frame[g] = 1.0 + rng.normal(0, 0.1, n) - shift
    return frame


def synthetic_setting(root: Path, iterations: int = 1860, evaluations: int = 20, prompts: int = 553,
                      per_prompt: int = 4, steps: int = 9, seed: int = 0) -> dict:
    """Write run folders of one paper-size setting under ``root``; return its analysis settings."""
    rng = np.random.default_rng(seed)
    write_jsonl(root / "base" / "scores" / "units.jsonl", units(rng, prompts, per_prompt, 0.0))
    base = units(rng, prompts, per_prompt, 0.0)
    write_jsonl(root / "base" / "scores" / "summary.jsonl", pd.DataFrame([{"proxy": base.proxy.mean(),
                                                                           **base[GOLD].mean().to_dict()}]))
    its = np.linspace(0, iterations, evaluations).astype(int)
    for variant in VARIANTS:
        run = root / variant / f"seed{seed}"
        config = {"variant": variant, "sampler": "flowgrpo", "num_steps": 10, "shift": 3.0, "noise_level": 0.7,
                  "backbone": {"name": "sd35"}, "task": {"reward": "geneval"}, "seed": seed}
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        (run / "final.json").write_text("{}")
        grid = pd.MultiIndex.from_product([range(iterations), [1, 2], range(steps)], names=["iteration", "update", "step"])
        rows = grid.to_frame(index=False)
        k = len(rows)
        rows = rows.assign(n=8, log_ratio_mean=rng.normal(-1e-3, 1e-3, k), log_ratio_std=rng.uniform(0.01, 0.02, k),
                           bias_mean=rng.uniform(5e-4, 1.5e-3, k), norm_log_ratio_mean=rng.normal(0, 1e-3, k),
                           norm_log_ratio_std=rng.uniform(0.01, 0.02, k), clip_pos_upper=rng.uniform(0, 0.1, k),
                           clip_neg_lower=rng.uniform(0.1, 0.3, k),
                           step_grad_norm=np.where(rows.iteration % 4 == 0, rng.uniform(0.1, 2.0, k), np.nan))
        write_jsonl(run / "steps.jsonl", rows)
        evals = [units(rng, prompts, per_prompt, 0.3 * i / evaluations).assign(iteration=it) for i, it in enumerate(its)]
        write_jsonl(run / "eval_units.jsonl", pd.concat(evals))
        write_jsonl(run / "eval.jsonl", pd.DataFrame([{"iteration": e.iteration.iloc[0], "proxy": e.proxy.mean(),
                                                      **e[GOLD].mean().to_dict()} for e in evals]))
        final = evals[-1].drop(columns="iteration")
        write_jsonl(run / "scores" / "units.jsonl", final)
        write_jsonl(run / "scores" / "summary.jsonl", pd.DataFrame([{"proxy": final.proxy.mean(),
                                                                     **final[GOLD].mean().to_dict()}]))
    return {"variants": VARIANTS, "gold": GOLD, "baseline": "flowgrpo", "normalised": "rationorm",
            "comparisons": {"ablation": VARIANTS}}


def timed(root: Path, settings: dict) -> tuple[float, pd.DataFrame]:
    start = time.perf_counter()
    table = claims_table(root, settings)
    return time.perf_counter() - start, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nano", type=Path, default=Path("results/nano/nano/composition"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/claims_speed.json"))
    args = parser.parse_args(argv)
    result = {}
    if (args.nano / "analysis.yaml").is_file():
        seconds, table = timed(args.nano, yaml.safe_load((args.nano / "analysis.yaml").read_text()))
        result["nano"] = {"seconds": round(seconds, 2), "rows": len(table), "target_s": 20}
    with tempfile.TemporaryDirectory() as tmp:
        settings = synthetic_setting(Path(tmp))
        seconds, table = timed(Path(tmp), settings)
        result["paper_size"] = {"seconds": round(seconds, 2), "rows": len(table), "target_s": 60,
                                "not_tested": int((table.verdict == "not tested").sum())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
