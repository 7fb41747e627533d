"""The trainer's configuration: a typed dataclass with a help string per field and cross-field checks.

A method variant is the name ``variant`` (one of METHODS, each a ``guard.ratio.VARIANTS`` entry), never a
code fork. The workflow's YAML holds the same keys; ``load_config`` fills defaults and names any unknown or
bad key. Shared by the trainer (``guard``) and the scoring jobs (``eval``); it imports neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

METHODS = ("flowgrpo", "dancegrpo", "temp_reweight", "mean_revised", "rationorm", "grpo_guard")
"""The method names ``variant`` may take; the trainer implements each in ``guard.ratio.VARIANTS``."""
SAMPLERS = ("flowgrpo", "dancegrpo")
"""The SDE samplers ``sampler`` may name; the trainer builds each with ``guard.schedule.SCHEDULES``."""


OPERATIONAL_KEYS = frozenset({"keep_checkpoints", "collective_timeout"})
"""TrainConfig keys that change how a run survives faults, not its results (a resume may change them)."""


class ConfigError(ValueError):
    """A configuration value that cannot run; the message names the key and what to fix."""


def _help(text: str, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass
class TrainConfig:
    """GRPO training of one variant on one backbone and task; effective batch = prompts x group size."""

    variant: str = _help("method: flowgrpo, dancegrpo, temp_reweight, mean_revised, rationorm, grpo_guard", "grpo_guard")
    seed: int = _help("seed of the prompt draw, rollout noise and minibatch order", 0)
    iterations: int = _help("RL iterations (one rollout each)", 120)
    # sampler
    sampler: str = _help("SDE sampler: flowgrpo (a sqrt(t/(1-t))) or dancegrpo (constant eta)", "flowgrpo")
    num_steps: int = _help("denoising steps T of a training rollout", 10)
    shift: float = _help("flow time shift of the grid", 3.0)
    noise_level: float = _help("a of Flow-GRPO or eta of DanceGRPO", 0.7)
    trained_steps: int = _help("how many steps of a rollout are trained (Flow-GRPO: first 9 of 10)", 9)
    trainable_steps: int = _help("steps eligible for training; trained_steps of them drawn per sample if < this", 9)
    shared_group_noise: bool = _help("group members share the initial noise (DanceGRPO)", False)
    decode_x0_hat: bool = _help("decode x0_hat = x - t v at the last step instead of the final latent (DanceGRPO)", False)
    # batch
    prompts_per_iteration: int = _help("distinct prompts drawn per rollout", 2)
    group_size: int = _help("images per prompt (one group)", 8)
    minibatches: int = _help("minibatches (= optimizer steps) per pass over a rollout", 2)
    inner_epochs: int = _help("passes over each rollout; optimizer steps per rollout = minibatches x inner_epochs", 1)
    micro_batch: int = _help("samples per forward/backward within a minibatch, per process (gradient accumulation; "
                             "0 = the whole minibatch at once)", 0)
    steps_per_backward: int = _help("trained denoising steps of a micro-batch in one forward/backward (0 = all at once: the "
                                    "fastest; 1 = one step per backward as the reference code: the least activation "
                                    "memory); the loss is the same. Iterations that log step_grad_norm take it from "
                                    "that backward (one process, no micro-batches), else use 1", 0)
    # objective
    clip_eps: float = _help("symmetric PPO clip range of the ratio", 1e-4)
    kl_beta: float = _help("weight of the KL to the reference policy (0 = no KL)", 0.0)
    kl_denominator: str = _help("KL = mean |mu - mu_ref|^2 / (2 d^2) with d = sigma_k (Flow-GRPO and the public "
                                "script) or transition_std s_k (the exact per-dim Gaussian KL)", "sigma")
    bias_reduction: str = _help("b per sample (paper) or one scalar per step (batch, as the public script)", "sample")
    adv_std: str = _help("advantage denominator: group std or global (all rewards of the rollout)", "group")
    adv_std_eps: float = _help("added to the std of the advantage denominator", 1e-4)
    adv_std_unbiased: bool = _help("unbiased (n - 1) std in the advantage denominator (DanceGRPO) instead of population", False)
    adv_clip: float = _help("advantages are clipped to +-adv_clip", 5.0)
    drop_zero_advantage: bool = _help("drop samples whose advantage is exactly 0 before training", True)
    # optimiser
    lr: float = _help("AdamW learning rate", 1e-4)
    weight_decay: float = _help("AdamW weight decay", 1e-4)
    adam_betas: tuple[float, float] = _help("AdamW betas", (0.9, 0.999))
    grad_clip: float = _help("max global grad norm per optimizer step", 1.0)
    ema_decay: float = _help("EMA decay cap; decay = min((1 + n) / (10 + n), cap)", 0.9)
    ema_every: int = _help("optimizer steps between EMA updates", 8)
    # evaluation and logging
    eval_every: int = _help("iterations between evaluations (and at start and end)", 20)
    eval_per_prompt: int = _help("images per evaluation prompt (fixed seeds)", 16)
    eval_steps: int = _help("deterministic (ODE) steps in evaluation", 10)
    eval_seed: int = _help("seed of the evaluation noise (same for every run)", 1234)
    eval_batch: int = _help("images sampled and decoded at a time in evaluation and sampling (0 = all at once)", 0)
    checkpoint_every: int = _help("iterations between checkpoints", 20)
    keep_checkpoints: int = _help("checkpoints kept (newest first); a resume whose newest one fails its checksums falls "
                                  "back to the one before", 2)
    collective_timeout: int = _help("seconds a process waits in a collective (for the others, or for the main process's "
                                    "evaluation and checkpoint) before it exits with an error: the survivors of a lost "
                                    "node exit within it", 7200)
    histogram_iterations: list[int] = _help("iterations whose raw per-sample log-ratios are saved", factory=list)
    step_grad_norm_every: int = _help("iterations between logs of each step's gradient norm (0 = never; a backward and a grad "
                                       "copy per step where steps_per_backward cannot give it, see there)", 1)
    # domain
    backbone: dict[str, Any] = _help("backbone name and its options", factory=lambda: {"name": "nano"})
    task: dict[str, Any] = _help("proxy reward name, gold metrics, prompts folder and evaluation sets (eval/tasks.py)",
                                 factory=lambda: {"reward": "composition"})
    metrics: dict[str, Any] = _help("metric name -> its local weight paths and options (eval/metrics.py; "
                                    "python -m eval.weights --config lists what is missing)", factory=dict)

    def __post_init__(self) -> None:
        self.adam_betas = tuple(self.adam_betas)
        checks = [
            (self.variant in METHODS, "variant", f"one of {sorted(METHODS)}"),
            (self.sampler in SAMPLERS, "sampler", f"one of {sorted(SAMPLERS)}"),
            (self.bias_reduction in ("sample", "batch"), "bias_reduction", "'sample' or 'batch'"),
            (self.adv_std in ("group", "global"), "adv_std", "'group' or 'global'"),
            (self.kl_denominator in ("sigma", "transition_std"), "kl_denominator", "'sigma' or 'transition_std'"),
            (0 < self.trained_steps <= self.trainable_steps <= self.num_steps, "trained_steps",
             "0 < trained_steps <= trainable_steps <= num_steps"),
            (self.group_size >= 2, "group_size", ">= 2 (advantages are relative within a group)"),
            (self.prompts_per_iteration >= 1 and self.iterations >= 1, "prompts_per_iteration", ">= 1"),
            (1 <= self.minibatches <= self.prompts_per_iteration * self.group_size, "minibatches",
             "between 1 and prompts_per_iteration x group_size"),
            (self.inner_epochs >= 1, "inner_epochs", ">= 1"),
            (self.eval_batch >= 0, "eval_batch", ">= 0"),
            (self.micro_batch >= 0, "micro_batch", ">= 0"),
            (self.steps_per_backward >= 0, "steps_per_backward", ">= 0"),
            (self.clip_eps > 0 and self.lr > 0, "clip_eps", "> 0 (and lr > 0)"),
            (self.kl_beta >= 0, "kl_beta", ">= 0"),
            (self.eval_every >= 1 and self.checkpoint_every >= 1 and self.ema_every >= 1, "eval_every", ">= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1"),
            (self.collective_timeout >= 1, "collective_timeout", ">= 1 (seconds)"),
            ("name" in self.backbone, "backbone", "a mapping with a 'name'"),
            ("reward" in self.task, "task", "a mapping with a 'reward'"),
        ]
        for ok, key, need in checks:
            if not ok:
                raise ConfigError(f"config key {key!r} must be {need}; got {getattr(self, key)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for YAML and JSON)."""
        out = asdict(self)
        out["adam_betas"] = list(self.adam_betas)
        return out


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig, naming unknown keys."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; valid keys: {sorted(known)}")
    try:
        return TrainConfig(**data)
    except TypeError as err:
        raise ConfigError(str(err)) from err


def grid_settings(experiment: dict[str, Any]) -> list[tuple[str, str]]:
    """The (backbone, task) settings of an experiment's ``grid``."""
    return [(b, t) for b, tasks in experiment["grid"].items() for t in tasks]


def resolve_run(experiment: dict[str, Any], variant: str | None, setting: str | None = None) -> dict[str, Any]:
    """Trainer keys of one run: ``train``, then the setting's ``train``, then the variant's overrides.

    Experiment shape: {train: {...}, grid: {backbone: {task: {train: {...}, variants: {name: {...}}}}}}.
    ``setting`` is "backbone/task" (optional when the grid has one); ``variant`` None picks
    ``train.variant`` (default grpo_guard) where the setting declares it, else its first variant. A variant entry may name a
    registered method with ``variant:`` (a preset such as ``grpo_guard_public``); otherwise its own
    name is the method.
    """
    settings = grid_settings(experiment)
    if setting is None and len(settings) == 1:
        backbone, task = settings[0]
    elif setting is not None and tuple(setting.split("/", 1)) in settings:
        backbone, task = setting.split("/", 1)
    else:
        raise ConfigError(f"pick a setting (backbone/task) of this experiment: {['/'.join(p) for p in settings]}; "
                          f"got {setting!r}")
    entry = experiment["grid"][backbone][task] or {}
    variants = entry.get("variants") or {}
    if variant is None:  # train.variant (default grpo_guard) where the setting declares it, else its first variant
        preferred = experiment.get("train", {}).get("variant", "grpo_guard")
        variant = preferred if preferred in variants else next(iter(variants), preferred)
    if variant not in variants:
        raise ConfigError(f"variant {variant!r} is not declared for {backbone}/{task}; declared: {sorted(variants)}")
    return {**experiment.get("train", {}), **(entry.get("train") or {}), "variant": variant, **(variants[variant] or {})}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None, setting: str | None = None) -> TrainConfig:
    """Read a YAML config (TrainConfig keys, or an experiment with a grid) and apply overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    overrides = dict(overrides or {})
    if "grid" in data:
        from jobs.sweep import with_sweep  # a sweep point is a variant too (jobs.sweep imports this module)

        data = resolve_run(with_sweep(data), overrides.pop("variant", None), setting)
    return config_from_dict({**data, **overrides})
