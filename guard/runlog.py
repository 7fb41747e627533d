"""The run folder: its JSON-lines logs (appended per iteration, cut back to a checkpoint on resume) and its config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from jobs.config import OPERATIONAL_KEYS, ConfigError

LOG_FILES = ("train.jsonl", "steps.jsonl", "eval.jsonl", "eval_units.jsonl", "logratios.jsonl")


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append rows to a JSON-lines file."""
    with path.open("a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def truncate_jsonl(path: Path, before_iteration: int) -> None:
    """Keep only rows logged before ``before_iteration`` (work a resumed run will redo is removed)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines() if json.loads(line)["iteration"] < before_iteration]
        path.write_text("".join(row + "\n" for row in rows))


def host_floats(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their tensor values as floats, copied from the device at once (one host sync)."""
    keys = [(i, key) for i, row in enumerate(rows) for key, v in row.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([rows[i][key].float() for i, key in keys]).tolist() if keys else []
    out = [dict(row) for row in rows]
    for (i, key), v in zip(keys, values):
        out[i][key] = v
    return out


def config_changes(out: Path, config: dict[str, Any], restart: bool) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs from the run folder's saved config (key: (saved, new)); raises unless ``restart``."""
    saved = out / "config.yaml"
    if not saved.is_file():
        return {}
    previous = yaml.safe_load(saved.read_text())
    same = {"iterations", *OPERATIONAL_KEYS}  # a run may be extended, and these do not change its results
    changed = {k: (previous.get(k), v) for k, v in config.items() if k not in same and previous.get(k) != v}
    if changed and not restart:
        raise ConfigError(f"{out} holds a run with another config (key: (saved, new)) {changed}; "
                          "use a new output folder, delete this one, or pass --on-config-change restart")
    return changed


def set_aside(out: Path) -> None:
    """Move a run made with another config to ``<out>.replaced-<n>`` (kept, not deleted) and start afresh."""
    n = 1
    while out.with_name(f"{out.name}.replaced-{n}").exists():
        n += 1
    out.rename(out.with_name(f"{out.name}.replaced-{n}"))
    (out / "samples").mkdir(parents=True)
