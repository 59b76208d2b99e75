"""The text-to-image capture as it was before observers were bounded: full float32 logits per
chunk, and per-(site, head) stacks. Kept only as the reference the bounded observers must equal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from scenewright.executor.attention import Edit
from scenewright.executor.attention.masks import mask_value


@dataclass
class ReferenceCapture(Edit):
    tokens: Sequence[int] = ()
    per_head: bool = False
    total: torch.Tensor | None = field(default=None, init=False)
    count: int = field(default=0, init=False)
    grid: tuple[int, int] = field(default=(0, 0), init=False)
    head_totals: dict[Any, torch.Tensor] = field(default_factory=dict, init=False)
    head_counts: dict[Any, int] = field(default_factory=dict, init=False)

    def reset(self) -> None:
        self.total, self.count, self.head_totals, self.head_counts = None, 0, {}, {}

    def observe(self, engine, site, query, key, value, output, text_len) -> None:  # type: ignore[no-untyped-def]
        batch, seq, heads, dim = query.shape
        n_image = seq - text_len
        gamma, bias = engine.modifiers(site, batch, text_len, n_image, query.device)
        wanted = torch.as_tensor(list(self.tokens), dtype=torch.long)
        maps = torch.zeros(batch, len(self.tokens), n_image)
        head_maps = torch.zeros(batch, len(self.tokens), heads, n_image)
        for read in engine.read_passes(site, text_len, n_image, query.device):
            text_keys = read.keys[: read.n_text]
            hit = text_keys[None, :] == wanted[:, None]
            present, where = hit.any(dim=1), hit.int().argmax(dim=1)
            if not bool(present.any()):
                continue
            keys = key[:, read.keys].float().transpose(1, 2).clone()
            if gamma is not None:
                keys[:, :, : read.n_text] *= gamma[:, None, None, None]
            rows = query[:, text_len:].float()
            logits = torch.einsum("bqhd,bhkd->bhqk", rows, keys) * dim**-0.5
            if bias is not None:
                logits[..., : read.n_text] += bias[:, None][..., text_keys]
            if read.image_bits is not None and read.key_bits is not None:
                allowed = (read.image_bits[:, None] & read.key_bits[None, :]) != 0
                logits = logits.masked_fill(~allowed, mask_value(torch.float32))
            per_head = logits.log_softmax(dim=-1)[..., where].exp()  # (B, H, q, K)
            maps += read.weight * (per_head.mean(dim=1) * present).transpose(1, 2)
            head_maps += read.weight * (per_head * present).permute(0, 3, 1, 2)
        self.total = maps if self.total is None else self.total + maps
        self.count += 1
        self.grid = engine.grid
        if self.per_head:
            previous = self.head_totals.get(site)
            self.head_totals[site] = head_maps if previous is None else previous + head_maps
            self.head_counts[site] = self.head_counts.get(site, 0) + 1

    def maps(self) -> torch.Tensor:
        assert self.total is not None
        mean = self.total / self.count
        return mean.reshape(*mean.shape[:2], *self.grid)
