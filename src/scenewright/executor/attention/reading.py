"""Reading how much image queries attend to chosen text keys, in bounded memory.

Observers (text-to-image maps, Stitch's head choice) need, per image token, the attention
probability on some text tokens. Materialising the logits of a block costs ``B x H x N x K``
floats (10 GiB at FLUX.1 size over every block and step); instead we ask SDPA itself: attention
with *values* that are one-hot weights on the wanted text keys returns exactly the probability
mass on them, per head, and fused kernels never form the logits. Queries go in chunks of rows
sized so that even the math kernel's transient logits and the additive mask of one chunk stay
within a budget.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from scenewright.executor.attention.masks import mask_value
from scenewright.executor.attention.view import ReadPass

# One observed block's transient memory is bounded by this (per chunk of image-query rows).
READ_BUDGET_BYTES = 128 * 2**20


def chunk_rows(batch: int, heads: int, n_keys: int, budget: int = READ_BUDGET_BYTES) -> int:
    """Image-query rows per chunk: the math kernel's float32 logits and their softmax
    (``2 x B x H x K`` floats a row) plus the float32 additive mask (``B x K`` a row) fit ``budget``."""
    per_row = 4 * batch * n_keys * (2 * heads + 1)
    return max(1, budget // per_row)


def text_mass(
    query: torch.Tensor,
    key: torch.Tensor,
    text_len: int,
    read: ReadPass,
    weights: torch.Tensor,
    gamma: torch.Tensor | None,
    bias: torch.Tensor | None,
    budget: int = READ_BUDGET_BYTES,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, mass)`` over chunks of image queries.

    ``query``/``key`` are canonical (B, S, H, D) ([text; image]); ``weights`` is (n_text of the
    pass, G): how much each of the pass's text keys counts in each of G groups (one-hot for single
    tokens, 1/len for a prompt's mean). ``mass`` is (B, H, stop - start, G) float32: for each
    image query, sum over keys of probability x weight, under the pass's region mask, the
    temperature ``gamma`` (B,) and the float32 ``bias`` (B, N, T) on image-query x text-key
    logits, exactly as the real pass computes its logits.
    """
    batch, seq, heads, dim = query.shape
    n_image = seq - text_len
    dtype, device = query.dtype, query.device
    keys = key[:, read.keys].transpose(1, 2)  # (B, H, K, D): a gather, so already a copy
    n_keys = keys.shape[2]
    if gamma is not None:  # temperature on image-query x text-key logits == scaled text keys
        keys[:, :, : read.n_text] *= gamma.to(dtype)[:, None, None, None]
    groups = weights.shape[1]
    # Values: the weights on text keys, zero on image keys, padded to the head dim so that every
    # SDPA kernel (flash needs equal q/k/v widths) accepts them; wider groups go in slices.
    values = []
    for g0 in range(0, groups, dim):
        part = weights[:, g0 : g0 + dim]
        v = torch.zeros(n_keys, dim, dtype=dtype, device=device)
        v[: read.n_text, : part.shape[1]] = part.to(device, dtype)
        values.append((part.shape[1], v.expand(batch, heads, n_keys, dim)))
    text_keys = read.keys[: read.n_text]
    rows_per_chunk = chunk_rows(batch, heads, n_keys, budget)
    negative = mask_value(torch.float32)
    for start in range(0, n_image, rows_per_chunk):
        stop = min(n_image, start + rows_per_chunk)
        q = query[:, text_len + start : text_len + stop].transpose(1, 2)
        mask = None
        if bias is not None or read.image_bits is not None:
            full = torch.zeros(batch, 1, stop - start, n_keys, dtype=torch.float32, device=device)
            if bias is not None:
                full[:, 0, :, : read.n_text] += bias[:, start:stop][..., text_keys]
            if read.image_bits is not None and read.key_bits is not None:
                allowed = (read.image_bits[start:stop, None] & read.key_bits[None, :]) != 0
                full.masked_fill_(~allowed, negative)
            mask = full.clamp(min=mask_value(dtype)).to(dtype)
        parts = [
            F.scaled_dot_product_attention(q, keys, v, attn_mask=mask)[..., :width].float()
            for width, v in values
        ]
        yield start, stop, parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


def token_weights(read: ReadPass, groups: list[list[int]], mean: bool) -> torch.Tensor | None:
    """(n_text of the pass, G) weights of ``groups`` of canonical text positions among the pass's
    text keys (1 each, or 1/len(group) with ``mean``); None when no group's token is in the pass."""
    text_keys = read.keys[: read.n_text]
    weights = torch.zeros(read.n_text, len(groups), dtype=torch.float32, device=text_keys.device)
    for g, positions in enumerate(groups):
        wanted = torch.as_tensor(positions, dtype=torch.long, device=text_keys.device)
        hit = (text_keys[:, None] == wanted[None, :]).any(dim=1)
        weights[hit, g] = 1.0 / len(positions) if mean else 1.0
    return weights if bool(weights.any()) else None
