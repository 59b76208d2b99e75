"""FLUX.2 (dev and klein) through diffusers' ``Flux2Pipeline`` and ``Flux2KleinPipeline``.

What differs from FLUX.1, and why this is a backend of its own: the text is one causal language
model's hidden states (Mistral Small 3.1 for dev, Qwen3 for klein), three of its layers stacked,
read from a chat-templated prompt, so a word's tokens sit after the template's own tokens; there is
no pooled vector (the blocks are modulated by time and guidance only); position ids have four
axes (time, row, column, text index); the VAE's 2x2 patches are normalised by its batch-norm
statistics; and the schedule's shift ``mu`` depends on the step count as well as the token count.
Guidance: dev embeds it (one pass); klein's step-distilled checkpoints ignore it; klein base
checkpoints guide with CFG against the empty prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.flux import flux_blocks
from scenewright.backends.tokens import WordSpan, map_words_to_tokens, split_words
from scenewright.backends.tuning import family_tuning

# The hidden layers each pipeline stacks into the text stream (its encode_prompt's defaults).
DEV_TEXT_LAYERS = (10, 20, 30)
KLEIN_TEXT_LAYERS = (9, 18, 27)


def flux2_mu(image_seq_len: int, num_steps: int) -> float:
    """The shift FLUX.2's pipelines give the scheduler: BFL's empirical fit, linear in the token
    count and, below 4300 tokens, interpolated in the step count between fits at 10 and 200 steps."""
    a1, b1 = 8.73809524e-05, 1.89833333
    a2, b2 = 0.00016927, 0.45666666
    at_200 = a2 * image_seq_len + b2
    if image_seq_len > 4300:
        return float(at_200)
    at_10 = a1 * image_seq_len + b1
    slope = (at_200 - at_10) / 190.0
    return float(slope * num_steps + at_200 - 200.0 * slope)


def flux2_image_ids(rows: int, cols: int, device: torch.device) -> torch.Tensor:
    """Four-axis position ids of image tokens, row-major: (time 0, row, column, 0)."""
    ids = torch.zeros(rows, cols, 4, dtype=torch.long)
    ids[..., 1] = torch.arange(rows)[:, None]
    ids[..., 2] = torch.arange(cols)[None, :]
    return ids.reshape(rows * cols, 4).to(device)


def flux2_text_ids(length: int, device: torch.device) -> torch.Tensor:
    """Four-axis position ids of text tokens: (0, 0, 0, index)."""
    ids = torch.zeros(length, 4, dtype=torch.long)
    ids[:, 3] = torch.arange(length)
    return ids.to(device)


def _patchify(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, 2h, 2w) VAE latents -> (B, 4C, h, w) patches, channel-major as the pipeline packs."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def _unpatchify(patches: torch.Tensor) -> torch.Tensor:
    b, c4, h, w = patches.shape
    x = patches.reshape(b, c4 // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c4 // 4, h * 2, w * 2)


def _is_klein(pipe: Any) -> bool:
    return type(pipe).__name__.startswith("Flux2Klein")


class Flux2Backend(Backend):
    """Any FLUX.2 checkpoint: dev (embedded guidance) or klein (distilled: none; base: CFG)."""

    family = "flux2"
    token_order = TokenOrder.TEXT_FIRST
    # The single-stream blocks see [text; image] as one tensor (no separate text argument), so
    # the authors' carried base image stream has nowhere to ride: regional shares the stream.
    strategy_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType(family_tuning("flux2"))

    def __init__(
        self,
        pipe: Any,
        name: str = "flux2-dev",
        max_sequence_length: int = 512,
        text_layers: Sequence[int] | None = None,
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.klein = _is_klein(pipe)
        self.transformer = pipe.transformer
        self.scheduler = pipe.scheduler
        self.max_sequence_length = max_sequence_length
        default_layers = KLEIN_TEXT_LAYERS if self.klein else DEV_TEXT_LAYERS
        self.text_layers = tuple(text_layers) if text_layers is not None else default_layers
        self.vae_scale_factor = pipe.vae_scale_factor
        self.size_multiple = pipe.vae_scale_factor * 2
        self.min_size = self.size_multiple
        self.device = pipe._execution_device
        self.dtype = pipe.transformer.dtype
        if pipe.transformer.config.guidance_embeds:
            self.guidance_mode = GuidanceMode.EMBEDDED
            self.defaults = SamplingDefaults(steps=50, guidance=4.0, height=1024, width=1024)
        elif self.klein and pipe.config.get("is_distilled", False):
            self.guidance_mode = GuidanceMode.NONE
            self.defaults = SamplingDefaults(steps=4, guidance=1.0, height=1024, width=1024)
        else:
            self.guidance_mode = GuidanceMode.CFG
            self.defaults = SamplingDefaults(steps=50, guidance=4.0, height=1024, width=1024)

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    # ----------------------------------------------------------------- text
    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            embeds, _ = self.pipe.encode_prompt(
                prompt=prompts,
                device=self.device,
                max_sequence_length=self.max_sequence_length,
                text_encoder_out_layers=self.text_layers,
            )
        embeds = embeds.to(self.dtype)
        # FLUX.2 has no pooled vector: an empty one keeps PromptEncoding's batch arithmetic.
        pooled = embeds.new_zeros(embeds.shape[0], 0)
        return PromptEncoding(prompts, embeds, pooled, [self._word_spans(p) for p in prompts])

    def _templated(self, prompt: str) -> tuple[str, str, bool]:
        """The text the pipeline tokenizes for ``prompt``, the prompt as it appears in it, and
        whether the tokenizer adds its special tokens (klein tokenizes the rendered template
        itself; dev's processor does not add them)."""
        tokenizer = self.pipe.tokenizer
        if self.klein:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=False,
            )
            return text, prompt, True
        from diffusers.pipelines.flux2.pipeline_flux2 import format_input

        cleaned = prompt.replace("[IMG]", "")
        messages = format_input([cleaned], system_message=self.pipe.system_message)[0]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
        return text, cleaned, False

    def _word_spans(self, prompt: str) -> list[WordSpan]:
        """Each word's token positions in the templated sequence (after the template's tokens)."""
        text, shown, special = self._templated(prompt)
        tokenizer = getattr(self.pipe.tokenizer, "tokenizer", self.pipe.tokenizer)
        start = text.rfind(shown) if shown else -1
        if start < 0 or not getattr(tokenizer, "is_fast", False):
            return [WordSpan(w, s, e, ()) for w, s, e in split_words(prompt)]
        encoded = tokenizer(
            text,
            max_length=self.max_sequence_length,
            truncation=True,
            return_offsets_mapping=True,
            add_special_tokens=special,
        )
        end = start + len(shown)
        offsets = [
            (s - start, e - start) if s >= start and e <= end and e > s else (0, 0)
            for s, e in encoded["offset_mapping"]
        ]
        return map_words_to_tokens(shown, offsets)

    # ----------------------------------------------------------------- latents
    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        channels = self.transformer.config.in_channels
        rows, cols = self.token_grid(height, width)
        noise = randn_tensor((batch_size, channels, rows, cols), generator=generator, device=self.device,
                             dtype=self.dtype)  # fmt: skip
        return noise.flatten(2).transpose(1, 2)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return tokens

    def _patches(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        return latents.transpose(1, 2).reshape(latents.shape[0], latents.shape[2], rows, cols)

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return _unpatchify(self._patches(latents, height, width))

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return _patchify(spatial).flatten(2).transpose(1, 2)

    def _bn_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's batch-norm mean and std per patch channel, which normalise the latents."""
        vae = self.pipe.vae
        mean = vae.bn.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
        std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
        return mean, std.to(like.device, like.dtype)

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        patches = self._patches(latents, height, width)
        mean, std = self._bn_stats(patches)
        spatial = _unpatchify(patches * std + mean)
        with torch.no_grad():
            decoded = vae.decode(spatial.to(vae.device, vae.dtype), return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        with torch.no_grad():
            dist = vae.encode((images * 2 - 1).to(vae.device, vae.dtype)).latent_dist
        patches = _patchify(dist.mode())
        mean, std = self._bn_stats(patches)
        patches = (patches - mean) / std
        return patches.flatten(2).transpose(1, 2).to(self.device, self.dtype)

    # ----------------------------------------------------------------- denoising
    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        sigmas: list[float] | None = list(np.linspace(1.0, 1 / steps, steps))
        if scheduler.config.get("use_flow_sigmas", False):
            sigmas = None
        mu = flux2_mu(rows * cols, steps)
        if sigmas is None:
            scheduler.set_timesteps(steps, device=self.device, mu=mu)
        else:
            scheduler.set_timesteps(sigmas=sigmas, device=self.device, mu=mu)
        scheduler.set_begin_index(0)
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
        batch = latents.shape[0]
        device = latents.device
        guidance_tensor = None
        if self.guidance_mode is GuidanceMode.EMBEDDED and guidance is not None:
            guidance_tensor = torch.full([batch], guidance, device=device, dtype=torch.float32)
        rows, cols = self.token_grid(height, width)
        return self.transformer(
            hidden_states=latents,
            timestep=timestep.expand(batch).to(latents.dtype) / 1000,
            guidance=guidance_tensor,
            encoder_hidden_states=encoding.embeds,
            txt_ids=flux2_text_ids(encoding.embeds.shape[1], device),
            img_ids=flux2_image_ids(rows, cols, device),
            joint_attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
            return_dict=False,
        )[0]

    def blocks(self) -> list[BlockRef]:
        return flux_blocks(self.transformer)


def load_flux2(
    spec: Any, device: torch.device, offload: str | None, kwargs: Mapping[str, Any]
) -> Flux2Backend:
    """The checkpoint's own pipeline class (from its ``model_index.json``), placed and wrapped."""
    from diffusers import DiffusionPipeline

    from scenewright.backends.offload import place_pipeline

    pipe = DiffusionPipeline.from_pretrained(spec.source, **kwargs)
    place_pipeline(pipe, device, offload)
    return Flux2Backend(pipe, name=spec.name)
