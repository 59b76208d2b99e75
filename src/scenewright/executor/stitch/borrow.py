"""Boxes the object pass left empty borrow the draft of a sibling box of the same object.

On the embedded 16x16-token model a box four or five tokens wide often holds nothing at the switch
whatever its noise (four draws, then fresh rounds, all empty); the unmasked finish then either
leaves the box empty or draws the object somewhere else. Instances of one object share their
prompt, so the draft one box did draw is a fair draft for its siblings: an empty box takes the
clean image its fullest sibling predicts at the switch, moved centre onto centre, and noised back
to the switch's level with the empty box's own noise, so the finish draws a new instance from a
committed start rather than a copy. Objects with one box, or with no sibling that drew anything,
are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from scenewright.executor.attention import region_token_masks
from scenewright.executor.composition import Region


@dataclass(frozen=True)
class BoxDraft:
    """What one box's object pass left at the switch: the pass's image tokens (1, N, C), the clean
    image it predicts there (same shape) and the box's content (``box_noise.box_content``)."""

    tokens: torch.Tensor
    clean: torch.Tensor
    content: float


def box_shift(target: Region, source: Region, grid: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns that carry ``source``'s box centre onto ``target``'s, in whole tokens."""
    rows, cols = grid
    (tx0, ty0, tx1, ty1), (sx0, sy0, sx1, sy1) = target.box, source.box
    return round((ty0 + ty1 - sy0 - sy1) / 2 * rows), round((tx0 + tx1 - sx0 - sx1) / 2 * cols)


def borrow_drafts(
    regions: Sequence[Region],
    drafts: Sequence[BoxDraft],
    tokens: torch.Tensor,
    grid: tuple[int, int],
    sigma: float,
    share: float,
) -> list[int]:
    """Fill, in ``tokens`` (1, N, C, changed in place), each box whose content is under ``share``
    from the fullest sibling at or above it; returns the boxes filled.

    A target token takes ``(1 - sigma) * moved + sigma * noise``: ``moved`` the sibling's clean
    prediction at the token the shift carries there, ``noise`` the target's own, implied by its
    pass's tokens and clean prediction. Target tokens the shift carries outside the sibling's box
    keep their own value."""
    masks = region_token_masks([r.box for r in regions], grid).reshape(len(regions), *grid)
    rows, cols = grid
    # Compared in float32 like the recheck's rule (``box_noise.redraw_rounds``): a box's content
    # is a share of its tokens, so it often lands exactly on the share.
    drawn = (torch.tensor([d.content for d in drafts], dtype=torch.float32) >= share).tolist()
    filled = []
    for target, region in enumerate(regions):
        if drawn[target]:
            continue
        siblings = [
            index
            for index, other in enumerate(regions)
            if other.object_index == region.object_index and drawn[index]
        ]
        if not siblings:
            continue
        source = max(siblings, key=lambda index: drafts[index].content)
        d_row, d_col = box_shift(region, regions[source], grid)
        at = masks[target].nonzero()
        src = at - torch.tensor([d_row, d_col])
        inside = (src[:, 0] >= 0) & (src[:, 0] < rows) & (src[:, 1] >= 0) & (src[:, 1] < cols)
        at, src = at[inside], src[inside]
        in_source = masks[source][src[:, 0], src[:, 1]]
        at, src = at[in_source], src[in_source]
        to_flat = (at[:, 0] * cols + at[:, 1]).to(tokens.device)
        from_flat = (src[:, 0] * cols + src[:, 1]).to(tokens.device)
        own = drafts[target]
        own_clean = own.clean[:, to_flat].float()
        noise = (own.tokens[:, to_flat].float() - (1.0 - sigma) * own_clean) / max(sigma, 1e-6)
        moved = drafts[source].clean[:, from_flat].float()
        tokens[:, to_flat] = ((1.0 - sigma) * moved + sigma * noise).to(tokens.dtype)
        filled.append(target)
    return filled
