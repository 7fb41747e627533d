"""Atomic checkpoints: weights and optimizer tensors in safetensors, the rest in JSON.

A checkpoint is a folder ``ckpt-<iteration>``, written under a temporary name and renamed when
complete; ``latest`` (replaced atomically) names the newest one. A killed job leaves at worst a
``.tmp`` folder, which is ignored and removed on the next save. Tensors are saved from the CPU and
loaded onto the device of the parameters they restore (the optimizer state follows its parameters),
so a checkpoint does not depend on the device or on the number of training processes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file


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


def save_checkpoint(root: Path, iteration: int, params: list[torch.nn.Parameter], shadow: list[torch.Tensor],
                    optimizer: torch.optim.Optimizer, generator: torch.Generator, extra: dict[str, Any]) -> Path:
    """Save everything a resume needs; returns the checkpoint folder."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{iteration:06d}"
    tmp = root / f"ckpt-{iteration:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({f"{i}": p.detach().cpu().contiguous() for i, p in enumerate(params)}, tmp / "model.safetensors")
    save_file({f"{i}": s.cpu().contiguous() for i, s in enumerate(shadow)}, tmp / "ema.safetensors")
    opt_tensors, opt_meta = _flat_optimizer_state(optimizer)
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    save_file({"generator": generator.get_state()}, tmp / "rng.safetensors")
    write_json_atomic(tmp / "state.json", {"iteration": iteration, "optimizer": opt_meta, **extra})
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_json_atomic(root / "latest", {"checkpoint": final.name})
    for old in root.glob("ckpt-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(root: Path) -> Path | None:
    """The folder ``latest`` points at, or None when there is no complete checkpoint."""
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    folder = root / json.loads(pointer.read_text())["checkpoint"]
    if not (folder / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {folder}, which is incomplete; delete {root} to start over")
    return folder


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
