"""Inpainting by keeping the outside of a mask on the original image's noise path.

After every step, latents outside the mask are set to ``(1 - sigma) x0 + sigma noise`` at the
step's new noise level, with the same noise the run started from: the inside is generated in the
context of an outside that converges exactly to the original, and the final latents equal the
original outside the mask. Decoding through a VAE can still move outside pixels slightly, so the
caller pastes the original pixels back outside (see :func:`composite`).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from scenewright.arrays import to_numpy_bool
from scenewright.backends.base import Backend
from scenewright.executor.sampler import SamplerHook, StepContext


class KeepOutsideMask(SamplerHook):
    """Pins the image tokens outside ``token_mask`` to the original's noisy path."""

    needs_model_batch = False  # acts between steps only

    def __init__(
        self, backend: Backend, clean: torch.Tensor, noise: torch.Tensor, token_mask: torch.Tensor
    ) -> None:
        self.backend = backend
        self.clean_tokens = backend.image_tokens(clean)
        self.noise_tokens = backend.image_tokens(noise)
        self.inside = token_mask.flatten().to(self.clean_tokens.device)[None, :, None]

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        sigma = ctx.next_sigma
        pinned = (1 - sigma) * self.clean_tokens + sigma * self.noise_tokens
        tokens = self.backend.image_tokens(latents)
        mixed = torch.where(self.inside, tokens, pinned.to(tokens.dtype))
        return self.backend.from_image_tokens(mixed, ctx.height, ctx.width)


def token_mask_to_pixels(token_mask: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A (rows, cols) token mask as a boolean (H, W) pixel mask (nearest)."""
    width, height = size
    image = Image.fromarray(to_numpy_bool(token_mask).astype(np.uint8) * 255)
    return np.asarray(image.resize((width, height), Image.Resampling.NEAREST)) > 127


def composite(original: Image.Image, generated: Image.Image, pixel_mask: np.ndarray) -> Image.Image:
    """``generated`` inside the mask, ``original`` (bit for bit) everywhere else."""
    out = np.where(
        pixel_mask[..., None], np.asarray(generated.convert("RGB")), np.asarray(original.convert("RGB"))
    )
    return Image.fromarray(out.astype(np.uint8))
