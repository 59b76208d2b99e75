"""Tiny FLUX and SD3 pipelines built from config, offline: no hub download anywhere."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from PIL import Image
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

from scenewright.bench.geometry import word_level_tokenizer
from scenewright.planner.plan import Plan, PlanObject

WORDS = [
    "a",
    "an",
    "the",
    "and",
    "of",
    "two",
    "three",
    "red",
    "blue",
    "green",
    "yellow",
    "apple",
    "apples",
    "vase",
    "cat",
    "cats",
    "dog",
    "sky",
    "night",
    "left",
    "right",
    "circle",
    "circles",
    "square",
    "squares",
    "on",
    "top",
    "beside",
    "fire",
    "hydrant",
    "wine",
    "glass",
]


def word_tokenizer(max_length: int, eos_last: bool = True) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer made locally; ``<eos>`` has the highest id (CLIP pooling)."""
    tokenizer: PreTrainedTokenizerFast = word_level_tokenizer(WORDS, max_length)
    return tokenizer


def _clip(hidden: int, projection: bool, seed: int) -> CLIPTextModel:
    tok = word_tokenizer(77)
    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _t5(d_model: int, seed: int) -> T5EncoderModel:
    tok = word_tokenizer(512)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tok),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config).eval()


def _vae(latent_channels: int, seed: int) -> AutoencoderKL:
    torch.manual_seed(seed)
    return AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    ).eval()


def tiny_flux_pipeline(
    guidance_embeds: bool = True, seed: int = 0, single_blocks: int = 2, double_blocks: int = 2
) -> FluxPipeline:
    """A FLUX pipeline small enough for CPU tests: ``double_blocks`` double and ``single_blocks``
    single blocks, 2x2 VAE (64x64 pixels are 16x16 image tokens). The reference fixtures of
    regional prompting (scripts/reference/regional.py) use 6 single blocks, where a difference in
    the single-stream blocks grows with depth; ConceptAttention's use FLUX.1's 19 double blocks."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=double_blocks,
        num_single_layers=single_blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        base_shift=0.5,
        max_shift=1.15,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=_vae(4, seed + 1),
        text_encoder=_clip(32, projection=False, seed=seed + 2),
        tokenizer=word_tokenizer(77),
        text_encoder_2=_t5(32, seed + 3),
        tokenizer_2=word_tokenizer(512),
        transformer=transformer,
    )


def tiny_sd3_pipeline(seed: int = 0, sd35: bool = False) -> StableDiffusion3Pipeline:
    """An SD3 (or SD3.5-style, with dual attention and qk-norm) pipeline for CPU tests."""
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        out_channels=4,
        pos_embed_max_size=32,
        dual_attention_layers=(0,) if sd35 else (),
        qk_norm="rms_norm" if sd35 else None,
    ).eval()
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=_vae(4, seed + 1),
        text_encoder=_clip(16, projection=True, seed=seed + 2),
        tokenizer=word_tokenizer(77),
        text_encoder_2=_clip(16, projection=True, seed=seed + 3),
        tokenizer_2=word_tokenizer(77),
        text_encoder_3=_t5(32, seed + 4),
        tokenizer_3=word_tokenizer(256),
    )


def two_box_plan(prompt: str = "a red circle left of a blue square") -> Plan:
    """A red circle in the top-left quarter and a blue square in the bottom-right one: the
    smallest plan with two disjoint boxes, for the regional and Stitch tests."""
    return Plan(
        prompt=prompt,
        objects=[
            PlanObject(name="circle", attributes=["red"], boxes=[(0.0, 0.0, 0.5, 0.5)]),
            PlanObject(name="square", attributes=["blue"], boxes=[(0.5, 0.5, 1.0, 1.0)]),
        ],
    )


def two_box_image(size: int) -> Image.Image:
    """:func:`two_box_plan` drawn: a red disc in the top-left quarter and a blue square in the
    bottom-right one on grey, ``size`` pixels a side (the concept-map reference fixture's image)."""
    pixels = np.full((size, size, 3), 128, dtype=np.uint8)
    half = size // 2
    y, x = np.mgrid[:half, :half]
    disc = (y - half / 2) ** 2 + (x - half / 2) ** 2 < (0.4 * half) ** 2
    pixels[:half, :half][disc] = (220, 30, 30)
    pixels[half + half // 8 : size - half // 8, half + half // 8 : size - half // 8] = (30, 40, 220)
    return Image.fromarray(pixels)
