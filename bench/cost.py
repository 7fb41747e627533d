"""Cost of a training, sampling or scoring job, counted without a GPU: FLOPs and peak memory per GPU.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over the real architectures built on the meta
device (no weights are allocated): one transformer row (one latent and its text tokens) forward,
forward + backward of the LoRA policy, the VAE decoder per image and the text encoders per prompt.
The job's count multiplies these by the rows the trainer computes: every transformer call runs on
chunks of exactly ``forward_batch`` rows (the last one padded, guard/backbones/diffusers_common.py),
classifier-free guidance doubles the rows, and each process of a multi-GPU job pads its own share.
Reward and metric models are not counted (their cost is the configured runtime of the score jobs).

Memory: the bytes autograd saves for the backward pass (``saved_tensors_hooks`` on the meta device,
attention kept as flash attention keeps it: q, k, v, the output and the per-row log-sum-exp), plus
weights in their dtype, the LoRA state (weight, grad, two AdamW moments, EMA and the grad copies of
the per-step gradient norm), the autocast copies of fp32 base weights each training chunk saves, and
the rollout's stored trajectory and text embeddings.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import torch
from torch.utils.flop_counter import FlopCounterMode

from guard.backbones.diffusers_common import PRECISIONS, WEIGHT_DTYPES, add_lora
from guard.backbones.tiny import (CLIP_G_TEXT, CLIP_L_TEXT, FLUX1_DEV_TRANSFORMER, FLUX1_DEV_VAE, SD35M_TRANSFORMER,
                                  SD3_VAE, T5_XXL_ENCODER)
from jobs.config import TrainConfig
from guard.minibatch import micro_batches

TEXT_TOKENS = {"sd35": (77, 256), "flux": (0, 512)}
"""(CLIP tokens, default T5 tokens) of a backbone's transformer text sequence (SD3 joins CLIP's 77 to T5's)."""


@dataclass(frozen=True)
class Architecture:
    """The module configs of a pipeline as JSON text (hashable): transformer, VAE, text encoders (kind, config)."""

    backbone: str
    transformer: str
    vae: str
    text_encoders: tuple[tuple[str, str], ...]


def _json(config: Any) -> str:
    return json.dumps({k: v for k, v in dict(config).items() if not k.startswith("_")}, sort_keys=True, default=list)


VAE_LAYOUT = dict(in_channels=3, out_channels=3, latent_channels=16, down_block_types=["DownEncoderBlock2D"] * 4,
                  up_block_types=["UpDecoderBlock2D"] * 4, use_quant_conv=False, use_post_quant_conv=False)


def published(backbone: str) -> Architecture:
    """SD3.5-M (sd35) or FLUX.1-dev (flux) at their published sizes (configs in guard/backbones/tiny.py)."""
    if backbone == "sd35":
        return Architecture("sd35", _json(SD35M_TRANSFORMER), _json({**VAE_LAYOUT, **SD3_VAE}),
                            (("clip_projection", _json(CLIP_L_TEXT)), ("clip_projection", _json(CLIP_G_TEXT)),
                             ("t5", _json(T5_XXL_ENCODER))))
    if backbone == "flux":
        return Architecture("flux", _json(FLUX1_DEV_TRANSFORMER), _json({**VAE_LAYOUT, **FLUX1_DEV_VAE}),
                            (("clip", _json(CLIP_L_TEXT)), ("t5", _json(T5_XXL_ENCODER))))
    raise ValueError(f"no published architecture for backbone {backbone!r}; costs are counted for sd35 and flux")


def text_kind(module: torch.nn.Module) -> str:
    name = type(module).__name__
    return "t5" if name.startswith("T5") else "clip_projection" if "Projection" in name else "clip"


def from_pipeline(backbone: str, pipe: Any) -> Architecture:
    """The architecture of a loaded (or in-memory) diffusers pipeline."""
    encoders = [pipe.components[k] for k in sorted(pipe.components) if k.startswith("text_encoder")]
    return Architecture(backbone, _json(pipe.transformer.config), _json(pipe.vae.config),
                        tuple((text_kind(m), _json(m.config.to_dict())) for m in encoders if m is not None))


def from_folder(backbone: str, path: str | Path) -> Architecture:
    """The architecture of a diffusers folder's config.json files (real weights or a tiny random pipeline)."""
    path = Path(path)
    index = json.loads((path / "model_index.json").read_text())
    encoders = []
    for name in sorted(k for k in index if k.startswith("text_encoder") and index[k][0] is not None):
        config = json.loads((path / name / "config.json").read_text())
        kind = "t5" if index[name][1].startswith("T5") else "clip_projection" if "Projection" in index[name][1] else "clip"
        encoders.append((kind, _json(config)))
    return Architecture(backbone, (path / "transformer" / "config.json").read_text(),
                        (path / "vae" / "config.json").read_text(), tuple(encoders))


def architecture(options: dict[str, Any]) -> tuple[Architecture, str]:
    """The architecture of a ``backbone:`` block and where it comes from: its folder's configs, else the published ones."""
    path = Path(options.get("path", ""))
    if (path / "model_index.json").is_file():
        return from_folder(options["name"], path), f"configs of {path}"
    return published(options["name"]), "published configs (guard/backbones/tiny.py)"


# ----------------------------------------------------------------------------------------------
# Modules on the meta device


def _clean(text: str) -> dict[str, Any]:
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


@contextmanager
def diffusers_on_meta() -> Iterator[None]:
    """Build diffusers models on the meta device with diffusers' logging at errors only (restored after): casting a model
    built from a config warns that modules "should be kept in float32" even where it lists none."""
    from diffusers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with torch.device("meta"):
            yield
    finally:
        logging.set_verbosity(verbosity)


def transformer_on_meta(arch: Architecture, lora: str | None, dtype: torch.dtype, checkpointing: bool) -> torch.nn.Module:
    """The frozen transformer with the LoRA ``lora`` (JSON, or None) on the meta device."""
    from diffusers import FluxTransformer2DModel, SD3Transformer2DModel

    cls = SD3Transformer2DModel if arch.backbone == "sd35" else FluxTransformer2DModel
    with diffusers_on_meta():
        model = cls.from_config(_clean(arch.transformer)).to(dtype).requires_grad_(False)
        if lora is not None:
            model = add_lora(model, json.loads(lora), checkpointing)
        elif checkpointing:
            model.enable_gradient_checkpointing()
    return model.train(checkpointing)


def transformer_inputs(arch: Architecture, rows: int, resolution: int, text_tokens: int,
                       dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Meta inputs of one transformer call of ``rows`` rows, as the backbones build them."""
    config = _clean(arch.transformer)
    side = resolution // 8

    def meta(*shape: int) -> torch.Tensor:
        return torch.zeros(*shape, device="meta", dtype=dtype)

    if arch.backbone == "sd35":
        return dict(hidden_states=meta(rows, config["in_channels"], side, side), timestep=meta(rows),
                    encoder_hidden_states=meta(rows, text_tokens, config["joint_attention_dim"]),
                    pooled_projections=meta(rows, config["pooled_projection_dim"]))
    tokens = (side // 2) ** 2
    return dict(hidden_states=meta(rows, tokens, config["in_channels"]), timestep=meta(rows), guidance=meta(rows),
                pooled_projections=meta(rows, config["pooled_projection_dim"]),
                encoder_hidden_states=meta(rows, text_tokens, config["joint_attention_dim"]),
                txt_ids=meta(text_tokens, 3), img_ids=meta(tokens, 3))


def text_tokens(arch: Architecture, max_sequence_length: int | None) -> int:
    """Text tokens per row of the transformer: SD3 77 CLIP + T5 (256), FLUX T5 (512)."""
    clip, t5 = TEXT_TOKENS[arch.backbone]
    return clip + (max_sequence_length or t5)


@lru_cache(maxsize=None)
def transformer_row_flops(arch: Architecture, resolution: int, tokens: int, lora: str | None, backward: bool,
                          checkpointing: bool = False) -> float:
    """FLOPs of one row through the transformer: forward, or forward + backward into the LoRA weights
    (with checkpointing the backward recomputes each block's forward)."""
    model = transformer_on_meta(arch, lora, torch.float32, checkpointing and backward)
    inputs = transformer_inputs(arch, 1, resolution, tokens, torch.float32)
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(backward):
        out = model(**inputs, return_dict=False)[0]
        if backward:
            out.sum().backward()
    return float(counter.get_total_flops())


@lru_cache(maxsize=None)
def decode_flops(arch: Architecture, resolution: int) -> float:
    """FLOPs of the VAE decoder per image."""
    from diffusers import AutoencoderKL

    with diffusers_on_meta():
        vae = AutoencoderKL.from_config(_clean(arch.vae))
    side = resolution // 8
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        vae.decode(torch.zeros(1, 16, side, side, device="meta"))
    return float(counter.get_total_flops())


def text_encoder_on_meta(kind: str, config: str) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    with torch.device("meta"):
        if kind == "t5":
            return T5EncoderModel(T5Config(**_clean(config)))
        cls = CLIPTextModelWithProjection if kind == "clip_projection" else CLIPTextModel
        return cls(CLIPTextConfig(**_clean(config)))


@lru_cache(maxsize=None)
def text_flops(arch: Architecture, max_sequence_length: int | None) -> float:
    """FLOPs of encoding one prompt with every text encoder (CLIP: 77 tokens, T5: the sequence length)."""
    total = 0.0
    for kind, config in arch.text_encoders:
        length = (max_sequence_length or TEXT_TOKENS[arch.backbone][1]) if kind == "t5" else 77
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            text_encoder_on_meta(kind, config)(torch.zeros(1, length, dtype=torch.long, device="meta"))
        total += counter.get_total_flops()
    return total


@lru_cache(maxsize=None)
def parameter_counts(arch: Architecture, lora: str) -> dict[str, int]:
    """Parameters of the transformer, its LoRA, the VAE and the text encoders."""
    from diffusers import AutoencoderKL

    model = transformer_on_meta(arch, lora, torch.float32, False)
    lora_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    with diffusers_on_meta():
        vae = AutoencoderKL.from_config(_clean(arch.vae))
    text = sum(p.numel() for kind, c in arch.text_encoders for p in text_encoder_on_meta(kind, c).parameters())
    return {"transformer": sum(p.numel() for p in model.parameters()) - lora_params, "lora": lora_params,
            "vae": sum(p.numel() for p in vae.parameters()), "text_encoders": text}


# ----------------------------------------------------------------------------------------------
# Counting a job


def padded(rows: int, size: int) -> int:
    """Rows a transformer call computes: ``rows`` in chunks of exactly ``size`` (the last one padded)."""
    return math.ceil(rows / size) * size


def guidance_rows(config: TrainConfig) -> int:
    """Transformer rows per sample: 2 with classifier-free guidance (SD3 cfg > 1), else 1."""
    return 2 if config.backbone["name"] == "sd35" and config.backbone.get("cfg", 4.5) > 1 else 1


def lora_key(config: TrainConfig) -> str:
    from guard.backbones.diffusers_common import PAPER_LORA

    return json.dumps(config.backbone.get("lora", PAPER_LORA), sort_keys=True)


def sampling_flops(config: TrainConfig, arch: Architecture, images: int, steps: int, batch: int) -> float:
    """ODE sampling (LoRA on) of ``images`` images ``batch`` at a time (0: all), and their decoding (text encoding apart)."""
    b = config.backbone
    forward = transformer_row_flops(arch, b.get("resolution", 512), text_tokens(arch, b.get("max_sequence_length")),
                                    lora_key(config), False)
    chunks = micro_batches(images, batch)
    rows = sum(padded(guidance_rows(config) * len(c), b.get("forward_batch", 8)) for c in chunks)
    return steps * rows * forward + images * decode_flops(arch, b.get("resolution", 512))


def iteration_flops(config: TrainConfig, arch: Architecture, gpus: int = 1) -> dict[str, float]:
    """FLOPs of one RL iteration over all ``gpus`` processes: rollout (text, SDE steps, decode) and update
    (forward + backward of every trained step of every minibatch, ``steps_per_backward`` steps of a micro-batch
    per transformer call as the trainer's ordinary iterations do, plus the reference forward of the KL);
    every sample is assumed kept (drop_zero_advantage drops at most the zero-advantage groups)."""
    b = config.backbone
    resolution, fb, lora = b.get("resolution", 512), b.get("forward_batch", 8), lora_key(config)
    tokens = text_tokens(arch, b.get("max_sequence_length"))
    checkpointing = b.get("gradient_checkpointing", False)
    forward = transformer_row_flops(arch, resolution, tokens, lora, False)
    train = transformer_row_flops(arch, resolution, tokens, lora, True, checkpointing)
    reference = transformer_row_flops(arch, resolution, tokens, None, False)
    g, samples = guidance_rows(config), config.prompts_per_iteration * config.group_size
    local = samples // gpus
    rollout = gpus * (config.num_steps * padded(g * local, fb) * forward + local * decode_flops(arch, resolution)
                      + config.prompts_per_iteration // gpus * text_flops(arch, b.get("max_sequence_length")))
    update = 0.0
    for minibatch in torch.tensor_split(torch.arange(samples), config.minibatches):
        for part in micro_batches(math.ceil(len(minibatch) / gpus), config.micro_batch):
            for steps in micro_batches(config.trained_steps, config.steps_per_backward):  # steps in one call
                rows = padded(g * len(part) * len(steps), fb)
                update += rows * (train + (reference if config.kl_beta > 0 else 0.0))
    return {"rollout": rollout, "update": gpus * config.inner_epochs * update}


def evaluation_flops(config: TrainConfig, arch: Architecture, eval_images: int, gpus: int = 1) -> float:
    """FLOPs of one training-time evaluation: ``eval_images`` ODE samples split over the processes."""
    per_gpu = math.ceil(eval_images / gpus)
    prompts = eval_images // max(config.eval_per_prompt, 1)
    return gpus * sampling_flops(config, arch, per_gpu, config.eval_steps, config.eval_batch) + prompts * text_flops(
        arch, config.backbone.get("max_sequence_length"))


def evaluations(config: TrainConfig) -> int:
    """Evaluations of a run: every ``eval_every`` iterations from 0, and the final one."""
    return len(range(0, config.iterations, config.eval_every)) + 1


# ----------------------------------------------------------------------------------------------
# Memory


class FlashLikeAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(d)) v whose saved tensors are those of flash attention: q, k, v, out and the log-sum-exp."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(q.expand(*q.shape[:-1], v.shape[-1]))
        lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        q, k, v, _, _ = ctx.saved_tensors
        return torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)


@contextmanager
def flash_like_attention() -> Iterator[None]:
    """F.scaled_dot_product_attention replaced by :class:`FlashLikeAttention` (meta tensors only)."""
    functional = torch.nn.functional
    original = functional.scaled_dot_product_attention
    functional.scaled_dot_product_attention = lambda query, key, value, *args, **kwargs: FlashLikeAttention.apply(
        query, key, value)
    try:
        yield
    finally:
        functional.scaled_dot_product_attention = original


@lru_cache(maxsize=None)
def saved_bytes_per_row(arch: Architecture, resolution: int, tokens: int, lora: str, dtype_name: str) -> dict[str, float]:
    """Bytes autograd keeps for the backward of one row, in the activation dtype: in all (``total``), inside
    each transformer block (largest: ``block_max``, sum: ``blocks``) and the blocks' inputs (``block_inputs``),
    which is what gradient checkpointing keeps of them."""
    dtype = PRECISIONS[dtype_name] or torch.float32
    model = transformer_on_meta(arch, lora, dtype, False)
    params = {id(p) for p in model.parameters()}
    seen: dict[int, torch.Tensor] = {}
    state = {"total": 0.0, "inputs": 0.0}

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t._base if t._base is not None else t
        if id(base) not in params and id(base) not in seen:
            seen[id(base)] = base
            state["total"] += base.numel() * base.element_size()
        return t

    blocks, starts = [], {}
    for module in model.modules():
        if type(module).__name__ in ("JointTransformerBlock", "SD3SingleTransformerBlock", "FluxTransformerBlock",
                                     "FluxSingleTransformerBlock"):
            def pre(m: torch.nn.Module, args: tuple, kwargs: dict) -> None:
                starts[id(m)] = state["total"]
                state["inputs"] += sum(a.numel() * a.element_size() for a in [*args, *kwargs.values()]
                                       if isinstance(a, torch.Tensor) and a.dtype.is_floating_point)

            def post(m: torch.nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
                blocks.append(state["total"] - starts[id(m)])

            module.register_forward_pre_hook(pre, with_kwargs=True)
            module.register_forward_hook(post, with_kwargs=True)
    inputs = transformer_inputs(arch, 1, resolution, tokens, dtype)
    with flash_like_attention(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**inputs, return_dict=False)
    return {"total": state["total"], "blocks": sum(blocks), "block_max": max(blocks), "block_inputs": state["inputs"]}


GB = 2**30


def memory_per_gpu(config: TrainConfig, arch: Architecture, gpus: int = 1) -> dict[str, float]:
    """Peak memory (GiB) of one training process, by part (see the module docstring), with and without
    gradient checkpointing; ``total`` is for the config's ``gradient_checkpointing``."""
    b = config.backbone
    resolution, fb, lora = b.get("resolution", 512), b.get("forward_batch", 8), lora_key(config)
    precision = b.get("mixed_precision", "fp16" if b["name"] == "sd35" else "bf16")
    weight_dtype = b.get("transformer_dtype", "fp32")
    tokens = text_tokens(arch, b.get("max_sequence_length"))
    params = parameter_counts(arch, lora)
    half = 2 if PRECISIONS[precision] is not None else 4
    weight_bytes = torch.empty(0, dtype=WEIGHT_DTYPES[weight_dtype]).element_size()
    samples = config.prompts_per_iteration * config.group_size // gpus
    minibatch = math.ceil(samples / config.minibatches)
    steps = config.steps_per_backward or config.trained_steps  # trained steps in one forward/backward
    rows = padded(guidance_rows(config) * (min(config.micro_batch, minibatch) or minibatch) * steps, fb)
    saved = saved_bytes_per_row(arch, resolution, tokens, lora, precision)
    latent = 16 * (resolution // 8) ** 2 * 4
    text_width = json.loads(arch.transformer)["joint_attention_dim"]
    parts = {
        "weights": params["transformer"] * weight_bytes + (params["vae"] + params["text_encoders"]) * half,
        "lora_state": params["lora"] * 4 * (5 + (2 if config.step_grad_norm_every > 0 else 0)),
        "autocast_copies": (params["transformer"] * 2 * rows // fb
                            if weight_dtype == "fp32" and PRECISIONS[precision] is not None else 0),
        "trajectory": samples * ((2 * config.num_steps + 1) * latent + tokens * text_width * 4),
        "activations": rows * saved["total"],
        "activations_checkpointed": rows * (saved["total"] - saved["blocks"] + saved["block_inputs"])
                                    + fb * saved["block_max"],
    }
    fixed = sum(v for k, v in parts.items() if not k.startswith("activations"))
    out = {k: v / GB for k, v in parts.items()}
    out["total_without_checkpointing"] = (fixed + parts["activations"]) / GB
    out["total_with_checkpointing"] = (fixed + parts["activations_checkpointed"]) / GB
    out["total"] = out["total_with_checkpointing" if b.get("gradient_checkpointing") else "total_without_checkpointing"]
    return out
