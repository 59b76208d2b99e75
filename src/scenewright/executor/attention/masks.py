"""Region geometry on the token grid, and the masked-logit value that survives bf16/fp16.

A region mask is stored as one bit per region on every token (text token of prompt i: bit i;
image token: the bits of every region covering it; uncovered image tokens: a background bit). Two
tokens may attend to each other iff their bit sets intersect, which is exactly the
Regional-Prompting-FLUX rule: text i <-> text i, text i <-> image in mask i, image <-> image within
a shared region, and uncovered tokens only with each other. The same bits drive the dense boolean
mask and the FlexAttention ``mask_mod``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scenewright.errors import InvalidInputError
from scenewright.executor.catalogue import IMAGE_ATTENTION_MODES
from scenewright.executor.options import require_choice

# A box is (x0, y0, x1, y1) as fractions of the image width and height; a pixel mask is (H, W).
Box = tuple[float, float, float, float]
RegionShape = Box | torch.Tensor | None  # None: the background, i.e. whatever no other region covers
BACKGROUND_BIT = 62
IMAGE_BIT = 61  # shared by every image token when image attention is open across regions
CONTEXT_BIT = 60  # key bit of uncovered image tokens, query bit of boxed ones ("context" mode)
MAX_REGIONS = 60
# The base prompt's image stream in the single-stream blocks: kept apart, as the authors' code
# does, or shared with the regional pass (see RegionMask).


def mask_value(dtype: torch.dtype) -> float:
    """A large finite negative for masked logits: exp() of it is 0, yet sums of two stay finite.

    -inf makes a fully masked row NaN; half the dtype's max never overflows when a bias is added.
    """
    if not dtype.is_floating_point:
        dtype = torch.float32
    return -0.5 * float(torch.finfo(dtype).max)


def box_to_tokens(box: Box, grid: tuple[int, int]) -> torch.Tensor:
    """Tokens whose centres lie in ``box``: a hard-edged binary mask over the (rows, cols) grid."""
    rows, cols = grid
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InvalidInputError(
            "box", f"{box} is not (x0, y0, x1, y1) inside [0, 1]", "use 0 <= x0 < x1 <= 1"
        )
    ys = (torch.arange(rows) + 0.5) / rows
    xs = (torch.arange(cols) + 0.5) / cols
    inside_y = (ys >= y0) & (ys < y1)
    inside_x = (xs >= x0) & (xs < x1)
    return inside_y[:, None] & inside_x[None, :]


def pixels_to_tokens(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """A pixel mask resized to the token grid with nearest-exact, as the public code does."""
    resized = F.interpolate(mask.float()[None, None], size=grid, mode="nearest-exact")[0, 0]
    return resized > 0.5


def region_token_masks(shapes: Sequence[RegionShape], grid: tuple[int, int]) -> torch.Tensor:
    """(R, rows*cols) boolean token masks; a ``None`` shape gets what no other region covers."""
    rows, cols = grid
    masks = torch.zeros(len(shapes), rows, cols, dtype=torch.bool)
    for i, shape in enumerate(shapes):
        if isinstance(shape, torch.Tensor):
            masks[i] = pixels_to_tokens(shape, grid)
        elif shape is not None:
            masks[i] = box_to_tokens(shape, grid)
    covered = masks.any(dim=0)
    for i, shape in enumerate(shapes):
        if shape is None:
            masks[i] = ~covered
    return masks.reshape(len(shapes), rows * cols)


@dataclass
class RegionLayout:
    """The regional attention pass for one token grid: token order and region bits.

    ``order`` lists canonical positions ([text; image], text first) of the tokens the regional pass
    sees: all regional text (prompt by prompt), then the image tokens grouped by their first region
    (background last). Each quadrant of the mask is then block diagonal, so a block-sparse kernel
    skips almost every block off those diagonals. ``bits`` are the region bits of those tokens, in that order.
    """

    order: torch.Tensor  # (S_r,) long, canonical positions
    bits: torch.Tensor  # (S_r,) int64: query bits (and key bits unless ``key_bits`` is set)
    n_text: int  # the first n_text entries of ``order`` are text tokens
    image_masks: torch.Tensor  # (R, N) bool
    # Where regions do not overlap, the mask is a partition: per group (text i, image of region i,
    # background last) its [start, end) ranges in ``order`` for text and image; else None.
    segments: list[tuple[int, int, int, int]] | None = None
    # Key bits where they differ from the query bits (the one-way "context" mode), else None.
    key_bits: torch.Tensor | None = None

    @property
    def keys(self) -> torch.Tensor:
        """Region bits of the tokens as keys."""
        return self.bits if self.key_bits is None else self.key_bits

    @classmethod
    def build(
        cls,
        text_spans: Sequence[tuple[int, int]],
        image_masks: torch.Tensor,
        text_len: int,
        image_attention: str = "region",
        background: Sequence[int] = (),
    ) -> RegionLayout:
        """Group tokens by region; ``text_spans`` are [start, end) ranges in the text sequence.

        ``image_attention``: "region" keeps image <-> image within a region; "all" gives every
        image token ``IMAGE_BIT``, so image tokens attend to each other across regions while each
        region's text still reaches only its own tokens; "context" lets a boxed image token also
        read the image tokens of the ``background`` regions (one way: the background never reads
        the boxes), so a region sees the empty canvas around it without seeing the other objects.
        """
        require_choice("image_attention", image_attention, IMAGE_ATTENTION_MODES)
        open_image = image_attention == "all"
        n_regions = image_masks.shape[0]
        if n_regions != len(text_spans):
            raise InvalidInputError(
                "regions", f"{len(text_spans)} prompts for {n_regions} masks", "give one each"
            )
        if n_regions > MAX_REGIONS:
            raise InvalidInputError("regions", f"{n_regions} regions", f"use at most {MAX_REGIONS}")
        weights = torch.tensor([1 << i for i in range(n_regions)], dtype=torch.int64)
        image_bits = (image_masks.to(torch.int64) * weights[:, None]).sum(dim=0)
        image_bits = torch.where(image_bits == 0, torch.tensor(1 << BACKGROUND_BIT), image_bits)
        if open_image:
            image_bits = image_bits | (1 << IMAGE_BIT)
        first = torch.where(
            image_masks.any(dim=0), image_masks.to(torch.int8).argmax(dim=0), torch.tensor(n_regions)
        )
        text_pos: list[torch.Tensor] = []
        text_bits: list[torch.Tensor] = []
        image_pos: list[torch.Tensor] = []
        for i, (start, end) in enumerate(text_spans):
            text_pos.append(torch.arange(start, end))
            text_bits.append(torch.full((end - start,), 1 << i, dtype=torch.int64))
        for i in range(n_regions + 1):
            image_pos.append((first == i).nonzero().flatten())
        image_order = torch.cat(image_pos)
        order = torch.cat([*text_pos, image_order + text_len])
        bits = torch.cat([*text_bits, image_bits[image_order]])
        n_text = sum(end - start for start, end in text_spans)
        key_bits = None
        if image_attention == "context":
            canvas = image_masks[list(background)].any(dim=0)[image_order]
            boxed = ~canvas
            key_bits = bits.clone()
            key_bits[n_text:] = torch.where(boxed, bits[n_text:], bits[n_text:] | (1 << CONTEXT_BIT))
            bits = bits.clone()
            bits[n_text:] = torch.where(boxed, bits[n_text:] | (1 << CONTEXT_BIT), bits[n_text:])
        segments = None
        if image_attention == "region" and bool((image_masks.sum(dim=0) <= 1).all()):
            segments, text_at, image_at = [], 0, n_text
            for i in range(n_regions + 1):
                n_t = text_spans[i][1] - text_spans[i][0] if i < n_regions else 0
                n_i = image_pos[i].numel()
                segments.append((text_at, text_at + n_t, image_at, image_at + n_i))
                text_at, image_at = text_at + n_t, image_at + n_i
        return cls(
            order=order,
            bits=bits,
            n_text=n_text,
            image_masks=image_masks,
            segments=segments,
            key_bits=key_bits,
        )

    def allowed(self) -> torch.Tensor:
        """(S_r, S_r) boolean: may query i attend to key j (in ``order``)."""
        return (self.bits[:, None] & self.keys[None, :]) != 0

    def density(self) -> float:
        """Fraction of (query, key) pairs the mask keeps: what a block-sparse kernel can hope to pay."""
        return float(self.allowed().float().mean())


def mass_cutout(
    attention: torch.Tensor, box_tokens: torch.Tensor, keep_mass: float, kernel: int = 3
) -> torch.Tensor:
    """Tokens inside the box holding ``keep_mass`` of a map there (an attention map, a footprint),
    grown by a ``kernel`` x ``kernel`` max-pool (3: one token; the paper's 5: two): what Stitch
    cuts out of an object pass."""
    inside = attention * box_tokens
    total = inside.sum()
    if total <= 0:
        return box_tokens.clone()
    values, order = inside.flatten().sort(descending=True)
    cumulative = values.cumsum(0) / total
    count = int((cumulative < keep_mass).sum().item()) + 1
    keep = torch.zeros(inside.numel(), dtype=torch.bool, device=inside.device)
    keep[order[:count]] = True
    pooled = F.max_pool2d(keep.reshape(1, 1, *inside.shape).float(), kernel, stride=1, padding=kernel // 2)
    grown = pooled[0, 0] > 0
    return grown & box_tokens
