"""NUMINA's count layout as the authors' public code computes it (``numina:mode=paper``).

Model-free, on one layer's maps: the chosen head's image self-attention probabilities (N x N,
N = H * W row-major) and the counted noun's cross-attention map (H x W). It returns their label
layout: 0 background, 1..k found instances, -1 removed tokens, 100+ added instances.

1. Head choice: each head's self-attention map turned grey (3 PCA components scaled to [0, 1],
   weighted 0.299 / 0.587 / 0.114), scored std + variance of block sums (an 8 x 8 block grid) +
   0.1 x mean Sobel magnitude; the highest score wins. The PCA is scikit-learn's seeded
   randomized SVD (their CPU path's); their GPU path's ``torch.svd_lowrank`` draws its start from
   torch's global generator, so its head can change from run to run (docs/parity.md).
2. Clusters: MeanShift over the 3 components of the chosen map plus 0.5 x the token coordinates,
   bandwidth at quantile 0.2 of up to 1000 samples.
3. Focus: the noun's map at >= 0.05 of its peak, specks removed by DBSCAN (eps 3, min_samples 5).
4. Instances: every cluster with >= 20% of its tokens in the focus, numbered in label order.
5. Too many: the smallest marked removed, one at a time. Too few: the smallest region's shape
   (a radius-5 disc when there is none) placed where overlap + squared distance to the centre
   of the foreground is least, on a 2-token grid of centres; copies may cover found instances.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from sklearn.cluster import DBSCAN, MeanShift, estimate_bandwidth
from sklearn.utils.extmath import randomized_svd

COMPONENTS = 3
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
BLOCK_GRID = 8
SOBEL_WEIGHT = 0.1
COORD_WEIGHT = 0.5
BANDWIDTH_QUANTILE = 0.2
BANDWIDTH_SAMPLES = 1000
FOCUS_RATIO = 0.05
DBSCAN_EPS = 3.0
DBSCAN_MIN_SAMPLES = 5
OVERLAP_TAU = 0.2
CIRCLE_RADIUS = 5
PLACEMENT_STEP = 2
CENTER_WEIGHT = 1.0
LABEL_REMOVED = -1
LABEL_ADDED = 100

Labels = NDArray[np.int64]


def _components(rows: NDArray[np.floating], constant: float | None = 0.5) -> NDArray[np.float64]:
    """3 principal scores (U S) of the centred rows, each scaled to [0, 1]; a constant one takes
    ``constant`` (their grey map) or stays as it is (``None``: their clustering)."""
    x = np.asarray(rows, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    u, s, _ = randomized_svd(centred, n_components=COMPONENTS, random_state=0)
    scores = u * s
    lo, hi = scores.min(axis=0), scores.max(axis=0)
    flat = hi - lo <= 1e-8
    scaled = (scores - lo) / np.where(flat, 1.0, hi - lo)
    return np.where(flat, scores if constant is None else constant, scaled)


def grayscale(attention: NDArray[np.floating]) -> NDArray[np.float64]:
    """One head's (N x N) self-attention map as a grey value per token."""
    return _components(attention) @ np.asarray(GRAY_WEIGHTS)


def head_score(attention: NDArray[np.floating], height: int, width: int) -> float:
    """How clearly a head's map separates structure: std + block-sum variance + 0.1 x Sobel."""
    gray = grayscale(attention)
    image = gray.reshape(height, width)
    bh, bw = max(1, height // BLOCK_GRID), max(1, width // BLOCK_GRID)
    cropped = image[: (height // bh) * bh, : (width // bw) * bw]
    sums = cropped.reshape(height // bh, bh, width // bw, bw).sum(axis=(1, 3))
    # Sobel with zero padding (scipy's correlate with mode="constant" is the conv2d they run).
    sx = ndimage.correlate(image, np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float), mode="constant")
    sy = ndimage.correlate(image, np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float), mode="constant")
    return float(gray.std(ddof=1) + sums.var(ddof=1) + SOBEL_WEIGHT * np.hypot(sx, sy).mean())


def select_head(maps: NDArray[np.floating], height: int, width: int) -> int:
    """The head (first axis of ``maps``) with the highest ``head_score``; the first on a tie."""
    scores = [head_score(m, height, width) for m in maps]
    return int(np.argmax(scores))


def clusters(attention: NDArray[np.floating], height: int, width: int) -> Labels:
    """MeanShift labels (H x W) of the tokens over the map's components and their coordinates."""
    features = _components(attention, constant=None)
    rows, cols = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    points = np.concatenate([features, COORD_WEIGHT * np.stack([rows, cols], -1).reshape(-1, 2)], axis=1)
    bandwidth = estimate_bandwidth(
        points, quantile=BANDWIDTH_QUANTILE, n_samples=min(BANDWIDTH_SAMPLES, len(points)), random_state=0
    )
    bandwidth = bandwidth if bandwidth > 0 else 0.5
    labels = MeanShift(bandwidth=bandwidth, bin_seeding=True).fit_predict(points)
    return labels.reshape(height, width).astype(np.int64)


def focus(cross_attention: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Tokens at >= 0.05 of the map's peak that DBSCAN keeps in a cluster."""
    cross = np.asarray(cross_attention)
    points = np.argwhere(cross >= FOCUS_RATIO * cross.max())
    out = np.zeros(cross.shape, dtype=bool)
    if len(points) == 0:
        return out
    kept = points[DBSCAN(eps=DBSCAN_EPS, min_samples=DBSCAN_MIN_SAMPLES).fit_predict(points) >= 0]
    out[kept[:, 0], kept[:, 1]] = True
    return out


def found_layout(
    attention: NDArray[np.floating], cross_attention: NDArray[np.floating]
) -> tuple[Labels, int]:
    """Instances numbered 1..k (clusters >= 20% in the focus) and k."""
    height, width = np.asarray(cross_attention).shape
    labels = clusters(attention, height, width)
    mask = focus(cross_attention)
    layout = np.zeros((height, width), dtype=np.int64)
    found = 0
    for label in np.unique(labels):
        region = labels == label
        if (region & mask).sum() >= OVERLAP_TAU * region.sum():
            found += 1
            layout[region] = found
    return layout, found


def _regions_by_size(layout: Labels) -> list[NDArray[np.bool_]]:
    """Masks of the positive labels, smallest first (label order among equal sizes)."""
    masks = [layout == label for label in sorted(set(layout.flat) - {0}) if label > 0]
    return sorted(masks, key=lambda m: int(m.sum()))


def _disc(radius: int) -> NDArray[np.bool_]:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(x * x + y * y <= radius * radius)


def _add(layout: Labels, label: int) -> Labels:
    """One more instance: the smallest region's shape (or a disc) at its cheapest centre."""
    regions = _regions_by_size(layout)
    if regions:
        rows, cols = np.nonzero(regions[0])
        template = regions[0][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    else:
        template = _disc(CIRCLE_RADIUS)
    height, width = layout.shape
    foreground = np.argwhere(layout > 0)
    cy, cx = foreground.mean(axis=0) if len(foreground) else (height / 2.0, width / 2.0)
    th, tw = template.shape
    best, best_at = float("inf"), (height // 2, width // 2)
    for y in range(th // 2, height - th // 2 + 1, PLACEMENT_STEP):
        for x in range(tw // 2, width - tw // 2 + 1, PLACEMENT_STEP):
            y0, x0 = y - th // 2, x - tw // 2
            if y0 < 0 or x0 < 0 or y0 + th > height or x0 + tw > width:
                continue
            overlap = float((template & (layout[y0 : y0 + th, x0 : x0 + tw] > 0)).sum())
            cost = overlap + CENTER_WEIGHT * ((y - cy) ** 2 + (x - cx) ** 2)
            if cost < best:
                best, best_at = cost, (y, x)
    out = layout.copy()
    y0, x0 = best_at[0] - th // 2, best_at[1] - tw // 2
    out[y0 : y0 + th, x0 : x0 + tw][template] = label
    return out


def refine(layout: Labels, found: int, count: int) -> Labels:
    """The layout with exactly ``count`` instances: smallest removed (-1) or copies added (100+)."""
    out = np.asarray(layout, dtype=np.int64).copy()
    for _ in range(found - count):
        regions = _regions_by_size(out)
        if regions:
            out[regions[0]] = LABEL_REMOVED
    for k in range(max(0, count - found)):
        out = _add(out, LABEL_ADDED + k)
    return out


def paper_layout(
    attention: NDArray[np.floating], cross_attention: NDArray[np.floating], count: int
) -> tuple[Labels, int]:
    """The refined label layout for ``count`` instances and how many the maps showed."""
    layout, found = found_layout(attention, cross_attention)
    return refine(layout, found, count), found
