"""Read what the trainer writes: ``<root>/<variant>/seed<n>/<file>.jsonl`` -> one DataFrame per file."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

RUN_DIR = re.compile(r"seed(\d+)$")


def run_folders(root: Path) -> list[tuple[str, int, Path]]:
    """(variant, seed, folder) of every finished run under ``root`` (one with final.json)."""
    found = []
    for final in sorted(Path(root).glob("*/seed*/final.json")):
        match = RUN_DIR.search(final.parent.name)
        if match:
            found.append((final.parent.parent.name, int(match.group(1)), final.parent))
    return found


def read_runs(root: Path, name: str, variants: list[str] | None = None) -> pd.DataFrame:
    """Concatenate ``name`` (e.g. eval.jsonl) of every finished run, with variant and seed columns."""
    frames = []
    for variant, seed, folder in run_folders(root):
        if (variants is None or variant in variants) and (folder / name).is_file() and (folder / name).stat().st_size:
            frame = pd.read_json(folder / name, lines=True)
            frames.append(frame.assign(variant=variant, seed=seed))
    if not frames:
        raise FileNotFoundError(f"no finished run under {root} has {name}; run the training rules first")
    return pd.concat(frames, ignore_index=True)
