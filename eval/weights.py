"""``python -m eval.weights --config CONFIG``: which local weights an experiment needs, and which are missing.

Lists, for every setting of an experiment (or for one run config), the backbone folder and every
metric the task uses (the proxy reward and each gold metric) with the paths its ``metrics`` block
names; a missing one is printed with what it should be and how to get it. Exit status 1 when
anything is missing, so a cluster job can check before it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eval.metrics import METRICS, metric_module, missing_weights
from eval.tasks import task_metrics
from jobs.cli import job_parser
from jobs.config import ConfigError, grid_settings, load_config


def run_configs(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(label, resolved trainer keys) per setting of an experiment, or the one run config."""
    data = yaml.safe_load(path.read_text()) or {}
    if "grid" not in data:
        return [(str(path), load_config(path).to_dict())]
    settings = [f"{backbone}/{task}" for backbone, task in grid_settings(data)]
    return [(setting, load_config(path, setting=setting).to_dict()) for setting in settings]


def metric_names(config: dict[str, Any]) -> list[str]:
    """The real metrics a run uses: its proxy reward and its gold metrics (none for the nano task)."""
    return [n for n in task_metrics(config["task"]) if n in METRICS]


def check(config: dict[str, Any]) -> list[str]:
    """Lines describing what is present and what is missing for one run config."""
    lines = []
    backbone = config["backbone"]
    if "path" in backbone:
        ok = (Path(backbone["path"]) / "model_index.json").is_file()
        lines.append(f"{'ok     ' if ok else 'MISSING'} backbone {backbone['name']}: {backbone['path']}"
                     + ("" if ok else " (a diffusers folder with model_index.json; see README 'Weights')"))
    for name in metric_names(config):
        options = config["metrics"].get(name) or {}
        problems = missing_weights(name, options)
        if problems:
            lines += [f"MISSING {p}" for p in problems]
        else:
            paths = ", ".join(f"{s.key}={options[s.key]}" for s in metric_module(name).WEIGHTS if s.key in options)
            lines.append(f"ok      {name}: {paths or 'no local weights needed'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__, "experiment file (workflow/config/*.yaml) or one run's config")
    args = parser.parse_args(argv)
    try:
        configs = run_configs(Path(args.config))
    except (ConfigError, OSError, yaml.YAMLError) as err:
        parser.exit(2, f"error: {err}\n")
    needed_by: dict[str, list[str]] = {}  # each line once, with the settings that need it
    for label, config in configs:
        for line in check(config):
            needed_by.setdefault(line, []).append(label)
    for line, labels in sorted(needed_by.items(), key=lambda item: "MISSING" in item[0]):
        print(f"{line}\n      (needed by {', '.join(labels)})")
    missing = sum("MISSING" in line for line in needed_by)
    print(f"{missing} missing" if missing else "every weight is in place")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
