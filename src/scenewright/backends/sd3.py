"""Stable Diffusion 3 / 3.5 through diffusers' ``StableDiffusion3Pipeline``, with CFG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline
from diffusers.utils.torch_utils import randn_tensor

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.flux import flux_shift, word_spans
from scenewright.backends.tokens import merge_word_spans


class SD3Backend(Backend):
    """SD3/SD3.5: joint blocks over [image; text]; text = [CLIP-L|CLIP-G (77); T5] tokens."""

    family = "sd3"
    token_order = TokenOrder.IMAGE_FIRST
    guidance_mode = GuidanceMode.CFG

    def __init__(
        self, pipe: StableDiffusion3Pipeline, name: str = "sd3", max_sequence_length: int = 256
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.transformer = pipe.transformer
        self.scheduler = pipe.scheduler
        self.max_sequence_length = max_sequence_length
        self.vae_scale_factor = pipe.vae_scale_factor
        self.patch_size = pipe.transformer.config.patch_size
        self.size_multiple = self.vae_scale_factor * self.patch_size
        self.min_size = self.size_multiple
        self.device = pipe._execution_device
        self.dtype = pipe.transformer.dtype
        self.defaults = SamplingDefaults(steps=28, guidance=7.0, height=1024, width=1024)

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            embeds, _, pooled, _ = self.pipe.encode_prompt(
                prompt=prompts,
                prompt_2=None,
                prompt_3=None,
                device=self.device,
                do_classifier_free_guidance=False,
                max_sequence_length=self.max_sequence_length,
            )
        clip_len = self.pipe.tokenizer_max_length
        words = []
        for prompt in prompts:
            clip_words = word_spans(self.pipe.tokenizer, prompt, clip_len)
            if self.pipe.tokenizer_3 is not None and self.pipe.text_encoder_3 is not None:
                t5_words = word_spans(self.pipe.tokenizer_3, prompt, self.max_sequence_length, clip_len)
                clip_words = merge_word_spans(clip_words, t5_words)
            words.append(clip_words)
        return PromptEncoding(prompts, embeds, pooled, words)

    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        channels = self.transformer.config.in_channels
        shape = (batch_size, channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        return randn_tensor(shape, generator=generator, device=self.device, dtype=self.dtype)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        batch, channels, h, w = latents.shape
        p = self.patch_size
        tokens = latents.reshape(batch, channels, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return tokens.reshape(batch, (h // p) * (w // p), channels * p * p)

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        p = self.patch_size
        batch = tokens.shape[0]
        channels = tokens.shape[-1] // (p * p)
        latents = tokens.reshape(batch, rows, cols, channels, p, p).permute(0, 3, 1, 4, 2, 5)
        return latents.reshape(batch, channels, rows * p, cols * p)

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return latents  # SD3's latents are already the VAE's (B, C, H/8, W/8) map

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return spatial

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        scaled = latents / vae.config.scaling_factor + vae.config.shift_factor
        with torch.no_grad():
            decoded = vae.decode(scaled.to(vae.dtype), return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        with torch.no_grad():
            dist = vae.encode((images * 2 - 1).to(self.device, vae.dtype)).latent_dist
        return ((dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor).to(self.dtype)

    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if scheduler.config.get("use_dynamic_shifting", False):
            rows, cols = self.token_grid(height, width)
            kwargs["mu"] = flux_shift(scheduler, rows * cols)
        scheduler.set_timesteps(steps, device=self.device, **kwargs)
        return scheduler.timesteps

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
        return self.transformer(
            hidden_states=latents,
            timestep=timestep.expand(latents.shape[0]),
            encoder_hidden_states=encoding.embeds,
            pooled_projections=encoding.pooled,
            joint_attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
            return_dict=False,
        )[0]

    def blocks(self) -> list[BlockRef]:
        return [BlockRef("joint", i, m) for i, m in enumerate(self.transformer.transformer_blocks)]
