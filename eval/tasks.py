"""A task = the prompts to train on, the proxy reward that is optimised, and the gold metrics.

Two kinds: the nano task (its own renders, proxy and gold density) and the paper's tasks for real
backbones (``geneval``, ``ocr``, ``pickscore``), whose prompts come from a prompts folder in
Flow-GRPO's ``dataset/`` layout and whose metrics are ``eval.metrics`` scorers built from the
config's ``metrics`` section (one block of local weight paths and options per metric).

Evaluation sets of a real task (``task:`` options):
- training-time evaluation: the folder's test file (Flow-GRPO's GenEval test metadata, the OCR
  and PickScore test lists), or a fixed-seed subset of ``eval_subset`` prompts (``subset_seed``);
- final tables: ``final_prompts`` (GenEval's 553 evaluation prompts) x ``final_per_prompt`` images
  (4: the benchmark's protocol), or the test file where no final set is named; ``final_subset``
  takes a fixed-seed subset of it for cheaper runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

Reward = Callable[[torch.Tensor, Sequence[str]], torch.Tensor]
Gold = Callable[[torch.Tensor, Sequence[str]], dict[str, float]]
Extras = Callable[[torch.Tensor | None, Sequence[str]], dict[str, list[Any]]]


@dataclass
class Task:
    """Prompts, the proxy reward (images in [0, 1], prompts) -> (B,), and gold metrics by name."""

    prompts: list[str]
    """Training prompts (the per-epoch draw samples these)."""
    reward: Reward
    """The proxy reward training optimises."""
    gold_metrics: dict[str, Reward]
    """Per-image gold metrics by name."""
    gold_set: Gold | None = None
    """Set-level gold from the images (the nano density); None: the mean of each per-image metric."""
    eval_prompts: list[str] | None = None
    """Prompts of the training-time evaluation (default: the training prompts)."""
    final_prompts: list[str] | None = None
    """Prompts of the final evaluation set (default: the training-time evaluation prompts)."""
    final_per_prompt: int | None = None
    """Images per final prompt (default: the config's eval_per_prompt)."""
    proxy: Reward | None = None
    """The proxy as evaluated (GenEval: strict accuracy; default: the training reward)."""
    eval_gold: tuple[str, ...] | None = None
    """Gold metrics computed in the training-time evaluation (default: all)."""
    proxy_summary: Callable[[Sequence[str], Sequence[float]], dict[str, float]] | None = None
    """Set-level proxy from per-image proxy scores (GenEval: per-tag accuracy, then the mean over tags)."""
    unit_extras: Extras | None = None
    """Per-image values a set-level metric needs beyond the scores (nano diversity: the distances to the images of
    the same prompt; GenEval: each prompt's tag), so analysis can recompute it on a resample of the images."""
    extras_need_images: bool = False
    """Whether ``unit_extras`` reads the images (else the prompts alone)."""

    def evaluation_prompts(self) -> list[str]:
        return self.eval_prompts if self.eval_prompts is not None else self.prompts

    def final_set(self) -> list[str]:
        return self.final_prompts if self.final_prompts is not None else self.evaluation_prompts()

    def proxy_metric(self) -> Reward:
        return self.proxy if self.proxy is not None else self.reward

    def summarise_proxy(self, prompts: Sequence[str], scores: torch.Tensor) -> dict[str, float]:
        """``proxy`` of a scored set (the mean of the scored images, unless the task defines its own
        summary) and any breakdown."""
        if self.proxy_summary is not None:
            return self.proxy_summary(prompts, scores.tolist())
        return {"proxy": float(scores.nanmean() if scores.isnan().any() else scores.mean())}

    def per_image_metrics(self) -> dict[str, Reward]:
        """Everything scored per image: ``proxy`` and each gold metric."""
        return {"proxy": self.proxy_metric(), **self.gold_metrics}

    def gold(self, images: torch.Tensor, prompts: Sequence[str], names: Sequence[str] | None = None) -> dict[str, float]:
        """Set-level gold metrics of an image set (NaN scores, e.g. an unparsable judge answer, are left out)."""
        if self.gold_set is not None:
            return self.gold_set(images, prompts)
        chosen = self.gold_metrics if names is None else {n: self.gold_metrics[n] for n in names}
        return {name: float(torch.nanmean(metric(images, prompts).double())) for name, metric in chosen.items()}

    def evaluation(self, images: torch.Tensor, prompts: Sequence[str],
                   names: Sequence[str] | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
        """The set's proxy and gold (as ``summarise_proxy`` and ``gold``) and its evaluation units: one row per image
        (index, prompt, proxy, each per-image gold metric, ``unit_extras``), each metric computed once."""
        chosen = list(self.gold_metrics) if names is None else list(names)
        scores = {"proxy": self.proxy_metric()(images, prompts),
                  **{n: self.gold_metrics[n](images, prompts) for n in chosen}}
        row = self.summarise_proxy(prompts, scores["proxy"])
        if self.gold_set is not None:
            row.update(self.gold_set(images, prompts))
        else:
            row.update({n: float(torch.nanmean(scores[n].double())) for n in chosen})
        return row, self.units(prompts, scores, images)

    def units(self, prompts: Sequence[str], scores: dict[str, torch.Tensor],
              images: torch.Tensor | None = None) -> list[dict[str, Any]]:
        """One row per image: its index in the set, prompt, per-image ``scores`` and ``unit_extras``."""
        extras = self.unit_extras(images, prompts) if self.unit_extras is not None else {}
        values = {k: torch.as_tensor(v).double().tolist() for k, v in scores.items()}
        return [{"image": i, "prompt": p, **{k: v[i] for k, v in values.items()}, **{k: v[i] for k, v in extras.items()}}
                for i, p in enumerate(prompts)]


# --------------------------------------------------------------------------------------- nano


@cache
def _nano_gold(options: tuple[tuple[str, Any], ...]) -> Any:
    """The nano gold density, fitted once (about 2 s) and cached at ``cache`` when the options name one."""
    from eval.nano import NanoGold

    options = dict(options)
    cache_path = options.pop("cache", None)
    return NanoGold.load_or_fit(cache_path, **options) if cache_path else NanoGold.fit(**options)


def nano_gold_metrics(gold: Any) -> dict[str, Reward]:
    """The nano gold density's per-image metrics ("loglik", "correct") as separate scorers."""
    return {name: (lambda images, prompts, name=name: gold.per_image(images, prompts)[name]) for name in ("loglik", "correct")}


def build_nano_task(options: dict[str, Any], metrics: dict[str, Any] | None = None) -> Task:
    """The nano task: colour x shape prompts, a nano proxy reward, gold from a density of real renders."""
    from eval.nano import PROXIES
    from eval.nano_world import prompts

    name = options["reward"]
    if name not in PROXIES:
        raise ValueError(f"unknown nano reward {name!r}; choose one of {sorted(PROXIES)}")
    gold = _LazyNanoGold(tuple(sorted(options.get("gold", {}).items())))
    return Task(prompts(), PROXIES[name], nano_gold_metrics(gold), gold.score, unit_extras=nano_pair_distances,
                extras_need_images=True)


def nano_pair_distances(images: torch.Tensor | None, prompts: Sequence[str]) -> dict[str, list[Any]]:
    """Per image, ``pair_distances``: its L2 distance / sqrt(D) to each image of its prompt, in set order
    (itself included, 0), from which the nano diversity of any resample of the images follows."""
    from eval.nano_world import prompt_ids

    flat = images.flatten(1).double()
    ids = prompt_ids(prompts)
    distances = [[] for _ in prompts]
    for p in ids.unique():
        members = torch.nonzero(ids == p).flatten()
        block = torch.cdist(flat[members], flat[members], compute_mode="donot_use_mm_for_euclid_dist")
        block = (block / flat.shape[1] ** 0.5).tolist()
        for row, i in zip(block, members.tolist()):
            distances[i] = row
    return {"pair_distances": distances}


@dataclass(frozen=True)
class _LazyNanoGold:
    """Fits (or loads) the nano gold density on first use only."""

    key: tuple[tuple[str, Any], ...]

    def per_image(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        return _nano_gold(self.key).per_image(images, prompts)

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, float]:
        return _nano_gold(self.key).score(images, prompts)


# ------------------------------------------------------------------------------ real tasks


def fixed_subset(items: list[str], size: int | None, seed: int) -> list[str]:
    """``size`` items drawn once with a seeded generator, in file order (all items when size is None)."""
    if size is None or size >= len(items):
        return items
    chosen = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:size]
    return [items[i] for i in sorted(chosen.tolist())]


@dataclass
class LazyMetric:
    """A metric built from its local weights on the first call and kept for every later batch."""

    name: str
    options: dict[str, Any]
    built: Any = field(default=None, init=False, repr=False)

    def __call__(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
        if self.built is None:
            from eval.metrics import build_metric

            self.built = build_metric(self.name, self.options)
        return self.built(images, prompts).float().cpu()


def metric_options(name: str, metrics: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A metric's block of the config's ``metrics`` section, plus task-specific options."""
    return {**(metrics.get(name) or {}), **extra}


def build_real_task(options: dict[str, Any], metrics: dict[str, Any] | None = None) -> Task:
    """A paper task (``reward``: geneval, ocr or pickscore) from its prompts folder and the metrics' weights."""
    from eval.prompts.records import load_task_file, task_files

    metrics = metrics or {}
    reward = options["reward"]
    train_file, test_file = task_files(reward, options["prompts"])
    train = load_task_file(reward, train_file)
    test = load_task_file(reward, test_file)
    final_file = options.get("final_prompts")
    final = load_task_file(reward, Path(final_file)) if final_file else test
    seed = int(options.get("subset_seed", 0))
    extra_train: dict[str, Any] = {}
    extra_eval: dict[str, Any] = {}
    summary = None
    if reward == "geneval":  # the scorer looks each prompt up in the metadata that holds it
        extra_train = {"metadata": [str(train_file)], "mode": "partial"}
        extra_eval = {"metadata": [str(test_file)] + ([str(final_file)] if final_file else []), "mode": "accuracy"}
        summary = partial(geneval_summary, extra_eval["metadata"])
    gold_names = list(options.get("gold", []))
    return Task(
        prompts=train,
        reward=LazyMetric(reward, metric_options(reward, metrics, **extra_train)),
        gold_metrics={g: LazyMetric(g, metric_options(g, metrics)) for g in gold_names},
        eval_prompts=fixed_subset(test, options.get("eval_subset"), seed),
        final_prompts=fixed_subset(final, options.get("final_subset"), seed),
        final_per_prompt=options.get("final_per_prompt"),
        proxy=LazyMetric(reward, metric_options(reward, metrics, **extra_eval)) if extra_eval else None,
        eval_gold=tuple(options.get("eval_gold", gold_names)),
        proxy_summary=summary,
        unit_extras=partial(geneval_tags, extra_eval["metadata"]) if reward == "geneval" else None,
    )


def geneval_tags(metadata: list[str], images: torch.Tensor | None, prompts: Sequence[str]) -> dict[str, list[Any]]:
    """Per image, its prompt's GenEval ``tag`` (the proxy is the mean over tags of the per-tag accuracy)."""
    from eval.geneval.metric import load_records

    records = load_records(metadata)
    return {"tag": [records[p]["tag"] for p in prompts]}


def geneval_summary(metadata: list[str], prompts: Sequence[str], correct: Sequence[float]) -> dict[str, float]:
    """GenEval's score of a set: ``proxy`` = the mean over tags of the per-tag accuracy, and each tag's accuracy."""
    from eval.geneval.metric import accuracy_table

    table = accuracy_table(prompts, correct, metadata)
    return {"proxy": table.pop("overall"), **{f"geneval_{tag}": value for tag, value in table.items()}}


def task_metrics(options: dict[str, Any], training: bool = False) -> list[str]:
    """The metrics a task uses: its proxy reward and its gold metrics (in training: ``eval_gold``).

    The nano task's ``gold`` holds options of its own density, not metric names: it names none.
    """
    gold = options.get("gold", [])
    gold = list(options.get("eval_gold", gold)) if training else gold
    return [options["reward"], *(gold if isinstance(gold, list) else [])]


TASKS: dict[str, Callable[[dict[str, Any], dict[str, Any] | None], Task]] = {
    "nano": build_nano_task,
    "sd35": build_real_task,
    "flux": build_real_task,
}
"""Backbone name -> the builder of its tasks (the nano backbone has its own task)."""


def build_task(backbone_name: str, options: dict[str, Any], metrics: dict[str, Any] | None = None) -> Task:
    """The task of a backbone's domain, its metrics built from ``metrics`` (the config section)."""
    if backbone_name not in TASKS:
        raise ValueError(f"no task defined for backbone {backbone_name!r}; known: {sorted(TASKS)}")
    return TASKS[backbone_name](options, metrics)
