"""Moving a partly drawn object into a box at the latent's own resolution, shrunk to fit.

Stitch's free pass (:mod:`scenewright.executor.stitch.free_pass`) draws each object alone on the
whole canvas. Moving its tokens by whole tokens keeps the size the model chose, which is the size
of a lone object: copies of it in the small neighbouring boxes of "five blue squares" touch and
merge. Here the move happens on the clean-image estimate instead, in the finest spatial layout
the backend has (pixels on the embedded model, VAE cells on FLUX and SD3): the object is cut out
by where it departs from the background, scaled down to fit its box, placed with its centre on
the box's centre, and noised back to the current noise level with the background's own noise,
so every latent value outside the pasted objects stays the background's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from scenewright.arrays import to_numpy
from scenewright.executor.catalogue import defaults
from scenewright.executor.sampler import SamplerHook, StepContext
from scenewright.planner.plan import Box

# Every option's default, declared once in the catalogue.
DEFAULTS = defaults("stitch")

# An object's opacity ramps from 0 to 1 between these shares of its strongest departure from the
# background: below ALPHA_LOW is the background's own texture, above ALPHA_HIGH the object's body.
ALPHA_LOW = 0.15
ALPHA_HIGH = 0.45
# The object's longer side takes at most this share of its box (the rest is margin, so that
# neighbouring copies stay apart); objects are only ever shrunk, never enlarged.
DEFAULT_FILL = DEFAULTS.fill


@dataclass
class CleanAndNoise:
    """A rectified-flow state split as ``latents = (1 - sigma) * clean + sigma * noise``."""

    clean: torch.Tensor
    noise: torch.Tensor
    sigma: float


class LastStepSplit(SamplerHook):
    """Records the last sampler step so that its latents can be split into the clean image the
    model predicts and the noise that remains (exact for the Euler step just taken)."""

    needs_model_batch = False  # acts between steps only

    def __init__(self) -> None:
        self.before: torch.Tensor | None = None
        self.after: torch.Tensor | None = None
        self.sigma = 0.0
        self.next_sigma = 0.0

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> None:
        self.before, self.after = ctx.latents, latents
        self.sigma, self.next_sigma = ctx.sigma, ctx.next_sigma

    def split(self) -> CleanAndNoise:
        if self.before is None or self.after is None:
            raise RuntimeError("no sampler step was recorded")
        before, after = self.before.float(), self.after.float()
        velocity = (after - before) / (self.next_sigma - self.sigma)  # the flow's (noise - clean)
        sigma = self.next_sigma
        return CleanAndNoise(after - sigma * velocity, after + (1 - sigma) * velocity, sigma)


def object_alpha(clean: torch.Tensor, background: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """(H, W) opacity of the object in ``clean`` (C, H, W) against ``background``: where the two
    differ, limited to ``gate`` (the tokens the footprint keeps, upsampled)."""
    departure = (clean.float() - background.float()).norm(dim=0) * gate.to(clean.device)
    peak = float(departure.max())
    if peak <= 0:
        return torch.zeros_like(departure)
    alpha = ((departure / peak - ALPHA_LOW) / (ALPHA_HIGH - ALPHA_LOW)).clamp(0, 1)
    return strongest_component(alpha)


def strongest_component(alpha: torch.Tensor) -> torch.Tensor:
    """``alpha`` kept only on its connected part with the most opacity.

    A row asked for "a yellow ring" sometimes draws two; cut out together, the pair's extent
    would shrink both to nothing in one box (measured on the embedded model).
    """
    labels, count = ndimage.label(to_numpy(alpha) > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return alpha
    mass = ndimage.sum(to_numpy(alpha), labels, index=range(1, count + 1))
    keep = torch.from_numpy(labels == int(np.argmax(mass)) + 1).to(alpha.device)
    return alpha * keep


def upsample_gate(tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A boolean token mask (rows, cols) as a float (H, W) map at the spatial resolution."""
    return F.interpolate(tokens[None, None].float(), size=size, mode="nearest")[0, 0]


@dataclass
class PlacedObject:
    """One instance ready to paste: its clean values and opacity, and where its top-left goes."""

    clean: torch.Tensor  # (C, h, w)
    alpha: torch.Tensor  # (h, w)
    top: int
    left: int
    scale: float


def fit_into_box(
    clean: torch.Tensor, alpha: torch.Tensor, box: Box, fill: float = DEFAULT_FILL
) -> PlacedObject | None:
    """Crop the object (where ``alpha`` > 0), shrink it so its longer side is at most ``fill`` of
    the box's, and place its opacity-weighted centre on the box's centre. None when ``alpha`` is
    empty (the row drew nothing)."""
    height, width = alpha.shape
    body = (alpha > 0.5).nonzero()
    present = (alpha > 0).nonzero()
    if body.numel() == 0:
        return None
    top, left = present.min(dim=0).values.tolist()
    bottom, right = (present.max(dim=0).values + 1).tolist()
    object_h = int(body[:, 0].max() - body[:, 0].min() + 1)
    object_w = int(body[:, 1].max() - body[:, 1].min() + 1)
    box_w, box_h = (box[2] - box[0]) * width, (box[3] - box[1]) * height
    scale = min(1.0, fill * box_w / object_w, fill * box_h / object_h)
    crop_clean = clean[:, top:bottom, left:right].float()
    crop_alpha = alpha[top:bottom, left:right].float()
    if scale < 1.0:
        size = (max(1, round(crop_alpha.shape[0] * scale)), max(1, round(crop_alpha.shape[1] * scale)))
        # Premultiplied resize, so the object's edge does not bleed the background it was cut from.
        resized = F.interpolate(
            torch.cat([crop_clean * crop_alpha, crop_alpha[None]])[None], size=size, mode="bilinear",
            antialias=True, align_corners=False,
        )[0]  # fmt: skip
        crop_alpha = resized[-1].clamp(0, 1)
        crop_clean = resized[:-1] / resized[-1:].clamp(min=1e-6)
    rows = torch.arange(crop_alpha.shape[0], dtype=torch.float32, device=crop_alpha.device)[:, None] + 0.5
    cols = torch.arange(crop_alpha.shape[1], dtype=torch.float32, device=crop_alpha.device)[None, :] + 0.5
    total = crop_alpha.sum().clamp(min=1e-6)
    centre_y, centre_x = float((crop_alpha * rows).sum() / total), float((crop_alpha * cols).sum() / total)
    box_y, box_x = (box[1] + box[3]) / 2 * height, (box[0] + box[2]) / 2 * width
    return PlacedObject(crop_clean, crop_alpha, round(box_y - centre_y), round(box_x - centre_x), scale)


def paste(clean: torch.Tensor, placed: PlacedObject) -> torch.Tensor:
    """``clean`` (C, H, W) with ``placed`` composited over it by its opacity (clipped at the edges)."""
    out = clean.clone()
    _, height, width = out.shape
    h, w = placed.alpha.shape
    y0, x0 = max(0, placed.top), max(0, placed.left)
    y1, x1 = min(height, placed.top + h), min(width, placed.left + w)
    if y0 >= y1 or x0 >= x1:
        return out
    sy, sx = y0 - placed.top, x0 - placed.left
    alpha = placed.alpha[sy : sy + y1 - y0, sx : sx + x1 - x0].to(out.dtype)
    values = placed.clean[:, sy : sy + y1 - y0, sx : sx + x1 - x0].to(out.dtype)
    out[:, y0:y1, x0:x1] = alpha * values + (1 - alpha) * out[:, y0:y1, x0:x1]
    return out


def coverage(placed: PlacedObject, size: tuple[int, int]) -> torch.Tensor:
    """The (H, W) opacity ``placed`` leaves on a canvas of ``size``."""
    canvas = torch.zeros(1, *size, device=placed.alpha.device)
    return paste(
        canvas,
        PlacedObject(
            torch.ones(1, *placed.alpha.shape, device=placed.alpha.device),
            placed.alpha,
            placed.top,
            placed.left,
            1.0,
        ),
    )[0]
