"""NUMINA's logit bias as the authors' public code computes it (``numina:mode=paper``).

On image-query x noun-token logits of every block, conditional branch only, at step t of their
50-step clock with delta(t) = (4 - 3 tanh(t - 25)) / 4, applied while delta(t) > 0.25 in float64
(the first 45 of 50 steps: tanh only reaches 1.0 in float64 at t = 45, so from about step 28
removed tokens keep -2.5 and added ones +0.2 rather than fading to nothing):
- removed tokens: -10 delta;
- added tokens with no found instance left in the layout: +0.8 delta;
- added tokens beside found instances: set, not added, to delta x the mean logit of the smallest
  found instance's tokens to the noun (over batch, heads, tokens), minus the added token's own
  logit averaged over batch and heads, so that the sum the softmax sees is about that target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from scenewright.planner.count_layout_paper import LABEL_ADDED, LABEL_REMOVED

CLOCK_STEPS = 50
CENTER = 25.0
AMPLITUDE = 3.0
OFFSET = 4.0
FLOOR = 0.25
SUPPRESS = 10.0
CIRCLE_BOOST = 0.8


def paper_delta(step: int, num_steps: int = CLOCK_STEPS) -> float:
    """delta(t) on their 50-step clock (our step mapped onto it), 0.0 where they apply none."""
    t = float(step) * CLOCK_STEPS / max(num_steps, 1)
    # Their expression, in their order: the cut at 0.25 depends on the last bit.
    value = (-AMPLITUDE * math.tanh(t - CENTER) + OFFSET) * FLOOR
    return value if value > FLOOR else 0.0


def paper_bias(
    layout: NDArray[np.int64],
    tokens: Sequence[int],
    query: torch.Tensor,
    key: torch.Tensor,
    step: int,
    num_steps: int = CLOCK_STEPS,
) -> torch.Tensor | None:
    """(L_q, L_k) float32 bias for image queries ``query`` (B, heads, L_q, D, row-major tokens of
    ``layout``) and text keys ``key`` (B, heads, L_k, D), or None where delta is off."""
    delta = paper_delta(step, num_steps)
    if delta == 0.0:
        return None
    flat = torch.from_numpy(np.asarray(layout).reshape(-1)).to(query.device)
    tok = torch.as_tensor(list(tokens), dtype=torch.long, device=query.device)
    bias = torch.zeros(query.shape[2], key.shape[2], dtype=torch.float32, device=query.device)
    removed = (flat == LABEL_REMOVED).nonzero().flatten()
    added = (flat >= LABEL_ADDED).nonzero().flatten()
    bias[removed[:, None], tok[None, :]] += -SUPPRESS * delta
    found = flat[(flat >= 1) & (flat < LABEL_ADDED)]
    if len(added) == 0:
        return bias
    if len(found) == 0:
        bias[added[:, None], tok[None, :]] += CIRCLE_BOOST * delta
        return bias
    labels, sizes = torch.unique(found, return_counts=True)
    reference = (flat == labels[int(sizes.argmin())]).nonzero().flatten()
    scale = query.shape[-1] ** -0.5
    tok_k = key[:, :, tok]
    with torch.no_grad():
        target = (query[:, :, reference] @ tok_k.transpose(-2, -1) * scale).mean().item() * delta
        own = (query[:, :, added] @ tok_k.transpose(-2, -1) * scale).mean(dim=(0, 1))
    bias[added[:, None], tok[None, :]] = (target - own).float()
    return bias


def self_attention_maps(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """(heads, N, N) image self-attention probabilities of batch row 0 from (B, heads, N, D)."""
    scale = query.shape[-1] ** -0.5
    return torch.softmax(query[0].float() @ key[0].float().transpose(-2, -1) * scale, dim=-1)


def cross_attention_map(query: torch.Tensor, key: torch.Tensor, tokens: Sequence[int]) -> torch.Tensor:
    """(N,) the noun's cross-attention: softmax over the text keys alone, averaged over the noun's
    tokens and then over heads (batch row 0; (B, heads, L, D) inputs)."""
    scale = query.shape[-1] ** -0.5
    probs = torch.softmax(query[0].float() @ key[0].float().transpose(-2, -1) * scale, dim=-1)
    return probs[:, :, list(tokens)].mean(dim=2).mean(dim=0)
