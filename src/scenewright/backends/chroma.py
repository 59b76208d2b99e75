"""Chroma (a FLUX.1-schnell derivative) through diffusers' ``ChromaPipeline``.

What differs from FLUX.1: one text encoder (T5, no pooled CLIP vector: the blocks are modulated
from the timestep alone), true classifier-free guidance, and T5 padding that is masked in
attention. The pipeline keeps every real token and the first padding token, and passes the
mask as 0/1 floats that the attention adds to the logits: a pair of counted tokens gets +1, so a
counted query weighs every other padding key by exp(-1) instead of ignoring it. The engine's
passes keep exactly that (``ChromaEngineProcessor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.flux import flux_blocks, flux_image_ids, flux_set_timesteps, word_spans
from scenewright.backends.tuning import family_tuning

# ChromaPipeline's own defaults (35 steps, guidance 5, 1024 px, 512 T5 tokens).
CHROMA_DEFAULTS = SamplingDefaults(steps=35, guidance=5.0, height=1024, width=1024)


class ChromaBackend(Backend):
    """Chroma: FLUX.1 double and single blocks over [text; image], T5 text with its padding mask."""

    family = "chroma"
    token_order = TokenOrder.TEXT_FIRST
    guidance_mode = GuidanceMode.CFG
    # FLUX.1's blocks: the authors' separately carried base image costs here what it costs on
    # FLUX.1, over regional's 1.25x budget, so regional shares the stream (preset "chroma").
    strategy_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType(family_tuning("chroma"))

    def __init__(self, pipe: Any, name: str = "chroma", max_sequence_length: int = 512) -> None:
        self.pipe = pipe
        self.name = name
        self.transformer = pipe.transformer
        self.scheduler = pipe.scheduler
        self.max_sequence_length = max_sequence_length
        self.vae_scale_factor = pipe.vae_scale_factor
        self.size_multiple = pipe.vae_scale_factor * 2
        self.min_size = self.size_multiple
        self.device = pipe._execution_device
        self.dtype = pipe.transformer.dtype
        self.defaults = CHROMA_DEFAULTS

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            embeds, mask = self.pipe._get_t5_prompt_embeds(
                prompt=prompts, max_sequence_length=self.max_sequence_length, device=self.device
            )
        words = [word_spans(self.pipe.tokenizer, p, self.max_sequence_length) for p in prompts]
        pooled = embeds.new_zeros(len(prompts), 0)  # Chroma has no pooled text vector
        return PromptEncoding(prompts, embeds, pooled, words, mask=mask.to(torch.bool))

    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        channels = self.transformer.config.in_channels // 4
        rows, cols = self.token_grid(height, width)
        shape = (batch_size, channels, rows * 2, cols * 2)
        noise = randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)
        return self.pipe._pack_latents(noise, batch_size, channels, rows * 2, cols * 2)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return tokens

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.pipe._unpack_latents(latents, height, width, self.vae_scale_factor)

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, channels, h, w = spatial.shape
        return self.pipe._pack_latents(spatial, batch, channels, h, w)

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        unpacked = self.pipe._unpack_latents(latents, height, width, self.vae_scale_factor)
        unpacked = unpacked / vae.config.scaling_factor + vae.config.shift_factor
        with torch.no_grad():
            decoded = vae.decode(unpacked.to(vae.dtype), return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        with torch.no_grad():
            dist = vae.encode((images * 2 - 1).to(self.device, vae.dtype)).latent_dist
        latents = (dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor
        batch, channels, h, w = latents.shape
        return self.pipe._pack_latents(latents.to(self.dtype), batch, channels, h, w)

    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        return flux_set_timesteps(scheduler, steps, rows * cols, self.device)

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        encoding: PromptEncoding,
        *,
        height: int,
        width: int,
        guidance: float | None = None,
        attention_kwargs: Mapping[str, Any] | None = None,
    ) -> torch.Tensor:
        batch, device = latents.shape[0], latents.device
        embeds = encoding.embeds
        mask = None
        if encoding.mask is not None:  # the pipeline's mask: text then image, 0/1 in the text dtype
            image = torch.ones(batch, latents.shape[1], device=device, dtype=embeds.dtype)
            mask = torch.cat([encoding.mask.to(device, embeds.dtype), image], dim=1)
        text_ids = torch.zeros(embeds.shape[1], 3, device=device, dtype=embeds.dtype)
        image_ids = flux_image_ids(*self.token_grid(height, width), device=device, dtype=latents.dtype)
        return self.transformer(
            hidden_states=latents,
            timestep=timestep.expand(batch).to(latents.dtype) / 1000,
            encoder_hidden_states=embeds,
            txt_ids=text_ids,
            img_ids=image_ids,
            attention_mask=mask,
            joint_attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
            return_dict=False,
        )[0]

    def blocks(self) -> list[BlockRef]:
        return flux_blocks(self.transformer)
