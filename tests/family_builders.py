"""Tiny Chroma and Qwen-Image pipelines built from config, offline: no hub download anywhere."""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKLQwenImage,
    ChromaPipeline,
    ChromaTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
)

from builders import WORDS, _t5, _vae, word_tokenizer
from scenewright.bench.geometry import with_chat_text


def _scheduler() -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_image_seq_len=256,
        max_image_seq_len=4096,
        base_shift=0.5,
        max_shift=1.15,
    )


def tiny_chroma_pipeline(seed: int = 0, double_blocks: int = 2, single_blocks: int = 2) -> ChromaPipeline:
    """A Chroma pipeline for CPU tests: FLUX.1-style blocks, one small T5, the 2x2 test VAE."""
    torch.manual_seed(seed)
    transformer = ChromaTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=double_blocks,
        num_single_layers=single_blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(4, 6, 6),
        approximator_num_channels=8,
        approximator_hidden_dim=32,
        approximator_layers=1,
    ).eval()
    return ChromaPipeline(
        scheduler=_scheduler(),
        vae=_vae(4, seed + 1),
        text_encoder=_t5(32, seed + 3),
        tokenizer=word_tokenizer(512),
        transformer=transformer,
    )


def tiny_qwen_image_pipeline(seed: int = 0, blocks: int = 2) -> QwenImagePipeline:
    """A Qwen-Image pipeline for CPU tests: 2 dual-stream blocks of 2 heads of 16, a one-layer
    Qwen2.5-VL 16 wide and its word-level chat tokenizer (see ``with_chat_text``), a 4x video VAE
    (so 8 px a token)."""
    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),
    ).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLQwenImage(
        base_dim=24,
        z_dim=4,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    ).eval()
    pipe = QwenImagePipeline(
        scheduler=_scheduler(),
        vae=vae,
        text_encoder=None,  # type: ignore[arg-type]
        tokenizer=None,  # type: ignore[arg-type]
        transformer=transformer,
    )
    torch.manual_seed(seed + 2)
    return with_chat_text(pipe, WORDS, width=16)
