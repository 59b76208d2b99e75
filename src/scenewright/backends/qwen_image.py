"""Qwen-Image through diffusers' ``QwenImagePipeline``.

What differs from FLUX.1: the text is the last hidden state of Qwen2.5-VL over a chat template
whose system part (the pipeline's ``prompt_template_encode_start_idx`` tokens) is dropped; each
prompt keeps its own length, so a batch is padded and the padding masked out of attention. Every
block is dual-stream (``QwenDoubleStreamAttnProcessor2_0``) with a multimodal RoPE that places the
text after the image's largest position. Guidance is true CFG, rescaled to the conditional
velocity's norm; there is no pooled text vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from scenewright.backends.flux import flux_set_timesteps
from scenewright.backends.tokens import WordSpan, map_words_to_tokens

# QwenImagePipeline's own defaults: 50 steps, true_cfg_scale 4, 1024 px (its default sample size).
QWEN_IMAGE_DEFAULTS = SamplingDefaults(steps=50, guidance=4.0, height=1024, width=1024)


class QwenImageBackend(Backend):
    """Qwen-Image: dual-stream blocks over [text; image], Qwen2.5-VL text with a padding mask."""

    family = "qwen-image"
    token_order = TokenOrder.TEXT_FIRST
    guidance_mode = GuidanceMode.CFG

    def __init__(self, pipe: Any, name: str = "qwen-image", max_sequence_length: int = 512) -> None:
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
        self.defaults = QWEN_IMAGE_DEFAULTS

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            embeds, mask = self.pipe.encode_prompt(
                prompt=prompts, device=self.device, max_sequence_length=self.max_sequence_length
            )
        if mask is None:
            mask = torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
        words = [self.word_spans(p) for p in prompts]
        pooled = embeds.new_zeros(len(prompts), 0)  # Qwen-Image has no pooled text vector
        return PromptEncoding(prompts, embeds, pooled, words, mask=mask.to(torch.bool))

    def word_spans(self, prompt: str) -> list[WordSpan]:
        """Each word's positions in the text sequence: the templated prompt's tokens, less the
        dropped system part."""
        pipe = self.pipe
        template: str = pipe.prompt_template_encode
        drop = int(pipe.prompt_template_encode_start_idx)
        start = template.index("{}")
        encoded = pipe.tokenizer(
            template.format(prompt),
            max_length=pipe.tokenizer_max_length + drop,
            truncation=True,
            return_offsets_mapping=True,
        )
        offsets = [(s - start, e - start) for s, e in encoded["offset_mapping"]]
        spans = map_words_to_tokens(prompt, offsets, -drop)
        limit = self.max_sequence_length
        return [WordSpan(w.word, w.start, w.end, tuple(t for t in w.tokens if 0 <= t < limit)) for w in spans]

    def _latent_size(self, height: int, width: int) -> tuple[int, int]:
        rows, cols = self.token_grid(height, width)
        return rows * 2, cols * 2

    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        from diffusers.utils.torch_utils import randn_tensor

        channels = self.transformer.config.in_channels // 4
        h, w = self._latent_size(height, width)
        noise = randn_tensor(
            (batch_size, 1, channels, h, w), generator=generator, device=self.device, dtype=self.dtype
        )
        return self.pipe._pack_latents(noise, batch_size, channels, h, w)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return tokens

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.pipe._unpack_latents(latents, height, width, self.vae_scale_factor)[:, :, 0]

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, channels, h, w = spatial.shape
        return self.pipe._pack_latents(spatial, batch, channels, h, w)

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        config = self.pipe.vae.config
        shape = (1, config.z_dim, 1, 1, 1)
        mean = torch.tensor(config.latents_mean).view(shape).to(like.device, like.dtype)
        std = torch.tensor(config.latents_std).view(shape).to(like.device, like.dtype)
        return mean, std

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        unpacked = self.pipe._unpack_latents(latents, height, width, self.vae_scale_factor).to(vae.dtype)
        mean, std = self._latent_stats(unpacked)
        unpacked = unpacked / (1.0 / std) + mean  # the pipeline's arithmetic, for identical rounding
        with torch.no_grad():
            decoded = vae.decode(unpacked, return_dict=False)[0][:, :, 0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        pixels = (images * 2 - 1).to(self.device, vae.dtype)[:, :, None]
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.mode()
        mean, std = self._latent_stats(latents)
        latents = ((latents - mean) / std)[:, :, 0]
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
        batch = latents.shape[0]
        mask = encoding.mask
        if mask is not None and bool(mask.all()):
            mask = None  # as the pipeline passes it: no mask where every token counts
        return self.transformer(
            hidden_states=latents,
            timestep=timestep.expand(batch).to(latents.dtype) / 1000,
            encoder_hidden_states=encoding.embeds,
            encoder_hidden_states_mask=mask,
            img_shapes=[[(1, *self.token_grid(height, width))]] * batch,
            attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
            return_dict=False,
        )[0]

    def combine_guidance(self, uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
        combined = uncond + scale * (cond - uncond)
        return combined * (
            torch.norm(cond, dim=-1, keepdim=True) / torch.norm(combined, dim=-1, keepdim=True)
        )

    def blocks(self) -> list[BlockRef]:
        return [BlockRef("double", i, m) for i, m in enumerate(self.transformer.transformer_blocks)]
