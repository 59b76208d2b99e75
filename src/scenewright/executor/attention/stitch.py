"""Injection hooks for Stitch: paste image-token latents from one run into another at a step.

Stitch generates each object in its own masked pass for the first S steps, then pastes the tokens
each object occupies into the background latent. The paste is a :class:`SamplerHook` so that it
composes with any attention edits; the object latents come from a callable so they can be read
from a parallel run at the moment of pasting.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from scenewright.backends.base import Backend
from scenewright.executor.sampler import SamplerHook, StepContext

Source = torch.Tensor | Callable[[StepContext], torch.Tensor]


class LatentPaste(SamplerHook):
    """After step ``step``, image tokens where ``token_mask`` is True are replaced by ``source``'s.

    ``token_mask`` is (rows*cols,) or (B, rows*cols) over the token grid; ``source`` is latents in
    the backend's layout (or a callable returning them at that step).
    """

    def __init__(self, backend: Backend, step: int, token_mask: torch.Tensor, source: Source) -> None:
        self.backend = backend
        self.step = step
        self.token_mask = token_mask
        self.source = source

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step != self.step:
            return None
        source = self.source(ctx) if callable(self.source) else self.source
        tokens = self.backend.image_tokens(latents)
        pasted = self.backend.image_tokens(source.to(latents.device, latents.dtype))
        mask = self.token_mask.to(tokens.device)
        mask = mask[None, :, None] if mask.dim() == 1 else mask[:, :, None]
        return self.backend.from_image_tokens(torch.where(mask, pasted, tokens), ctx.height, ctx.width)


class LatentRecorder(SamplerHook):
    """Keeps the latents after ``step`` (the object passes of Stitch), for a later paste."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.latents: torch.Tensor | None = None

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step == self.step:
            self.latents = latents.clone()
        return None
