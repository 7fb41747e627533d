"""What the SD3.5-M and FLUX.1-dev backbones share: loading, LoRA, precision, prompt cache, exact batching.

- Loading: a local diffusers folder through the pipeline's ``from_pretrained`` (no hub access);
  a missing or incomplete folder raises FileNotFoundError saying what is expected and how to get it.
- Policy = base transformer + peft LoRA (paper: r 32, alpha 64 on attn.to_q/to_k/to_v/to_out.0,
  B initialised to 0 so the first policy is the base model); reference = the same transformer with
  the adapter disabled (peft's ``disable_adapter``), so the KL term needs no second copy.
- Precision: transformer and LoRA weights in fp32, its forward under autocast(``mixed_precision``);
  latents, velocities and all step math in fp32. Frozen text encoders and VAE run in the autocast
  dtype on GPU (fp32 on CPU).
- Exactness: the rollout evaluates the velocity on the whole batch and training recomputes it on
  minibatches; matrix kernels may round differently for another batch size, which would break
  RatioNorm's identity mu_theta = mu_old on the first minibatch. So every transformer call runs on
  chunks of exactly ``forward_batch`` rows, the last one padded by repeating its final row: a row's
  result never depends on how many other rows were in the batch. (Measured on a CPU: the tiny SD3
  transformer rounds batches of 1-3 rows differently from 4+; without the chunks the on-policy
  test with cfg 1 and minibatches of 2 fails.)
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

LAYOUT = "model_index.json, scheduler/, transformer/, vae/, text_encoder*/, tokenizer*/"
PRECISIONS = {"no": None, "fp16": torch.float16, "bf16": torch.bfloat16}
WEIGHT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PAPER_LORA = {"rank": 32, "alpha": 64, "targets": ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0"]}


@dataclass
class DiffusersOptions:
    """The ``backbone:`` block of an experiment for a diffusers backbone (keys shared by sd35 and flux)."""

    path: str
    """Local diffusers pipeline folder."""
    resolution: int = 512
    """Image side in pixels; the latent is (16, resolution / 8, resolution / 8)."""
    mixed_precision: str = "fp16"
    """Autocast dtype of the transformer forward: fp16, bf16 or no (fp32)."""
    transformer_dtype: str = "fp32"
    """Storage dtype of the frozen base transformer weights: fp32 (as Flow-GRPO), bf16 or fp16 (half the
    memory, e.g. FLUX.1-dev's 12 B on one 80 GB GPU); the LoRA weights stay fp32 either way."""
    lora: dict[str, Any] = field(default_factory=lambda: dict(PAPER_LORA))
    """LoRA adapter {rank, alpha, targets[, seed]} on the transformer (the trainable parameters)."""
    gradient_checkpointing: bool = False
    """Recompute transformer block activations in the backward pass (less memory, ~30% slower)."""
    device: str | None = None
    """torch device; default cuda when available, else cpu."""
    forward_batch: int = 8
    """Rows per transformer call (CFG doubles the rows); fixed so results do not depend on batch size."""
    max_sequence_length: int | None = None
    """T5 tokens per prompt (default: SD3 256, FLUX 512, as the pipelines)."""
    embedding_cache: int = 1024
    """Prompts whose text embeddings are kept (least recently used ones are dropped beyond this)."""

    def __post_init__(self) -> None:
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"backbone.mixed_precision must be one of {sorted(PRECISIONS)}, got {self.mixed_precision!r}")
        if self.transformer_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"backbone.transformer_dtype must be one of {sorted(WEIGHT_DTYPES)}, "
                             f"got {self.transformer_dtype!r}")
        if self.resolution % 16:
            raise ValueError(f"backbone.resolution must be a multiple of 16 (VAE 8x, 2x2 patches), got {self.resolution}")
        if self.forward_batch < 1 or self.embedding_cache < 1:
            raise ValueError("backbone.forward_batch and backbone.embedding_cache must be >= 1")
        missing = {"rank", "alpha", "targets"} - set(self.lora or {})
        if missing:
            raise ValueError(f"backbone.lora needs keys rank, alpha, targets; missing {sorted(missing)}")


def parse_options(cls: type, options: dict[str, Any]) -> Any:
    """``cls(**options)`` without ``name``; unknown keys raise naming the valid ones."""
    known = {f.name for f in fields(cls)}
    unknown = set(options) - known - {"name"}
    if unknown:
        raise ValueError(f"unknown backbone option(s) {sorted(unknown)} for {options.get('name')!r}; "
                         f"valid: {sorted(known)}")
    if "path" not in options:
        raise ValueError(f"backbone {options.get('name')!r} needs 'path': a local diffusers pipeline folder")
    return cls(**{k: v for k, v in options.items() if k != "name"})


def resolve_device(name: str | None) -> torch.device:
    """The configured device, or cuda when available, else cpu; cuda without an index is the current GPU.

    Under ``accelerate launch`` the current GPU is the process's own once its state exists
    (guard.distributed.Processes.launched, called before the backbone is built).
    """
    device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    return torch.device("cuda", torch.cuda.current_device()) if device.type == "cuda" and device.index is None else device


def check_folder(path: str | Path, repo: str, kind: str) -> Path:
    """``path`` if it holds a diffusers pipeline whose model_index.json components all exist.

    Raises FileNotFoundError naming the folder, the missing parts, the expected layout and how to get it.
    """
    path = Path(path)
    index = path / "model_index.json"
    missing = [] if index.is_file() else ["model_index.json"]
    if index.is_file():
        components = [k for k, v in json.loads(index.read_text()).items()
                      if not k.startswith("_") and isinstance(v, list) and v[0] is not None]
        missing = [f"{c}/" for c in components if not (path / c).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"backbone.path {str(path)!r} is not a complete diffusers pipeline folder (missing {', '.join(missing)}); "
            f"expected the layout {LAYOUT}. Get the weights with `huggingface-cli download {repo} --local-dir {path}` "
            f"(accept the model licence on the hub first), or for tests a tiny random one with "
            f"`python -m guard.backbones.tiny {kind} --out {path}`; then set backbone.path to that folder.")
    return path


def load_pipeline(cls: type, path: Path, device: torch.device, options: DiffusersOptions) -> Any:
    """``cls.from_pretrained(path)``: transformer in ``transformer_dtype``, the frozen rest in the autocast
    dtype on GPU (fp32 on CPU or without mixed precision)."""
    pipe = cls.from_pretrained(str(path), torch_dtype=component_dtypes(device, options))
    return place_pipeline(pipe, device, options)


def component_dtypes(device: torch.device, options: DiffusersOptions) -> dict[str, torch.dtype]:
    """The transformer in ``transformer_dtype``; the frozen rest in the autocast dtype on GPU (fp32 on CPU)."""
    half = PRECISIONS[options.mixed_precision]
    frozen = half if device.type == "cuda" and half is not None else torch.float32
    return {"transformer": WEIGHT_DTYPES[options.transformer_dtype], "default": frozen}


def place_pipeline(pipe: Any, device: torch.device, options: DiffusersOptions, cast: bool = False) -> Any:
    """Every component frozen, in eval mode, on ``device``; with ``cast`` (a pipeline built in memory) also in
    its dtype (:func:`component_dtypes`; ``from_pretrained`` loads them so, keeping e.g. T5's fp32 layers)."""
    dtypes = component_dtypes(device, options)
    for name, module in pipe.components.items():
        if isinstance(module, torch.nn.Module):
            module.to(device, dtypes.get(name, dtypes["default"]) if cast else None).requires_grad_(False).eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def add_lora(transformer: torch.nn.Module, lora: dict[str, Any], checkpointing: bool) -> torch.nn.Module:
    """peft LoRA (rank r, alpha, target module names; A gaussian from ``lora.seed``, B = 0) on the frozen transformer."""
    from peft import LoraConfig, get_peft_model

    if checkpointing:
        transformer.enable_gradient_checkpointing()
    config = LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], target_modules=list(lora["targets"]),
                        init_lora_weights="gaussian", lora_dropout=0.0)
    device = next(transformer.parameters()).device
    with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
        torch.manual_seed(lora.get("seed", 0))
        return get_peft_model(transformer, config, autocast_adapter_dtype=True)  # LoRA in fp32 on a half base


def fixed_chunks(fn: Callable[..., torch.Tensor], rows: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """cat(fn(*chunk) for chunks of exactly ``size`` rows)[:n], the last chunk padded with its final row."""
    n = rows[0].shape[0]
    out = []
    for start in range(0, n, size):
        chunk = [r[start:start + size] for r in rows]
        pad = size - chunk[0].shape[0]
        if pad:
            chunk = [torch.cat([c, c[-1:].expand(pad, *c.shape[1:])]) for c in chunk]
        out.append(fn(*chunk)[: size - pad])
    return torch.cat(out)


@dataclass
class TextCond:
    """Per-sample text condition: token embeddings (B, L, D) and pooled embeddings (B, P), fp32 on device."""

    embeds: torch.Tensor
    pooled: torch.Tensor

    def select(self, index: torch.Tensor) -> "TextCond":
        """Rows ``index``."""
        index = index.to(self.embeds.device)
        return TextCond(self.embeds[index], self.pooled[index])


class EmbeddingCache:
    """Text embeddings per prompt, computed once by ``compute(prompts) -> (embeds, pooled)`` and kept (LRU, CPU)."""

    def __init__(self, compute: Callable[[list[str]], tuple[torch.Tensor, torch.Tensor]], capacity: int) -> None:
        self.compute, self.capacity = compute, capacity
        self.entries: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def __call__(self, prompts: Sequence[str], device: torch.device) -> TextCond:
        """The condition of ``prompts``; only prompts not yet cached are encoded (in one batch)."""
        todo = list(dict.fromkeys(p for p in prompts if p not in self.entries))
        if todo:
            with torch.no_grad():
                embeds, pooled = self.compute(todo)
            for i, p in enumerate(todo):
                self.entries[p] = (embeds[i].cpu(), pooled[i].cpu())
        rows = [self.entries[p] for p in prompts]
        for p in prompts:
            self.entries.move_to_end(p)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return TextCond(torch.stack([e for e, _ in rows]).to(device, torch.float32),
                        torch.stack([q for _, q in rows]).to(device, torch.float32))


class DiffusersBackbone(ABC):
    """``guard.backbone.Backbone`` over a diffusers pipeline with a LoRA policy; subclasses define ``forward``.

    ``forward(x, t, cond)`` maps fp32 latents (B, 16, h, w) and flow times (B,) on ``device`` to the
    guided velocity; this class adds device placement, autocast, the adapter switch and decoding.
    Device contract: ``device`` is where the models run; ``encode`` returns conditions there;
    ``velocity`` / ``reference_velocity`` / ``decode`` take inputs on any device and return fp32 on
    the input's device (so a trainer that keeps latents on ``device`` never copies).
    """

    rows_in_one_call = False  # rows go through in padded chunks of forward_batch

    def __init__(self, pipe: Any, options: DiffusersOptions) -> None:
        self.pipe, self.options = pipe, options
        self.device: torch.device = next(pipe.transformer.parameters()).device
        self.autocast = PRECISIONS[options.mixed_precision]
        self.grad_scaling = self.autocast is torch.float16
        """fp16 autocast needs a loss scaler (the trainer's GradScaler); bf16 and fp32 do not."""
        self.transformer = add_lora(pipe.transformer, options.lora, options.gradient_checkpointing)
        side = options.resolution // 8
        self.latent_shape: tuple[int, ...] = (pipe.transformer.config.in_channels // self.packed_channels, side, side)
        self.cache = EmbeddingCache(self.encode_text, options.embedding_cache)

    packed_channels = 1
    """How many latent channels the transformer's input channel count packs (FLUX 2x2 patches: 4)."""

    @abstractmethod
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(token embeddings, pooled embeddings) of distinct prompts, from the pipeline's text encoders."""

    @abstractmethod
    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Guided velocity of the current transformer (adapter on or off)."""

    def transformer_call(self, fn: Callable[..., torch.Tensor], rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """fn over fixed-size chunks of ``rows`` under autocast; returns fp32."""
        with torch.autocast(self.device.type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            return fixed_chunks(fn, rows, self.options.forward_batch).float()

    def save_adapter(self, out: str | Path) -> None:
        """The LoRA adapter as a peft folder (adapter_config.json + adapter_model.safetensors) that
        ``PeftModel.from_pretrained(transformer, out)`` loads onto the base transformer."""
        self.transformer.save_pretrained(str(out))

    def encode(self, prompts: Sequence[str]) -> TextCond:
        """Cached text condition of a batch of prompts."""
        return self.cache(prompts, self.device)

    def select(self, cond: TextCond, index: torch.Tensor) -> TextCond:
        """Rows ``index`` of a condition."""
        return cond.select(index)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Policy velocity (LoRA on), fp32 on x's device; ``t`` (B,) or a scalar."""
        v = self.forward(x.to(self.device, torch.float32), t.to(self.device, torch.float32).expand(x.shape[0]), cond)
        return v.to(x.device)

    def reference_velocity(self, x: torch.Tensor, t: torch.Tensor, cond: TextCond) -> torch.Tensor:
        """Base-model velocity (LoRA disabled), without autograd."""
        with torch.no_grad(), self.transformer.disable_adapter():
            return self.velocity(x, t, cond)

    def trainable_parameters(self) -> Iterable[torch.nn.Parameter]:
        """The LoRA weights."""
        return [p for p in self.transformer.parameters() if p.requires_grad]

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Images clamp(vae.decode(x / scaling + shift) / 2 + 1/2, 0, 1), fp32 on x's device."""
        vae = self.pipe.vae
        z = x.to(self.device, vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
        images = torch.cat([vae.decode(c).sample for c in z.split(self.options.forward_batch)])
        return (images.float() / 2 + 0.5).clamp(0.0, 1.0).to(x.device)
