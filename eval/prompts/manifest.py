"""Manifests of prompt files (sha256, counts, line report) and downloads of the public files."""

from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

from eval.prompts.records import LOADERS, SOURCES, Loaded, PromptFileError, tag_histogram


def file_entry(task: str, path: Path, loaded: Loaded[Any]) -> dict[str, Any]:
    """Manifest entry of one loaded file: sha256, counts, empty/repeat report, GenEval tags."""
    entry = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **loaded.report.to_dict()}
    if task == "geneval":
        entry["tags"] = tag_histogram(loaded.records)
    return entry


def build_manifest(task: str, paths: Sequence[Path]) -> dict[str, Any]:
    """Load and validate every file, print its report line, and return the manifest."""
    entries = []
    for path in paths:
        loaded = LOADERS[task](path)
        print(loaded.report.summary())
        entries.append(file_entry(task, path, loaded))
    return {"task": task, "files": entries}


RAW_SOURCES = {
    "flow_grpo": "https://raw.githubusercontent.com/yifan123/flow_grpo/main/dataset",
    "geneval": "https://raw.githubusercontent.com/djghosh13/geneval/main/prompts",
}


def source_url(task: str, name: str) -> str:
    """Where a public prompt file lives: GenEval's evaluation metadata, else Flow-GRPO's dataset/<task>/<name>."""
    if name == "evaluation_metadata.jsonl":
        return f"{RAW_SOURCES['geneval']}/{name}"
    return f"{RAW_SOURCES['flow_grpo']}/{task}/{name}"


def fetch(task: str, url: str, out: Path) -> Loaded[Any]:
    """Download ``url`` to ``out`` (via a temporary file), validate it with the task's loader, and keep it."""
    tmp = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response:
        tmp.write_bytes(response.read())
    LOADERS[task](tmp)  # a malformed download stays a .part file and never reaches ``out``
    tmp.replace(out)
    return LOADERS[task](out)


def fetch_command(task: str, out: Path, url: str) -> int:
    """``fetch``: exit 0 with the file in place, 1 when it is malformed, 2 when it cannot be downloaded."""
    try:
        print(fetch(task, url, out).report.summary())
    except (urllib.error.URLError, OSError) as err:
        print(f"error: cannot download {url} to {out}: {err}; copy the file there by hand "
              f"(from {SOURCES[task]})", file=sys.stderr)
        return 2
    except PromptFileError as err:
        print(f"error: {url} downloaded but malformed: {err}", file=sys.stderr)
        return 1
    return 0
