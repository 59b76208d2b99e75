"""Z-Image (Turbo, or any ``ZImagePipeline`` checkpoint) through diffusers' ``ZImagePipeline``.

Z-Image is a single-stream DiT: after one refiner stack per modality (``noise_refiner`` on the
image, ``context_refiner`` on the caption), image and caption tokens go through the same blocks as
one sequence, ordered [image; caption]. The transformer pads each part to a multiple of 32 tokens
(``SEQ_MULTI_OF``) with a learned pad token per modality, and pads the batch to its longest row
with a key mask.

Our encoding keeps one caption length for the whole batch, so that the attention engine sees one
text length: every prompt's Qwen3 states are followed by zero rows up to the batch's longest
prompt rounded up to 32, and :func:`z_image_forward` gives those rows the model's learned caption
pad token, which is what the pipeline gives a prompt's own padding. For one prompt, or prompts
whose lengths round up to the same multiple of 32, this is the pipeline's input exactly; a CFG
batch whose negative prompt rounds to fewer tokens than the prompt sees more pad tokens than the
pipeline (which masks them out instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline
from diffusers.models.transformers.transformer_z_image import SEQ_MULTI_OF
from diffusers.pipelines.z_image.pipeline_z_image import calculate_shift
from diffusers.utils.torch_utils import randn_tensor

from scenewright.backends.base import (
    Backend,
    BlockRef,
    GuidanceMode,
    PromptEncoding,
    SamplingDefaults,
    TokenOrder,
)
from scenewright.backends.offload import place_pipeline
from scenewright.backends.specs import BackendSpec
from scenewright.backends.tokens import WordSpan, map_words_to_tokens, split_words
from scenewright.backends.tuning import family_tuning
from scenewright.backends.z_image_rules import is_distilled

# Z-Image-Turbo's published sampling: 9 steps without guidance (the model card's "9 steps, 8 DiT
# forwards"; the diffusers example takes 8).
TURBO_DEFAULTS = SamplingDefaults(steps=9, guidance=0.0, height=1024, width=1024)
# The CFG (non-distilled) checkpoints: the pipeline's own defaults, 50 steps at scale 5 in its
# convention (pos + 5 (pos - neg)), which is 6 in the usual one that our sampler applies.
CFG_DEFAULTS = SamplingDefaults(steps=50, guidance=6.0, height=1024, width=1024)


def padded_length(length: int) -> int:
    """``length`` rounded up to the transformer's sequence multiple (32)."""
    return length + (-length) % SEQ_MULTI_OF


def image_pad(rows: int, cols: int) -> int:
    """Learned pad tokens the transformer puts after ``rows * cols`` image tokens."""
    return (-(rows * cols)) % SEQ_MULTI_OF


def z_image_blocks(transformer: Any) -> list[BlockRef]:
    """The single-stream blocks over [image; caption]; the per-modality refiners are not listed
    (no text-image attention runs there)."""
    return [BlockRef("joint", i, m) for i, m in enumerate(transformer.layers)]


@contextmanager
def caption_pad_rows(transformer: Any) -> Iterator[None]:
    """While open, caption rows that are all zero leave ``cap_embedder`` as the model's learned
    caption pad token (the pipeline's padding), wherever they sit in the caption."""

    def hook(_module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        pad = (args[0] == 0).all(dim=-1, keepdim=True)
        return torch.where(pad, transformer.cap_pad_token.to(output.dtype), output)

    handle = transformer.cap_embedder.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def z_image_forward(
    transformer: Any,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    encoding: PromptEncoding,
    attention_kwargs: Mapping[str, Any] | None,
) -> torch.Tensor:
    """One ZImageTransformer2DModel pass as ZImagePipeline makes it, returned as the flow
    velocity our sampler steps with (the pipeline negates the model's output)."""
    batch = latents.shape[0]
    dtype = transformer.dtype
    positions = int(transformer.config.axes_lens[0])
    if encoding.embeds.shape[1] + 1 >= positions:
        # Caption tokens take RoPE positions 1..T and the image T + 1 on the model's first axis.
        raise ValueError(
            f"a caption of {encoding.embeds.shape[1]} tokens is past Z-Image's {positions - 2}-token "
            "position table; use fewer or shorter prompts"
        )
    model_t = (1000 - timestep.expand(batch).to(torch.float32)) / 1000
    images = list(latents.to(dtype).unsqueeze(2).unbind(dim=0))
    captions = list(encoding.embeds.to(dtype).unbind(dim=0))
    with caption_pad_rows(transformer):
        out = transformer(
            images,
            model_t,
            captions,
            joint_attention_kwargs=dict(attention_kwargs) if attention_kwargs else None,
            return_dict=False,
        )[0]
    return -torch.stack([o.float() for o in out]).squeeze(2)


def chat_word_spans(tokenizer: Any, prompt: str, templated: str, max_length: int) -> list[WordSpan]:
    """Word-to-token map of ``prompt`` inside its chat-templated text (fast tokenizers' offsets)."""
    if not getattr(tokenizer, "is_fast", False):
        return [WordSpan(w, s, e, ()) for w, s, e in split_words(prompt)]
    at = templated.rfind(prompt)
    encoded = tokenizer(templated, max_length=max_length, truncation=True, return_offsets_mapping=True)
    # Template tokens fall outside [0, len(prompt)) once shifted, so they belong to no word.
    offsets = [(s - at, e - at) if e > s else (s, s) for s, e in encoded["offset_mapping"]]
    return map_words_to_tokens(prompt, offsets)


class ZImageBackend(Backend):
    """Z-Image: single-stream blocks over [image; caption], Qwen3 captions, no pooled vector."""

    family = "z-image"
    token_order = TokenOrder.IMAGE_FIRST
    # Every block is single-stream, so a separately carried base image stream (FLUX's
    # base_stream=separate) would double every block's image tokens for the regional steps.
    strategy_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType(family_tuning("z-image"))

    def __init__(
        self,
        pipe: ZImagePipeline,
        name: str = "z-image",
        max_sequence_length: int = 512,
        distilled: bool = True,
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.transformer = pipe.transformer
        self.scheduler = pipe.scheduler
        self.max_sequence_length = max_sequence_length
        self.vae_scale_factor = pipe.vae_scale_factor
        self.patch_size = 2
        self.size_multiple = self.vae_scale_factor * self.patch_size
        self.min_size = self.size_multiple
        self.device = pipe._execution_device
        self.dtype = pipe.transformer.dtype
        self.distilled = distilled
        self.guidance_mode = GuidanceMode.NONE if distilled else GuidanceMode.CFG
        self.defaults = TURBO_DEFAULTS if distilled else CFG_DEFAULTS

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        return height // self.size_multiple, width // self.size_multiple

    # ----------------------------------------------------------------- text
    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        prompts = list(prompts)
        with torch.no_grad():
            states, _ = self.pipe.encode_prompt(
                prompt=list(prompts),  # the pipeline rewrites the list it is given
                device=self.device,
                do_classifier_free_guidance=False,
                max_sequence_length=self.max_sequence_length,
            )
        length = padded_length(max(s.shape[0] for s in states))
        width = states[0].shape[-1]
        embeds = torch.zeros(len(states), length, width, device=self.device, dtype=states[0].dtype)
        for row, state in enumerate(states):
            embeds[row, : state.shape[0]] = state
        tokenizer = self.pipe.tokenizer
        words = []
        for prompt in prompts:
            templated = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=True,
            )
            words.append(chat_word_spans(tokenizer, prompt, templated, self.max_sequence_length))
        # Z-Image has no pooled vector: an empty one keeps PromptEncoding's batch shape.
        pooled = torch.zeros(len(states), 0, device=self.device, dtype=embeds.dtype)
        return PromptEncoding(prompts, embeds, pooled, words)

    # ----------------------------------------------------------------- latents
    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        # The pipeline keeps its latents in float32 whatever the model's dtype.
        channels = self.transformer.in_channels
        shape = (batch_size, channels, height // self.vae_scale_factor, width // self.vae_scale_factor)
        return randn_tensor(shape, generator=generator, device=self.device, dtype=torch.float32)

    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) latents as (B, N, p*p*C) tokens, patch-major like the transformer's."""
        batch, channels, h, w = latents.shape
        p = self.patch_size
        tokens = latents.reshape(batch, channels, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
        return tokens.reshape(batch, (h // p) * (w // p), p * p * channels)

    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        rows, cols = self.token_grid(height, width)
        p = self.patch_size
        batch = tokens.shape[0]
        channels = tokens.shape[-1] // (p * p)
        latents = tokens.reshape(batch, rows, cols, p, p, channels).permute(0, 5, 1, 3, 2, 4)
        return latents.reshape(batch, channels, rows * p, cols * p)

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return latents  # already the VAE's (B, C, H/8, W/8) map

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return spatial

    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        scaled = latents.to(vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
        with torch.no_grad():
            decoded = vae.decode(scaled, return_dict=False)[0]
        return (decoded.float() / 2 + 0.5).clamp(0, 1)

    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        vae = self.pipe.vae
        with torch.no_grad():
            dist = vae.encode((images * 2 - 1).to(self.device, vae.dtype)).latent_dist
        return ((dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor).float()

    # ----------------------------------------------------------------- denoising
    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        """As ZImagePipeline: linear sigmas from 1 to 1/steps, with the resolution shift ``mu``."""
        rows, cols = self.token_grid(height, width)
        config = scheduler.config
        mu = calculate_shift(
            rows * cols,
            config.get("base_image_seq_len", 256),
            config.get("max_image_seq_len", 4096),
            config.get("base_shift", 0.5),
            config.get("max_shift", 1.15),
        )
        sigmas = torch.linspace(1.0, 1 / steps, steps).tolist()
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
        return z_image_forward(self.transformer, latents, timestep, encoding, attention_kwargs)

    def blocks(self) -> list[BlockRef]:
        return z_image_blocks(self.transformer)


def load_z_image(
    spec: BackendSpec, kwargs: dict[str, Any], device: torch.device, offload: str | None
) -> ZImageBackend:
    """``ZImagePipeline.from_pretrained`` placed on ``device``; guidance-distilled unless the
    checkpoint says otherwise (:func:`~scenewright.backends.z_image_rules.is_distilled`)."""
    pipe = ZImagePipeline.from_pretrained(spec.source, **kwargs)
    place_pipeline(pipe, device, offload)
    return ZImageBackend(pipe, name=spec.name, distilled=is_distilled(spec))
