"""Tiny FLUX.2 dev and klein pipelines built from config, offline (no hub download)."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel

from builders import WORDS
from scenewright.backends.flux2 import Flux2Backend
from scenewright.bench.flux2_build import flux2_pipeline, flux2_vae

# Two tiny encoder layers stacked into the text stream (the real pipelines stack three of 30+).
TEXT_LAYERS = (1, 2)
TEXT_WIDTH = 16
# dev's real system message is a paragraph; a short one keeps the tiny text sequence short.
SYSTEM_MESSAGE = "draw the scene"


def tiny_flux2_pipeline(
    kind: str = "dev", seed: int = 0, double_blocks: int = 1, single_blocks: int = 2
) -> Any:
    """``kind``: "dev" (Mistral3, embedded guidance), "klein" (Qwen3, step-distilled: no guidance)
    or "klein-base" (Qwen3, CFG). A 2-level VAE: 32 px is 8x8 image tokens."""
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=double_blocks,
        num_single_layers=single_blocks,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_WIDTH * len(TEXT_LAYERS),
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=kind == "dev",
    ).eval()
    torch.manual_seed(seed + 1)
    vae = flux2_vae(
        {
            "sample_size": 32,
            "down_block_types": ("DownEncoderBlock2D",) * 2,
            "up_block_types": ("UpDecoderBlock2D",) * 2,
            "block_out_channels": (8, 8),
            "layers_per_block": 1,
            "latent_channels": 4,
            "norm_num_groups": 4,
            "use_quant_conv": False,
            "use_post_quant_conv": False,
        },
        bn_seed=seed + 2,
    )
    torch.manual_seed(seed + 3)
    return flux2_pipeline(
        transformer,
        vae,
        FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True),
        klein=kind != "dev",
        distilled=kind == "klein",
        words=WORDS,
        max_length=24,
        text_width=TEXT_WIDTH,
        text_layers=len(TEXT_LAYERS),
        system_message=SYSTEM_MESSAGE,
    )


def tiny_flux2_backend(kind: str = "dev", **kwargs: Any) -> Flux2Backend:
    name = "flux2-dev" if kind == "dev" else f"flux2-{kind}"
    return Flux2Backend(tiny_flux2_pipeline(kind, **kwargs), name=name, max_sequence_length=24,
                        text_layers=TEXT_LAYERS)  # fmt: skip
