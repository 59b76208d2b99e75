"""The two attention kernels every pass can run on: dense SDPA and block-sparse FlexAttention.

A pass is attention of some queries over some keys, both ordered text first: the first
``n_text_q`` queries and ``n_text_k`` keys are text. Image-query x text-key logits may be
multiplied by a per-row ``gamma`` and shifted by a ``bias`` (B, image queries, text keys); region
bits (see :mod:`.masks`) optionally restrict which pairs may attend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from scenewright.executor.attention.masks import mask_value

try:  # FlexAttention arrived in torch 2.5; older builds fall back to dense SDPA.
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    FLEX_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the torch build
    FLEX_AVAILABLE = False

_COMPILED: dict[str, Any] = {}


def compiled_flex() -> Any:
    """``torch.compile(flex_attention)``, made once per process (the fused kernel needs it)."""
    if "flex" not in _COMPILED:
        _COMPILED["flex"] = torch.compile(flex_attention, dynamic=False)
    return _COMPILED["flex"]


@dataclass
class PassGeometry:
    """A pass's shape: sequence lengths, text counts and region bits (None: unmasked)."""

    n_q: int
    n_k: int
    n_text_q: int
    n_text_k: int
    bits_q: torch.Tensor | None = None
    bits_k: torch.Tensor | None = None
    segments: list[tuple[int, int, int, int]] | None = None  # a partition: see RegionLayout


def dense_mask(geom: PassGeometry, dtype: torch.dtype, device: torch.device) -> torch.Tensor | None:
    """(1, 1, Q, K) additive mask: 0 where allowed, a large finite negative elsewhere."""
    if geom.bits_q is None or geom.bits_k is None:
        return None
    allowed = (geom.bits_q[:, None] & geom.bits_k[None, :]) != 0
    zero = torch.zeros((), dtype=dtype, device=device)
    negative = torch.full((), mask_value(dtype), dtype=dtype, device=device)
    return torch.where(allowed.to(device), zero, negative)[None, None]


def combine_mask(
    geom: PassGeometry, mask: torch.Tensor | None, bias: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """(B, 1, Q, K) additive mask: the region mask plus the bias on image-query x text-key logits."""
    full = torch.zeros(bias.shape[0], 1, geom.n_q, geom.n_k, dtype=dtype, device=bias.device)
    if mask is not None:
        full = full + mask
    full[:, 0, geom.n_text_q :, : geom.n_text_k] += bias.to(dtype)
    return full.clamp(min=mask_value(dtype))


def dense_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    geom: PassGeometry,
    mask: torch.Tensor | None,
    gamma: torch.Tensor | None,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """SDPA over (B, H, S, D) tensors with the pass's mask, temperature and bias."""
    if bias is not None:
        mask = combine_mask(geom, mask, bias, query.dtype)
    if gamma is None:
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    # Temperature on image-query x text-key logits == scaling the text keys for image queries only.
    scaled = key.clone()
    scaled[:, :, : geom.n_text_k] *= gamma.to(key.dtype)[:, None, None, None]
    t = geom.n_text_q
    text_mask = None if mask is None else mask[:, :, :t]
    image_mask = None if mask is None else mask[:, :, t:]
    text_out = F.scaled_dot_product_attention(query[:, :, :t], key, value, attn_mask=text_mask)
    image_out = F.scaled_dot_product_attention(query[:, :, t:], scaled, value, attn_mask=image_mask)
    return torch.cat([text_out, image_out], dim=2)


def segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    geom: PassGeometry,
    gamma: torch.Tensor | None,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Dense SDPA per group when the mask is a partition (regions that do not overlap).

    Each group (text i with region i's image tokens, and the background) attends only within
    itself, so the masked pass is exactly a handful of small unmasked passes: the dense kernel
    at block-sparse cost, with no mask tensor at all.
    """
    assert geom.segments is not None
    out = torch.empty_like(query)
    n_text = geom.n_text_q
    for t0, t1, i0, i1 in geom.segments:
        if t1 == t0 and i1 == i0:
            continue
        index = torch.cat([torch.arange(t0, t1), torch.arange(i0, i1)]).to(query.device)
        q, k, v = query[:, :, index], key[:, :, index], value[:, :, index]
        sub = None
        if bias is not None:
            sub = bias[:, i0 - n_text : i1 - n_text, t0:t1]
        part = PassGeometry(index.numel(), index.numel(), t1 - t0, t1 - t0)
        out[:, :, index] = dense_attention(q, k, v, part, None, gamma, sub)
    return out


@dataclass
class FlexPass:
    """One masked pass on FlexAttention: its BlockMask and score mods, made once per sampling call.

    The score mods read per-step values (gamma, bias) from buffers updated in place, so the
    compiled kernel is reused across blocks and steps instead of being traced again.
    """

    geom: PassGeometry
    device: torch.device
    block_size: int = 128
    compile: bool = True
    block_mask: Any = None
    gamma_buf: torch.Tensor | None = None
    bias_buf: torch.Tensor | None = None
    mods: dict[tuple[bool, bool], Callable[..., torch.Tensor] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.geom.bits_q is not None and self.geom.bits_k is not None
        bits_q = self.geom.bits_q.to(self.device)
        bits_k = self.geom.bits_k.to(self.device)

        def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
            return (bits_q[q_idx] & bits_k[kv_idx]) != 0

        self.block_mask = create_block_mask(
            mask_mod,
            None,
            None,
            self.geom.n_q,
            self.geom.n_k,
            device=str(self.device),
            BLOCK_SIZE=self.block_size,
        )

    def density(self) -> float:
        """The kernel's computed share of the n_q x n_k pairs: its kept blocks' area over the
        pass's (1 - sparsity). Edge blocks count whole, so a short, padded pass can pass 1."""
        return 1.0 - float(self.block_mask.sparsity()) / 100.0

    def _score_mod(self, with_gamma: bool, with_bias: bool) -> Callable[..., torch.Tensor] | None:
        if (with_gamma, with_bias) in self.mods:
            return self.mods[(with_gamma, with_bias)]
        n_tq, n_tk = self.geom.n_text_q, self.geom.n_text_k
        gamma_buf, bias_buf = self.gamma_buf, self.bias_buf
        mod: Callable[..., torch.Tensor] | None = None
        if with_gamma or with_bias:

            def mod(score: Any, b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
                chosen = (q_idx >= n_tq) & (kv_idx < n_tk)
                if with_gamma:
                    assert gamma_buf is not None
                    score = torch.where(chosen, score * gamma_buf[b], score)
                if with_bias:
                    assert bias_buf is not None
                    row = (q_idx - n_tq).clamp(min=0)
                    col = kv_idx.clamp(max=n_tk - 1)
                    score = score + torch.where(chosen, bias_buf[b, row, col], 0.0)
                return score

        self.mods[(with_gamma, with_bias)] = mod
        return mod

    def run(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        gamma: torch.Tensor | None,
        bias: torch.Tensor | None,
    ) -> torch.Tensor:
        """FlexAttention over (B, H, S, D) tensors: only the blocks the region mask keeps."""
        if gamma is not None:
            if self.gamma_buf is None or self.gamma_buf.shape != gamma.shape:
                self.gamma_buf = torch.empty(gamma.shape, dtype=torch.float32, device=self.device)
                self.mods.clear()
            self.gamma_buf.copy_(gamma)
        if bias is not None:
            if self.bias_buf is None or self.bias_buf.shape != bias.shape:
                self.bias_buf = torch.empty(bias.shape, dtype=torch.float32, device=self.device)
                self.mods.clear()
            self.bias_buf.copy_(bias)
        score_mod = self._score_mod(gamma is not None, bias is not None)
        fn = compiled_flex() if self.compile else flex_attention
        out = fn(query, key, value, score_mod=score_mod, block_mask=self.block_mask)
        return out


def flex_usable(query: torch.Tensor) -> bool:
    """FlexAttention's fused kernel wants head dims that are powers of two, 16 or more."""
    dim = query.shape[-1]
    return FLEX_AVAILABLE and dim >= 16 and dim & (dim - 1) == 0


__all__ = [
    "FLEX_AVAILABLE",
    "FlexPass",
    "PassGeometry",
    "combine_mask",
    "dense_attention",
    "dense_mask",
    "flex_usable",
    "segment_attention",
]
