"""What the finish keeps on the background pass's path: the seams between boxes and the canvas."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from scenewright.backends.base import Backend
from scenewright.executor.attention import region_token_masks
from scenewright.executor.composition import Region
from scenewright.executor.sampler import SamplerHook, StepContext


class BackgroundHold(SamplerHook):
    """Keeps some tokens on the background pass's path for the first finish steps.

    Held tokens sit at the background's noisy value, ``(1 - sigma) * clean + sigma * noise`` with
    the background's clean prediction and noise taken at the switch, so the unmasked finish cannot
    draw there until the objects are settled. Two sets are held (each for its own share of the
    steps): the seam between boxes (``seam_tokens``), so that two neighbours of one colour do not
    grow into one shape (most of the box pass's counting failures on the embedded model), and
    the canvas outside every box (``canvas_tokens``), so that the finish draws an object in its
    box or not at all rather than in a gap where the noise favours one.
    """

    needs_model_batch = False

    def __init__(
        self,
        backend: Backend,
        seam: torch.Tensor,
        background: torch.Tensor,
        clean: torch.Tensor,
        sigma: float,
        until_step: int,
    ) -> None:
        """``background`` and ``clean``: the background pass's tokens at the switch (noise level
        ``sigma``) and its clean prediction there; the noise they imply is what is kept."""
        self.backend = backend
        self.seam = seam
        self.until_step = until_step
        self.clean = clean.float()[:, seam]
        self.noise = (background.float()[:, seam] - (1.0 - sigma) * self.clean) / max(sigma, 1e-6)

    def after_step(self, ctx: StepContext, latents: torch.Tensor) -> torch.Tensor | None:
        if ctx.step >= self.until_step:
            return None
        tokens = self.backend.image_tokens(latents).clone()
        sigma = ctx.next_sigma
        held = (1.0 - sigma) * self.clean + sigma * self.noise
        tokens[:, self.seam] = held.to(tokens.dtype)
        return self.backend.from_image_tokens(tokens, ctx.height, ctx.width)


def _beside(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` (rows, cols) grown by the tokens that share an edge with it. Edges only, not
    corners (so not a 3x3 max-pool): boxes meeting at a corner merged in none of the 45 merged
    pairs measured on the embedded model, and a seam there would take a corner of each object."""
    grown = mask.clone()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def seam_tokens(regions: Sequence[Region], grid: tuple[int, int]) -> torch.Tensor:
    """The flat (rows*cols) boolean mask of the tokens ``BackgroundHold`` keeps on the
    background's path between boxes.

    The tokens two boxes share, and where two boxes of one object touch without sharing a token,
    the later box's tokens along their common edge. Two instances of one prompt that touch merge
    into one shape (two thirds of the box pass's merged counts on the embedded model came from
    boxes that only touch; holding the shared tokens alone: 97 of 150 tuning cases counted right
    against 112); instances of different objects are left alone, since telling them apart does
    not need a gap of canvas.
    """
    masks = region_token_masks([r.box for r in regions], grid)
    seam = masks.sum(dim=0) >= 2
    boxes = masks.reshape(len(regions), *grid)
    for later in range(len(regions)):
        for earlier in range(later):
            same_object = regions[later].object_index == regions[earlier].object_index
            if same_object and not bool((boxes[earlier] & boxes[later]).any()):
                seam |= (_beside(boxes[earlier]) & boxes[later]).flatten()
    return seam


def canvas_tokens(regions: Sequence[Region], grid: tuple[int, int]) -> torch.Tensor:
    """The flat (rows*cols) boolean mask of the tokens outside every box: the canvas
    ``BackgroundHold`` keeps empty. Held up to the boxes' own edges: leaving a token of margin
    free lost 8 of 150 counting cases on the embedded model (docs/benchmarks.md)."""
    return ~region_token_masks([r.box for r in regions], grid).any(dim=0)
