"""The GenEval metric: detector service + GenEval's rules + CLIP colours -> one score per image.

``mode="accuracy"``: GenEval's strict verdict as 1.0 / 0.0 (evaluation; average per tag with
:func:`accuracy_table`). ``mode="partial"``: Flow-GRPO's partial-credit training reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from eval.geneval.client import DetectorClient
from eval.metrics import to_pil
from eval.geneval.colors import ColorClassifier
from eval.geneval.rules import (COUNTING_THRESHOLD, THRESHOLD, PartialVerdict, Verdict, accuracy_by_tag,
                                evaluate, evaluate_partial, keep_objects)

MODES = ("accuracy", "partial")


def load_records(paths: str | Path | Sequence[str | Path]) -> dict[str, dict[str, Any]]:
    """Prompt -> GenEval metadata, from one or more metadata JSONL files (a prompt must mean one record)."""
    from eval.prompts.records import load_geneval

    records: dict[str, dict[str, Any]] = {}
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        for record in load_geneval(path).records:
            meta = record.to_metadata()
            if records.setdefault(record.prompt, meta) != meta:
                raise ValueError(f"{path}:{record.line}: prompt {record.prompt!r} already has different "
                                 "metadata in an earlier line or file; a prompt must map to one record")
    return records


@dataclass
class GenEvalMetric:
    """``metric(images, prompts) -> (B,)`` scores; each prompt must be in ``records``."""

    client: DetectorClient
    colors: ColorClassifier
    records: Mapping[str, Mapping[str, Any]]
    mode: str = "accuracy"

    def __post_init__(self) -> None:
        """Check the mode."""
        if self.mode not in MODES:
            raise ValueError(f"metrics.geneval.mode must be one of {MODES}, got {self.mode!r}")

    def metadata(self, prompt: str) -> Mapping[str, Any]:
        """The record of ``prompt``; an unknown prompt names the option to fix."""
        if prompt not in self.records:
            raise KeyError(f"prompt {prompt!r} is in none of the metadata files (metrics.geneval.metadata); "
                           "pass the GenEval JSONL that holds it")
        return self.records[prompt]

    def verdicts(self, images: torch.Tensor, prompts: Sequence[str]) -> list[Verdict | PartialVerdict]:
        """Per image, GenEval's verdict (accuracy mode) or Flow-GRPO's partial verdict."""
        metas = [self.metadata(p) for p in prompts]
        pils = to_pil(images)
        found = self.client.detect(pils, min_score=min(THRESHOLD, COUNTING_THRESHOLD))
        rule = evaluate if self.mode == "accuracy" else evaluate_partial
        out = []
        for image, detections, meta in zip(pils, found, metas):
            colors = lambda objects, name, image=image: self.colors(image, objects, name)  # noqa: E731
            out.append(rule(keep_objects(detections, meta["tag"]), meta, colors))
        return out

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        """1.0 / 0.0 per image (accuracy) or the partial-credit score (partial), fp32."""
        verdicts = self.verdicts(images, prompts)
        values = [float(v.correct) if isinstance(v, Verdict) else v.score for v in verdicts]
        return torch.tensor(values, dtype=torch.float32)


def accuracy_table(prompts: Sequence[str], correct: Sequence[float | bool],
                   metadata: str | Path | Sequence[str | Path]) -> dict[str, float]:
    """GenEval accuracy of a scored set: per tag, and ``overall`` = the mean over tags.

    ``correct`` are accuracy-mode scores (1.0 / 0.0) of the images of ``prompts``; tags come from
    the metadata files.
    """
    records = load_records(metadata)
    missing = sorted({p for p in prompts if p not in records})
    if missing:
        raise KeyError(f"{len(missing)} prompts are in none of the metadata files {metadata}, e.g. {missing[0]!r}")
    if any(float(c) not in (0.0, 1.0) for c in correct):
        raise ValueError("accuracy needs 0/1 scores: score the set with metrics.geneval.mode: accuracy")
    return accuracy_by_tag([records[p]["tag"] for p in prompts], [bool(c) for c in correct])
