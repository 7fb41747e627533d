"""Tiny randomly initialised SD3 and FLUX pipelines, saved as diffusers folders, for tests and benches.

The folders have the same layout as the real weights (model_index.json, transformer/, vae/,
text_encoder*/, tokenizer*/) and load through the same ``from_pretrained`` path, so the tests
exercise the real SD3.5-M / FLUX.1-dev code. Everything is built offline:

- CLIP tokenizers from open_clip's bundled BPE table (``bpe_simple_vocab_16e6.txt.gz``, 49408 ids);
- a T5 tokenizer from a unigram sentencepiece model trained here on a few sentences;
- transformer, VAE (8x down-sampling, 16 latent channels) and text encoders from small configs.

``--size sd35m`` (sd3) gives the SD3.5-M transformer and VAE at their real sizes (random weights, about
2.2 B parameters) and ``--size flux`` (flux) FLUX.1-dev's (about 11.9 B), with small text encoders whose
output widths match, for GPU benchmarks. The real text encoders' configs are here too, for cost counting.

Run: ``python -m guard.backbones.tiny {sd3,flux} --out DIR [--size tiny|sd35m|flux]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tempfile
from pathlib import Path

import torch

T5_SENTENCES = [
    "a photo of a red apple on a wooden table",
    "a blue car parked next to a green tree",
    "two cats sleeping on a sofa in the sun",
    "a sign that says hello world in bold letters",
    "an astronaut riding a horse on the moon",
    "a bowl of soup with a spoon, studio lighting",
    "three dogs playing with a yellow ball in the park",
    "a watercolor painting of mountains at sunset",
]
"""Training text of the tiny T5 sentencepiece model."""

SD35M_TRANSFORMER = dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24,
                         attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096,
                         caption_projection_dim=1536, pooled_projection_dim=2048, pos_embed_max_size=384,
                         dual_attention_layers=tuple(range(13)), qk_norm="rms_norm")
"""The SD3.5-M transformer config (stabilityai/stable-diffusion-3.5-medium, transformer/config.json)."""

SD3_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32,
               scaling_factor=1.5305, shift_factor=0.0609)
"""The SD3 VAE's size and latent scaling (16 latent channels, 8x down-sampling)."""

FLUX_VAE_SCALING = dict(scaling_factor=0.3611, shift_factor=0.1159)
"""FLUX.1-dev's latent scaling."""

FLUX1_DEV_TRANSFORMER = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                             num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
                             guidance_embeds=True, axes_dims_rope=(16, 56, 56))
"""The FLUX.1-dev transformer config (black-forest-labs/FLUX.1-dev, transformer/config.json; about 11.9 B parameters)."""

FLUX1_DEV_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32, **FLUX_VAE_SCALING)
"""The FLUX.1-dev VAE (vae/config.json): the SD3 VAE's shape, 16 latent channels, no quant convs, its own scaling."""

CLIP_L_TEXT = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   projection_dim=768, hidden_act="quick_gelu")
"""CLIP ViT-L/14's text encoder (SD3.5-M text_encoder, FLUX.1-dev text_encoder)."""

CLIP_G_TEXT = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
                   projection_dim=1280, hidden_act="gelu")
"""OpenCLIP ViT-bigG/14's text encoder (SD3.5-M text_encoder_2)."""

T5_XXL_ENCODER = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, vocab_size=32128,
                      feed_forward_proj="gated-gelu", relative_attention_num_buckets=32)
"""T5 v1.1 XXL's encoder (SD3.5-M text_encoder_3, FLUX.1-dev text_encoder_2; about 4.8 B parameters)."""


# ----------------------------------------------------------------------------------------------
# Tokenizers


def clip_tokenizer(folder: Path, max_length: int = 77):
    """CLIPTokenizer over open_clip's BPE merges: ids = 512 byte tokens + merges + 2 specials (49408)."""
    import open_clip
    from transformers import CLIPTokenizer
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe, "rt", encoding="utf-8").read().split("\n")[: 49152 - 256 - 2 + 1]
    merges = [tuple(line.split()) for line in lines[1:]]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("\n".join(lines) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="<|endoftext|>",
                         model_max_length=max_length)


def t5_tokenizer(vocab_size: int = 96):
    """T5TokenizerFast over a unigram sentencepiece model trained on T5_SENTENCES (pad 0, eos 1, unk 2).

    The fast tokenizer is assembled from the model's (piece, score) table with ``tokenizers``:
    transformers' slow-to-fast converter needs protobuf >= 4, which the pinned stack lacks.
    """
    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(T5_SENTENCES), model_writer=buffer, vocab_size=vocab_size,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=buffer.getvalue())
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    tok = Tokenizer(models.Unigram(pieces, unk_id=sp.unk_id()))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", sp.eos_id())])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0)


# ----------------------------------------------------------------------------------------------
# Models


def clip_encoder(hidden: int, projection: int | None, max_length: int = 77):
    """A 2-layer CLIP text encoder over the 49408-id BPE vocabulary (with projection for SD3)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                            num_attention_heads=4, max_position_embeddings=max_length, projection_dim=projection or hidden,
                            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_act="gelu")
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def t5_encoder(d_model: int, vocab_size: int):
    """A 1-layer T5 encoder of width d_model."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=16, d_ff=2 * d_model, num_layers=1,
                                   num_heads=4, relative_attention_num_buckets=8, decoder_start_token_id=0,
                                   pad_token_id=0, eos_token_id=1))


def autoencoder(size: str, scaling: dict[str, float]):
    """AutoencoderKL with 16 latent channels and 8x down-sampling (4 blocks); real SD3 widths for sd35m."""
    from diffusers import AutoencoderKL

    shape = SD3_VAE if size in ("sd35m", "flux") else dict(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    shape = {k: v for k, v in shape.items() if k not in ("scaling_factor", "shift_factor")}
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, use_quant_conv=False, use_post_quant_conv=False,
                         **shape, **scaling)


def sd3_pipeline(size: str = "tiny"):
    """StableDiffusion3Pipeline: 2-layer transformer (4 heads x 16), CLIP x2 (32 + 32 wide), T5 (64 wide)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        tok = clip_tokenizer(Path(tmp) / "clip")
        t5_tok = t5_tokenizer()
    if size == "sd35m":
        transformer = SD3Transformer2DModel(**SD35M_TRANSFORMER)
        clips, t5_width = (768, 1280), 4096
    else:
        transformer = SD3Transformer2DModel(sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=2,
                                            attention_head_dim=16, num_attention_heads=4, joint_attention_dim=64,
                                            caption_projection_dim=64, pooled_projection_dim=64, pos_embed_max_size=32,
                                            qk_norm="rms_norm")
        clips, t5_width = (32, 32), 64
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=autoencoder(size, {k: SD3_VAE[k] for k in ("scaling_factor", "shift_factor")}),
        text_encoder=clip_encoder(clips[0], clips[0]), tokenizer=tok,
        text_encoder_2=clip_encoder(clips[1], clips[1]), tokenizer_2=tok,
        text_encoder_3=t5_encoder(t5_width, len(t5_tok)), tokenizer_3=t5_tok)


def flux_pipeline(size: str = "tiny"):
    """FluxPipeline: 1 double + 1 single block (4 heads x 16, guidance embedding), CLIP (32), T5 (64);
    ``flux``: the FLUX.1-dev transformer and VAE at their real sizes with small text encoders of the real widths."""
    from diffusers import FluxPipeline, FluxTransformer2DModel, FlowMatchEulerDiscreteScheduler

    if size not in ("tiny", "flux"):
        raise ValueError(f"FLUX pipelines are built at size 'tiny' or 'flux', got {size!r}")
    with tempfile.TemporaryDirectory() as tmp:
        tok = clip_tokenizer(Path(tmp) / "clip")
        t5_tok = t5_tokenizer()
    if size == "flux":
        transformer = FluxTransformer2DModel(**FLUX1_DEV_TRANSFORMER)
        clip_width, t5_width = 768, 4096
    else:
        transformer = FluxTransformer2DModel(patch_size=1, in_channels=64, num_layers=1, num_single_layers=1,
                                             attention_head_dim=16, num_attention_heads=4, joint_attention_dim=64,
                                             pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
        clip_width, t5_width = 32, 64
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=autoencoder(size, FLUX_VAE_SCALING),
                        text_encoder=clip_encoder(clip_width, None), tokenizer=tok,
                        text_encoder_2=t5_encoder(t5_width, len(t5_tok)), tokenizer_2=t5_tok, transformer=transformer)


PIPELINES = {"sd3": sd3_pipeline, "flux": flux_pipeline}
SIZES = {"sd3": ("tiny", "sd35m"), "flux": ("tiny", "flux")}
"""The sizes each pipeline is built at: tiny, or the real transformer and VAE (sd35m: SD3.5-M, flux: FLUX.1-dev)."""


def build(kind: str, out: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Build the ``kind`` pipeline with seeded random weights and save_pretrained it to ``out``.

    sd35m weights are stored in fp16 and flux in bf16 (as the released checkpoints).
    """
    if kind not in PIPELINES:
        raise ValueError(f"unknown pipeline {kind!r}; choose one of {sorted(PIPELINES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        pipe = PIPELINES[kind](size)
    if size != "tiny":
        pipe.to(torch.float16 if size == "sd35m" else torch.bfloat16)
    pipe.save_pretrained(out)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(PIPELINES))
    parser.add_argument("--out", required=True, help="folder to write the diffusers pipeline to")
    parser.add_argument("--size", choices=["tiny", "sd35m", "flux"], default="tiny",
                        help="sd35m (sd3) / flux (flux): the real SD3.5-M / FLUX.1-dev transformer and VAE sizes "
                             "(random weights)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size not in SIZES[args.kind]:
        parser.error(f"--size {args.size} is not built for {args.kind}; choose one of {SIZES[args.kind]}")
    print(build(args.kind, args.out, args.size, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
