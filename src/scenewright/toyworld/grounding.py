"""A grounding loss for training the embedded model: each object's words attend to its pixels.

The toy world knows where every object is, so training can supervise the cross-attention
directly, as TokenCompose did for Stable Diffusion with segmentation masks: for each group of the
caption ("three red circles"), the attention of the image queries on its colour and noun tokens
should fall inside that group's shapes. The token loss of one group in one block is
``(1 - mass inside / mass everywhere) ** 2`` on the head-averaged probabilities of the image
queries on those tokens. Its aim here: the vanilla model's most common two-object failure is one
object drawn twice, the other's words left without a place of their own. Measured on tiny16
(docs/benchmarks.md): the maps then localise, but regional prompting and binding lose, so the
shipped weights are trained without it.

Two kinds of loss (``GROUNDING_KINDS``):
- ``mass``: the group's attention mass should lie inside its shapes, as above. It also pulls the
  attention of the background away from every object's words, so the tokens where an object has
  yet to appear (the ones regional prompting's boxes rely on) lose their pull.
- ``share``: inside a group's shapes, the group's words should take the largest share of the
  attention on the caption's object words, ``(1 - mean share inside) ** 2``. It says nothing
  about the background, and only binds where a caption names two groups or more: it is aimed at
  one object drawn twice (the pixels of both copies attending to the same words). Measured on
  tiny16 (docs/benchmarks.md): two objects up on one seed and down on another, regional
  position down on every seed, so it is not shipped either.

The probabilities are recomputed from the attention module's own projections in a forward
pre-hook on the double-stream blocks, so the model's forward pass (and its fused attention)
stays exactly as diffusers runs it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from scenewright.backends.flux import flux_qkv
from scenewright.toyworld.batches import ObjectRecord
from scenewright.toyworld.shapes import shape_coverage
from scenewright.toyworld.vocab import SHAPES

GROUNDING_KINDS = ("mass", "share")


@dataclass(frozen=True)
class GroundingTarget:
    """One group of one caption: the batch ``row``, its word tokens and its soft mask (N,)."""

    row: int
    tokens: list[int]
    mask: torch.Tensor


def group_tokens(caption: str, offsets: Sequence[tuple[int, int]], color: str, shape: str) -> list[int]:
    """Token positions of ``color`` and ``shape`` (singular or plural) where they stand together
    in ``caption`` ("red circles"); empty when the caption does not name the group that way
    (dropped captions, or an unknown word inserted between them)."""
    found = re.search(rf"\b{re.escape(color)} (?:{re.escape(shape)}|{re.escape(SHAPES[shape])})\b", caption)
    if found is None:
        return []
    start, stop = found.span()
    return [i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= stop]


def group_masks(
    objects: Sequence[ObjectRecord], grid: int, image_size: int
) -> dict[tuple[str, str], np.ndarray]:
    """Per (colour, shape): the share of each token of a ``grid`` x ``grid`` image covered by it."""
    scale = grid / image_size
    masks: dict[tuple[str, str], np.ndarray] = {}
    for color, shape, box in objects:
        cover = shape_coverage(
            shape, grid, grid, (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
        )
        key = (color, shape)
        masks[key] = np.minimum(1.0, masks.get(key, 0.0) + cover)
    return masks


def grounding_targets(
    captions: Sequence[str],
    offsets: Sequence[Sequence[tuple[int, int]]],
    objects: Sequence[Sequence[ObjectRecord]],
    grid: int,
    image_size: int,
    device: torch.device,
    rows: Collection[int] | None = None,
) -> list[GroundingTarget]:
    """Every group that its caption names and that covers some token, in ``rows`` (default all)."""
    targets = []
    for row, (text, spans, scene) in enumerate(zip(captions, offsets, objects, strict=True)):
        if rows is not None and row not in rows:
            continue
        for (color, shape), mask in group_masks(scene, grid, image_size).items():
            tokens = group_tokens(text, spans, color, shape)
            if tokens and mask.sum() > 0:
                flat = torch.as_tensor(mask.reshape(-1), dtype=torch.float32, device=device)
                targets.append(GroundingTarget(row, tokens, flat))
    return targets


@dataclass
class AttentionGrounding:
    """Records, with gradients, the head-mean probabilities of image queries on the text tokens
    (B, N image, T text) at every double-stream block of a Flux transformer."""

    transformer: Any
    kind: str = "mass"  # one of GROUNDING_KINDS
    probabilities: list[torch.Tensor] = field(default_factory=list)
    _handles: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in GROUNDING_KINDS:
            raise ValueError(f"unknown grounding kind {self.kind!r}; use one of {', '.join(GROUNDING_KINDS)}")
        for block in self.transformer.transformer_blocks:
            self._handles.append(block.attn.register_forward_pre_hook(self._record, with_kwargs=True))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _record(self, attn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        text = kwargs.get("encoder_hidden_states")
        rotary = kwargs.get("image_rotary_emb")
        if hidden is None or text is None:
            return
        query, key, _ = flux_qkv(attn, hidden, text, rotary)
        n_text = text.shape[1]
        # The full softmax over [text; image] keys, as the block's attention takes it; small
        # enough on the embedded model (256 image tokens) to form outright.
        logits = torch.einsum("bqhd,bkhd->bhqk", query[:, n_text:].float(), key.float()) * attn.head_dim**-0.5
        probabilities = logits.softmax(dim=-1)[..., :n_text].mean(dim=1)
        self.probabilities.append(probabilities)

    def loss(self, targets: Sequence[GroundingTarget]) -> torch.Tensor | None:
        """Mean over blocks and targets of the kind's term; None with nothing to ground.
        Clears what was recorded."""
        recorded, self.probabilities = self.probabilities, []
        if not targets or not recorded:
            return None
        terms = [
            term
            for probabilities in recorded
            for term in (mass_terms if self.kind == "mass" else share_terms)(probabilities, targets)
        ]
        return torch.stack(terms).mean() if terms else None


def mass_terms(probabilities: torch.Tensor, targets: Sequence[GroundingTarget]) -> list[torch.Tensor]:
    """Per target: ``(1 - its words' attention mass inside its shapes / everywhere) ** 2``."""
    terms = []
    for target in targets:
        mass = probabilities[target.row][:, target.tokens].sum(dim=-1)
        inside = (mass * target.mask).sum() / mass.sum().clamp_min(1e-8)
        terms.append((1 - inside) ** 2)
    return terms


def share_terms(probabilities: torch.Tensor, targets: Sequence[GroundingTarget]) -> list[torch.Tensor]:
    """Per target whose row names two groups or more: ``(1 - mean share inside) ** 2``, where a
    token's share is its attention on the target's words over its attention on all the row's
    object words, averaged with the target's soft mask as weights."""
    by_row: dict[int, list[GroundingTarget]] = {}
    for target in targets:
        by_row.setdefault(target.row, []).append(target)
    terms = []
    for row, group in by_row.items():
        if len(group) < 2:
            continue
        masses = torch.stack([probabilities[row][:, t.tokens].sum(dim=-1) for t in group])
        shares = masses / masses.sum(dim=0, keepdim=True).clamp_min(1e-8)
        for share, target in zip(shares, group, strict=True):
            inside = (share * target.mask).sum() / target.mask.sum().clamp_min(1e-8)
            terms.append((1 - inside) ** 2)
    return terms
