"""The one interface the executor uses for every MMDiT family.

A backend hides each family's quirks: how prompts are encoded and where each word's tokens sit
in the joint text sequence, the latent layout and token grid for a size, the timestep schedule,
how guidance is applied, and which side of the joint sequence the text is on.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from PIL import Image

from scenewright.arrays import to_numpy
from scenewright.backends.specs import DEFAULT_MAX_SIZE, check_size
from scenewright.backends.tokens import WordSpan, phrase_tokens

# Guards the lazy creation of each backend's render lock (two threads asking first at once).
_LOCK_GUARD = threading.Lock()


class TokenOrder(StrEnum):
    """Where the text tokens sit in the joint attention sequence."""

    TEXT_FIRST = "text_first"  # FLUX: [text; image]
    IMAGE_FIRST = "image_first"  # SD3: [image; text]


class GuidanceMode(StrEnum):
    """How the guidance scale reaches the model."""

    NONE = "none"  # e.g. FLUX.1-schnell: the scale is ignored
    EMBEDDED = "embedded"  # FLUX.1-dev: a guidance embedding, one forward pass
    CFG = "cfg"  # classifier-free guidance: conditional and unconditional passes


@dataclass(frozen=True)
class SamplingDefaults:
    """What a family samples with when the user does not say."""

    steps: int
    guidance: float
    height: int
    width: int
    guidance_max_sigma: float = 1.0  # CFG at steps with noise level up to this (1.0: all)
    # What fills the space no object's box covers when the plan names no background.
    background_prompt: str = ""


@dataclass
class PromptEncoding:
    """Encoded prompts, batch-first, with each word's token positions in ``embeds``."""

    prompts: list[str]
    embeds: torch.Tensor  # (B, T, D): the text stream of the joint attention
    pooled: torch.Tensor  # (B, P): the pooled vector that modulates the blocks
    words: list[list[WordSpan]] = field(default_factory=list)
    # (B, T) bool: the text tokens that count, for families whose text is padded per prompt and
    # masked in attention (Qwen-Image, Chroma); None where every token counts (FLUX.1, SD3).
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def tokens_for(self, prompt_index: int, phrase: str) -> list[int]:
        """Positions in the text sequence of ``phrase`` within prompt ``prompt_index``."""
        return phrase_tokens(self.words[prompt_index], phrase)

    @classmethod
    def concat(cls, encodings: Sequence[PromptEncoding]) -> PromptEncoding:
        """Stack several encodings along the batch. Masked encodings of different lengths are
        padded to the longest, with the padding masked; unmasked ones must share a length."""
        length = max(e.embeds.shape[1] for e in encodings)
        masked = any(e.mask is not None for e in encodings)
        embeds = [_pad_tokens(e.embeds, length) if masked else e.embeds for e in encodings]
        masks = [_padded_mask(e, length) for e in encodings] if masked else None
        return cls(
            prompts=[p for e in encodings for p in e.prompts],
            embeds=torch.cat(embeds),
            pooled=torch.cat([e.pooled for e in encodings]),
            words=[w for e in encodings for w in e.words],
            mask=None if masks is None else torch.cat(masks),
        )

    def repeat(self, times: int) -> PromptEncoding:
        """The same prompts ``times`` over, for a batch of images per prompt."""
        return PromptEncoding.concat([self] * times)


def _pad_tokens(embeds: torch.Tensor, length: int) -> torch.Tensor:
    """(B, T, D) zero-padded to ``length`` tokens."""
    missing = length - embeds.shape[1]
    return (
        embeds
        if missing == 0
        else torch.cat([embeds, embeds.new_zeros(embeds.shape[0], missing, embeds.shape[2])], 1)
    )


def _padded_mask(encoding: PromptEncoding, length: int) -> torch.Tensor:
    """The encoding's token mask (all true when it has none), false on padding up to ``length``."""
    batch, tokens = encoding.embeds.shape[:2]
    mask = encoding.mask
    if mask is None:
        mask = torch.ones(batch, tokens, dtype=torch.bool, device=encoding.embeds.device)
    return torch.cat([mask, mask.new_zeros(batch, length - tokens)], 1) if length > tokens else mask


@dataclass(frozen=True)
class BlockRef:
    """One transformer block, named the way strategies choose blocks."""

    kind: str  # "double" or "single" (FLUX), "joint" (SD3)
    index: int
    module: torch.nn.Module


class Backend(ABC):
    """A loaded MMDiT family: the transformer plus everything around it."""

    name: str
    family: str
    token_order: TokenOrder
    guidance_mode: GuidanceMode
    size_multiple: int
    min_size: int
    max_size: int = DEFAULT_MAX_SIZE
    defaults: SamplingDefaults
    # Whether the model learned position words ("left of", "above") from its captions: FLUX and
    # SD3 did; the embedded model's captions never carry them (issue 7), so to it they are filler.
    knows_layout_words: bool = True
    # Strategy options tuned for this model (``{"regional": {"text_boost": 3.0}}``): they replace
    # the strategy's own defaults, and options the user names replace them in turn. The key
    # "maps" holds how the attention maps are read on this model (executor.explain.MapReading).
    strategy_defaults: Mapping[str, Mapping[str, Any]] = MappingProxyType({})
    # The strategies ranked per kind of plan by the toy-world benchmark on this model (written by
    # ``scenewright bench auto-table``); empty: ``auto`` uses the embedded default model's table.
    auto_table: Mapping[str, Any] = MappingProxyType({})
    transformer: Any  # a diffusers transformer model (FluxTransformer2DModel, SD3Transformer2DModel)
    scheduler: FlowMatchEulerDiscreteScheduler
    device: torch.device
    dtype: torch.dtype

    # ----------------------------------------------------------------- exclusive use
    def render_lock(self) -> threading.RLock:
        """The lock that makes renders on this model take turns.

        Attention processors and per-block hooks are installed on the shared transformer for the
        length of a render, so two renders at once would run each other's edits. Every place that
        installs them (the sampler, the attention engine, the agent's execute node) holds this
        lock; it is re-entrant, so a strategy that samples inside its engine nests freely.
        """
        with _LOCK_GUARD:
            lock = self.__dict__.get("_render_lock")
            if lock is None:
                lock = self.__dict__["_render_lock"] = threading.RLock()
            return lock

    # ----------------------------------------------------------------- sizes
    def check_size(self, height: int, width: int) -> None:
        """Raise a clear error for a size the model cannot take."""
        check_size(self.name, self.size_multiple, self.min_size, height, width, self.max_size)

    @abstractmethod
    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of image tokens for an image of this size."""

    # ----------------------------------------------------------------- text
    @abstractmethod
    def encode_prompts(self, prompts: Sequence[str]) -> PromptEncoding:
        """Encode prompts for the joint attention, with the word-to-token map."""

    # ----------------------------------------------------------------- latents
    @abstractmethod
    def prepare_noise(
        self, batch_size: int, height: int, width: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Initial noise in the layout :meth:`forward` takes, drawn from ``generator``."""

    @abstractmethod
    def image_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """View latents as (B, N, C) image tokens in the transformer's row-major token order."""

    @abstractmethod
    def from_image_tokens(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Inverse of :meth:`image_tokens`."""

    def spatial_latents(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Latents as a (B, C, H', W') map at the finest resolution the layout allows (pixels for
        the embedded model, VAE latent cells for FLUX and SD3), for edits finer than a token.

        The default is the token grid itself; backends whose tokens are patches override it.
        """
        tokens = self.image_tokens(latents)
        rows, cols = self.token_grid(height, width)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], rows, cols)

    def from_spatial_latents(self, spatial: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Inverse of :meth:`spatial_latents`."""
        return self.from_image_tokens(spatial.flatten(2).transpose(1, 2), height, width)

    @abstractmethod
    def decode(self, latents: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Latents to images, float (B, 3, H, W) in [0, 1]."""

    @abstractmethod
    def encode_image(self, images: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Images, float (B, 3, H, W) in [0, 1], to clean latents (for inpainting)."""

    # ----------------------------------------------------------------- denoising
    def new_scheduler(self) -> FlowMatchEulerDiscreteScheduler:
        """A fresh scheduler: it is stateful, so every sampling run gets its own."""
        return FlowMatchEulerDiscreteScheduler.from_config(self.scheduler.config)

    @abstractmethod
    def set_timesteps(
        self, scheduler: FlowMatchEulerDiscreteScheduler, steps: int, height: int, width: int
    ) -> torch.Tensor:
        """Configure ``scheduler`` the way the family's diffusers pipeline does; return timesteps."""

    @abstractmethod
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
        """One transformer pass: the velocity for ``latents`` at ``timestep`` (scheduler units)."""

    @abstractmethod
    def blocks(self) -> list[BlockRef]:
        """The transformer's blocks in execution order."""

    def combine_guidance(self, uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance of two velocities, as the family's pipeline combines them
        (Qwen-Image rescales the result to the conditional velocity's norm)."""
        return uncond + scale * (cond - uncond)

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def to_pil(images: torch.Tensor) -> list[Image.Image]:
        """Float (B, 3, H, W) in [0, 1] to 8-bit PIL images."""
        array = (to_numpy(images.clamp(0, 1).permute(0, 2, 3, 1)) * 255).round()
        return [Image.fromarray(a.astype(np.uint8)) for a in array]

    def describe(self) -> dict[str, Any]:
        """What goes into output metadata to reproduce an image."""
        described: dict[str, Any] = {
            "name": self.name,
            "family": self.family,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
        }
        loras = self.__dict__.get("_loras")
        if loras:  # every adapter loaded (scenewright.backends.lora): source, content hash, scale
            described["loras"] = [lora.describe() for lora in loras.values()]
        return described
