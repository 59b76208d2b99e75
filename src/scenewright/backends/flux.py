"""FLUX.1 (dev, schnell, or any checkpoint folder) through diffusers' ``FluxPipeline``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_flux import _get_qkv_projections
from diffusers.utils.torch_utils import randn_tensor

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.tokens import WordSpan, map_words_to_tokens, split_words
from scenewright.backends.tuning import family_tuning


def flux_shift(scheduler: FlowMatchEulerDiscreteScheduler, image_seq_len: int) -> float:
    """The resolution-dependent shift ``mu`` FluxPipeline gives the scheduler (linear in tokens)."""
    config = scheduler.config
    base_len = config.get("base_image_seq_len", 256)
    max_len = config.get("max_image_seq_len", 4096)
    base_shift = config.get("base_shift", 0.5)
    max_shift = config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return float(image_seq_len * slope + base_shift - slope * base_len)


def flux_set_timesteps(
    scheduler: FlowMatchEulerDiscreteScheduler, steps: int, image_seq_len: int, device: torch.device
) -> torch.Tensor:
    """Timesteps exactly as FluxPipeline sets them: linear sigmas from 1 to 1/steps, shifted."""
    sigmas: list[float] | None = list(np.linspace(1.0, 1 / steps, steps))
    if scheduler.config.get("use_flow_sigmas", False):
        sigmas = None
    kwargs: dict[str, Any] = {}
    if scheduler.config.get("use_dynamic_shifting", False):
        kwargs["mu"] = flux_shift(scheduler, image_seq_len)
    if sigmas is None:
        scheduler.set_timesteps(steps, device=device, **kwargs)
    else:
        scheduler.set_timesteps(sigmas=sigmas, device=device, **kwargs)
    scheduler.set_begin_index(0)
    return scheduler.timesteps


def flux_image_ids(rows: int, cols: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """RoPE position ids of image tokens: (0, row, col), row-major."""
    ids = torch.zeros(rows, cols, 3)
    ids[..., 1] = torch.arange(rows)[:, None]
    ids[..., 2] = torch.arange(cols)[None, :]
    return ids.reshape(rows * cols, 3).to(device=device, dtype=dtype)


def flux_blocks(transformer: Any) -> list[BlockRef]:
    """Double-stream then single-stream blocks of a FluxTransformer2DModel."""
    double = [BlockRef("double", i, m) for i, m in enumerate(transformer.transformer_blocks)]
    single = [BlockRef("single", i, m) for i, m in enumerate(transformer.single_transformer_blocks)]
    return double + single


def flux_qkv(
    attn: Any,
    hidden_states: torch.Tensor,
    encoder_hidden_states: torch.Tensor | None,
    image_rotary_emb: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A Flux attention module's queries, keys and values as its processor forms them: projected,
    normalised, [text; image] on double-stream blocks, with the rotary embedding; (B, S, H, D).
    Shared by our attention processors and the embedded model's grounding loss."""
    query, key, value, enc_query, enc_key, enc_value = _get_qkv_projections(
        attn, hidden_states, encoder_hidden_states
    )
    query = attn.norm_q(query.unflatten(-1, (-1, attn.head_dim)))
    key = attn.norm_k(key.unflatten(-1, (-1, attn.head_dim)))
    value = value.unflatten(-1, (-1, attn.head_dim))
    if attn.added_kv_proj_dim is not None and encoder_hidden_states is not None:
        enc_query = attn.norm_added_q(enc_query.unflatten(-1, (-1, attn.head_dim)))
        enc_key = attn.norm_added_k(enc_key.unflatten(-1, (-1, attn.head_dim)))
        enc_value = enc_value.unflatten(-1, (-1, attn.head_dim))
        query = torch.cat([enc_query, query], dim=1)
        key = torch.cat([enc_key, key], dim=1)
        value = torch.cat([enc_value, value], dim=1)
    if image_rotary_emb is not None:
        query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
        key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
    return query, key, value


def flux_forward(
    transformer: Any,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    encoding: PromptEncoding,
    grid: tuple[int, int],
    guidance: float | None,
    attention_kwargs: Mapping[str, Any] | None,
) -> torch.Tensor:
    """One FluxTransformer2DModel pass with the arguments FluxPipeline gives it."""
    batch = latents.shape[0]
    device = latents.device
    guidance_tensor = None
    if guidance is not None:
        guidance_tensor = torch.full([batch], guidance, device=device, dtype=torch.float32)
    text_ids = torch.zeros(encoding.embeds.shape[1], 3, device=device, dtype=encoding.embeds.dtype)
    image_ids = flux_image_ids(*grid, device=device, dtype=latents.dtype)
    out = transformer(
        hidden_states=latents,
        timestep=timestep.expand(batch).to(latents.dtype) / 1000,
        guidance=guidance_tensor,
        pooled_projections=encoding.pooled,
        encoder_hidden_states=encoding.embeds,
        txt_ids=text_ids,
        img_ids=image_ids,
        joint_attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
        return_dict=False,
    )[0]
    return out


def word_spans(tokenizer: Any, prompt: str, max_length: int, token_offset: int = 0) -> list[WordSpan]:
    """Word-to-token map from a fast tokenizer's offsets (empty spans if it has none)."""
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(
            prompt,
            max_length=max_length,
            truncation=True,
            return_offsets_mapping=True,
            add_special_tokens=True,
        )
        return map_words_to_tokens(prompt, encoded["offset_mapping"], token_offset)
    return [WordSpan(w, s, e, ()) for w, s, e in split_words(prompt)]


class FluxBackend(Backend):
    """Any FLUX.1 checkpoint; dev's guidance embedding is used when the transformer has one."""

    family = "flux"
    token_order = TokenOrder.TEXT_FIRST
    # Regional's base pass reads the blended image in the single-stream blocks: the authors carry
    # a copy of the image tokens there instead, 1.37x the pipeline's work on FLUX.1-dev at 1024 px
    # against 1.23x shared, over regional's 1.25x budget (`bench models --scale narrow`,
    # docs/parity.md). `regional:mode=paper` runs the authors' stream. The preset "flux" lives
    # beside the embedded models' so that `scenewright strategies` reads it without torch.
    strategy_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType(family_tuning("flux"))

    def __init__(self, pipe: FluxPipeline, name: str = "flux", max_sequence_length: int = 512) -> None:
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
        embedded = bool(pipe.transformer.config.guidance_embeds)
        self.guidance_mode = GuidanceMode.EMBEDDED if embedded else GuidanceMode.NONE
        self.defaults = (
            SamplingDefaults(steps=28, guidance=3.5, height=1024, width=1024)
            if embedded
            else SamplingDefaults(steps=4, guidance=0.0, height=1024, width=1024)
        )

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            embeds, pooled, _ = self.pipe.encode_prompt(
                prompt=prompts,
                prompt_2=prompts,
                device=self.device,
                max_sequence_length=self.max_sequence_length,
            )
        words = [word_spans(self.pipe.tokenizer_2, p, self.max_sequence_length) for p in prompts]
        return PromptEncoding(prompts, embeds, pooled, words)

    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
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
        embedded = guidance if self.guidance_mode is GuidanceMode.EMBEDDED else None
        grid = self.token_grid(height, width)
        return flux_forward(self.transformer, latents, timestep, encoding, grid, embedded, attention_kwargs)

    def blocks(self) -> list[BlockRef]:
        return flux_blocks(self.transformer)
