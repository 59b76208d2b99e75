"""Seeded attention inputs for NUMINA's model-free functions: image-token queries and keys of one
attention layer in which a counted noun's instances are blobs on a small token grid.

Shared by scripts/reference/numina.py (which feeds them to the authors' functions) and
tests/test_reference_numina.py (which feeds them to ours), so both see the same maps.

Each token gets a feature: a shared object code weighted by how deep it lies in a blob, a
background code elsewhere, noise, and sinusoidal position features so that attention is also
local (tokens of one blob attend to each other more than to a far blob of the same noun). Heads
differ by a sharpness factor, so that head selection has a structured head to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GRID = 16
HEADS = 4
DIM = 32
TEXT_LEN = 8
NOUN_TOKENS = (3, 4)
# Sharpness per head: head 2 is the structured one, head 0 nearly flat.
HEAD_SHARPNESS = (0.3, 0.6, 2.0, 1.0)
INSTANCE_SHARE = 0.8

# (name, blob centres (row, col), blob radius in tokens, target count). With the authors' head
# selection, "remove" finds 2 instances (one is removed), "exact" the same 2 (no bias), "circle"
# none (both added instances take their circle template) and "reference" one (the added ones take
# its attention as their target).
CASES: tuple[tuple[str, tuple[tuple[float, float], ...], float, int], ...] = (
    ("remove", ((3.5, 3.5), (3.5, 12.0), (12.0, 3.5), (12.0, 12.0)), 2.2, 1),
    ("exact", ((3.5, 3.5), (3.5, 12.0), (12.0, 3.5), (12.0, 12.0)), 2.2, 2),
    ("circle", ((4.0, 4.0), (11.0, 11.0)), 2.5, 3),
    ("reference", ((3.5, 3.5), (3.5, 12.0), (12.0, 3.5), (12.0, 12.0)), 2.2, 3),
    ("overlay", ((4.0, 8.0), (11.5, 8.0)), 2.5, 3),
)


@dataclass
class NuminaInputs:
    """One layer's attention inputs, all (B=1, heads, L, D) like the authors' transposed q/k."""

    self_q: torch.Tensor  # image queries, (1, HEADS, GRID * GRID, DIM)
    self_k: torch.Tensor  # image keys
    cross_q: torch.Tensor  # image queries of the text-key attention
    cross_k: torch.Tensor  # text keys, (1, HEADS, TEXT_LEN, DIM)


def _blob_weights(centres: tuple[tuple[float, float], ...], radius: float) -> torch.Tensor:
    """(blobs, GRID * GRID) gaussian weight of each token in each blob."""
    rows, cols = torch.meshgrid(
        torch.arange(GRID, dtype=torch.float64), torch.arange(GRID, dtype=torch.float64), indexing="ij"
    )
    weights = [
        torch.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * (radius / 1.5) ** 2)) for r, c in centres
    ]
    return torch.stack(weights).flatten(1)


def _position_features(width: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(
        torch.arange(GRID, dtype=torch.float64), torch.arange(GRID, dtype=torch.float64), indexing="ij"
    )
    freqs = torch.tensor([0.25, 0.5, 1.0, 2.0][: width // 4], dtype=torch.float64) * torch.pi / GRID * 2
    parts = []
    for f in freqs:
        parts += [torch.sin(rows * f), torch.cos(rows * f), torch.sin(cols * f), torch.cos(cols * f)]
    return torch.stack(parts, dim=-1).reshape(GRID * GRID, -1)


def make_inputs(case: str, seed: int = 0) -> NuminaInputs:
    """The inputs of one case of ``CASES`` (deterministic for a seed, float32)."""
    centres, radius = next((c, r) for name, c, r, _ in CASES if name == case)
    gen = torch.Generator().manual_seed(seed)
    n = GRID * GRID
    blobs = _blob_weights(centres, radius)
    weight = blobs.amax(dim=0)[:, None]
    object_code = torch.randn(DIM, generator=gen, dtype=torch.float64)
    background_code = torch.randn(DIM, generator=gen, dtype=torch.float64)
    # Instances of one noun look alike but not the same: each blob adds its own code.
    instance_codes = torch.randn(len(centres), DIM, generator=gen, dtype=torch.float64)
    position = _position_features(16)
    features = (
        weight * object_code + (1 - weight) * background_code + INSTANCE_SHARE * blobs.T @ instance_codes
    )
    features = features + 0.3 * torch.randn(n, DIM, generator=gen, dtype=torch.float64)
    features = torch.cat([features, 2.0 * position], dim=1)  # (n, DIM + 16)
    width = features.shape[1]
    qs, ks, cqs = [], [], []
    for sharp in HEAD_SHARPNESS:
        mix = torch.eye(width, dtype=torch.float64) + 0.2 * torch.randn(
            width, width, generator=gen, dtype=torch.float64
        )
        project = mix[:, :DIM] * sharp
        qs.append(features @ project)
        ks.append(features @ project)
        cqs.append(
            1.5
            * features[:, :DIM]
            @ (
                torch.eye(DIM, dtype=torch.float64)
                + 0.1 * torch.randn(DIM, DIM, generator=gen, dtype=torch.float64)
            )
        )
    text = 0.5 * torch.randn(HEADS, TEXT_LEN, DIM, generator=gen, dtype=torch.float64)
    for token in NOUN_TOKENS:
        text[:, token] += 0.4 * (object_code - background_code)
    return NuminaInputs(
        self_q=torch.stack(qs)[None].float(),
        self_k=torch.stack(ks)[None].float(),
        cross_q=torch.stack(cqs)[None].float(),
        cross_k=text[None].float(),
    )


def target_count(case: str) -> int:
    return next(count for name, _, _, count in CASES if name == case)
