"""Atomic, self-checking checkpoints: weights and optimizer tensors in safetensors, the rest in JSON.

A checkpoint is a folder ``ckpt-<iteration>``, written under a temporary name and renamed when
complete; ``latest`` (replaced atomically) names the newest one, and the newest ``keep`` are kept.
Each holds ``checksums.json``, the SHA-256 of every file it wrote: a resume takes the newest
checkpoint whose files match (a damaged one is moved to ``ckpt-<iteration>.damaged``). A killed job
leaves at worst a ``.tmp`` folder, which is ignored and removed on the next save; a save that finds
too little free space stops with the path, the space free and the space needed, the previous
checkpoints intact. Tensors are saved from the CPU and loaded onto the device of the parameters they
restore (the optimizer state follows its parameters), so a checkpoint does not depend on the device
or on the number of training processes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file

CHECKSUMS = "checksums.json"
COMPLETE = re.compile(r"ckpt-\d{6}")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written (no space) or read (none intact); the message names the path and the remedy."""


def _flat_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors = {f"{idx}.{key}": value.cpu().contiguous() for idx, s in state["state"].items() for key, value in s.items()}
    return tensors, {"param_groups": state["param_groups"]}


def _nested_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    """The SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoints(root: Path) -> list[Path]:
    """The complete checkpoint folders under ``root``, newest (highest iteration) first."""
    found = [d for d in root.glob("ckpt-*") if d.is_dir() and COMPLETE.fullmatch(d.name)] if root.is_dir() else []
    return sorted(found, key=lambda d: d.name, reverse=True)


def space_error(root: Path, iteration: int, need: int) -> CheckpointError:
    """The one-line error of a save that does not fit on ``root``'s filesystem."""
    free = shutil.disk_usage(root).free
    kept = checkpoints(root)
    previous = f"the run resumes from {kept[0].name}, which is intact" if kept else "no earlier checkpoint exists"
    return CheckpointError(f"no space for the checkpoint of iteration {iteration}: {root} has {free / 2**20:.1f} MiB free, "
                           f"a checkpoint needs {need / 2**20:.1f} MiB; free space there (or move the run folder) and "
                           f"rerun: {previous}")


def save_checkpoint(root: Path, iteration: int, params: list[torch.nn.Parameter], shadow: list[torch.Tensor],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator, extra: dict[str, Any],
                    keep: int = 2) -> Path:
    """Save everything a resume needs, with the checksums of its files; keep the newest ``keep``; returns the folder."""
    root.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _flat_optimizer_state(optimizer)
    files = {"model.safetensors": {f"{i}": p.detach().cpu().contiguous() for i, p in enumerate(params)},
             "ema.safetensors": {f"{i}": s.cpu().contiguous() for i, s in enumerate(shadow)},
             "optimizer.safetensors": opt_tensors, "rng.safetensors": {"generator": generator.get_state()}}
    need = sum(t.numel() * t.element_size() for tensors in files.values() for t in tensors.values()) + 2**20
    if shutil.disk_usage(root).free < need:
        raise space_error(root, iteration, need)
    final = root / f"ckpt-{iteration:06d}"
    tmp = root / f"ckpt-{iteration:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, tensors in files.items():
            save_file(tensors, tmp / name)
        write_json_atomic(tmp / "state.json", {"iteration": iteration, "optimizer": opt_meta, **extra})
        write_json_atomic(tmp / CHECKSUMS, {f.name: file_sha256(f) for f in sorted(tmp.iterdir())})
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise space_error(root, iteration, need) from err
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json_atomic(root / "latest", {"checkpoint": final.name})
    for old in [*checkpoints(root)[keep:], *root.glob("ckpt-*.tmp")]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def damage(folder: Path) -> str | None:
    """Why ``folder`` cannot be resumed from (a missing file, a checksum that does not match), or None if intact.

    A checkpoint written before checksums were recorded is taken as it is (the load itself checks its format).
    """
    if not (folder / "state.json").is_file():
        return "incomplete (no state.json)"
    if not (folder / CHECKSUMS).is_file():
        return None
    try:
        expected = json.loads((folder / CHECKSUMS).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"{CHECKSUMS} is unreadable"
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


def resume_point(root: Path) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint under ``root`` (None when there is none at all) and what is wrong with each newer one.

    Raises CheckpointError when checkpoints exist but none is intact.
    """
    damaged = []
    for folder in checkpoints(root):
        why = damage(folder)
        if why is None:
            return folder, damaged
        damaged.append(f"{folder.name}: {why}")
    if damaged:
        raise CheckpointError(f"no intact checkpoint in {root} ({'; '.join(damaged)}): restore its files from a backup, "
                              f"or delete {root.parent} to start the run over")
    return None, []


def set_aside_damaged(root: Path, notes: list[str]) -> None:
    """Rename the checkpoints named in ``notes`` (from :func:`resume_point`) to ``<name>.damaged``, kept for inspection."""
    for note in notes:
        folder = root / note.split(":", 1)[0]
        aside = folder.with_name(folder.name + ".damaged")
        shutil.rmtree(aside, ignore_errors=True)
        folder.rename(aside)


def latest_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint, checked against its checksums (None when there is none).

    For reading a finished run's weights: a damaged one raises rather than fall back to an earlier
    iteration, so that no result silently comes from other weights.
    """
    found = checkpoints(root)
    if not found:
        return None
    why = damage(found[0])
    if why is not None:
        raise CheckpointError(f"{found[0]} is damaged ({why}); delete {root.parent / 'final.json'} and rerun the "
                              "training job: it resumes from the checkpoint before and rewrites this one")
    return found[0]


def load_checkpoint(folder: Path, params: list[torch.nn.Parameter], shadow: list[torch.Tensor],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator) -> dict[str, Any]:
    """Restore weights, EMA, optimizer and RNG in place; returns the JSON state."""
    state = json.loads((folder / "state.json").read_text())
    load_weights(folder, params)
    load_weights(folder, shadow, "ema.safetensors")
    optimizer.load_state_dict(_nested_optimizer_state(load_file(folder / "optimizer.safetensors"), state["optimizer"]))
    generator.set_state(load_file(folder / "rng.safetensors")["generator"])
    return state


def load_weights(folder: Path, params: Sequence[torch.Tensor], name: str = "model.safetensors") -> None:
    """Copy a checkpoint's trained weights (or, with ``name``, another tensor file of it) into ``params`` in place."""
    tensors = load_file(folder / name)
    if len(tensors) != len(params):
        raise ValueError(f"{folder / name} holds {len(tensors)} tensors, the model has {len(params)} trainable ones: "
                         "the checkpoint belongs to another backbone configuration")
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(tensors[f"{i}"])


def load_ema_weights(folder: Path, params: list[torch.nn.Parameter]) -> None:
    """Copy a checkpoint's EMA weights into the trainable parameters (for evaluation)."""
    load_weights(folder, params, "ema.safetensors")
