"""NUMINA counting layouts: instances of a noun from a reference pass's attention, then exactly
the requested count of them.

Inputs are plain numpy arrays so that this module needs no model: the self-attention features of
the image tokens (N x D, N = H * W, row-major) and the counted noun's cross-attention map (H x W),
both read at a middle layer of a short reference pass. The steps follow the method's public
description (see shared/methods.md):

1. Cluster the tokens with MeanShift over 3 SVD components of the features plus 0.5 x the token
   coordinates (all scaled to [0, 1]), bandwidth estimated at quantile 0.2.
2. The noun's focus: cross-attention at least 0.05 of its peak, cleaned of specks by DBSCAN
   (eps 3, min_samples 5) over the pixel coordinates. Ours: also at least Otsu's threshold of
   the map, because a small model's map is diffuse (on the 16x16-token toy model every token
   holds over a fifth of the peak, so 0.05 of it marks the whole image).
3. A cluster is an instance if at least 20% of it lies in the focus. Ours: the instances are the
   connected pieces of those clusters together, because instances of one noun share their
   features and MeanShift puts them all in one cluster (on the toy model 7 hearts were one
   "instance"), while an object's rim may fall in a cluster of its own; pieces under a quarter
   of the largest are fringes, not instances. Ours again: a piece that holds several peaks of
   the noun's map (smoothed, each the maximum of its neighbourhood) is split between them, token
   by token to the nearest peak, because touching instances make one connected piece (on the
   16x16-token toy model the pieces alone matched the count the image went on to draw in 40% of
   cases, split at the peaks in 71%).
4. Too many instances: drop the smallest. Too few: copy the smallest instance's shape to the
   free place that overlaps least with the others and lies nearest to them (grid search).

The executor then biases attention down on removed instances and up on added ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal
from sklearn.cluster import DBSCAN, MeanShift, estimate_bandwidth
from sklearn.utils.extmath import randomized_svd

from scenewright.errors import InvalidInputError
from scenewright.planner.plan import MAX_COUNT

SVD_COMPONENTS = 3
EXACT_SVD_MAX = 512
RANDOMIZED_SVD_ITERATIONS = 7
COORD_WEIGHT = 0.5
BANDWIDTH_QUANTILE = 0.2
FOCUS_THRESHOLD = 0.05
DBSCAN_EPS = 3.0
DBSCAN_MIN_SAMPLES = 5
INSTANCE_FRACTION = 0.2
# A connected piece of a cluster smaller than this many tokens is a fringe, not an instance.
MIN_INSTANCE_TOKENS = 2
MIN_INSTANCE_SHARE = 0.25
OTSU_BINS = 64
# Peaks that split a piece: the noun's map smoothed by a gaussian of this share of the grid's
# short side (0.7 token at 16x16), and a peak must be the maximum within a window of this share
# (5 tokens at 16x16); chosen on the toy model's tuning cases (docs/benchmarks.md). Both scale
# with the grid, since an object of a counted group spans about the same share of the image.
PEAK_SMOOTHING_SHARE = 0.045
PEAK_WINDOW_SHARE = 0.3

Mask = NDArray[np.bool_]


@dataclass
class Instance:
    """One instance on the token grid: its mask, its box (normalised x0, y0, x1, y1) and origin."""

    mask: Mask
    box: tuple[float, float, float, float]
    origin: str  # "found" (from the reference pass) or "added" (copied to reach the count)

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class CountLayout:
    """The instances to draw (exactly ``count``), those removed, and the intermediate maps."""

    instances: list[Instance]
    removed: list[Instance] = field(default_factory=list)
    clusters: NDArray[np.int_] | None = None  # H x W MeanShift labels
    focus: Mask | None = None  # H x W cleaned cross-attention focus
    found: int = 0  # instances seen in the reference pass

    @property
    def boxes(self) -> list[tuple[float, float, float, float]]:
        return [inst.box for inst in self.instances]

    @property
    def added(self) -> list[Instance]:
        return [inst for inst in self.instances if inst.origin == "added"]


def mask_box(mask: Mask) -> tuple[float, float, float, float]:
    """Normalised box around a mask on its grid (x1, y1 exclusive, so one token has an area)."""
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    return (
        round(float(cols.min()) / w, 4),
        round(float(rows.min()) / h, 4),
        round(float(cols.max() + 1) / w, 4),
        round(float(rows.max() + 1) / h, 4),
    )


def _scale(columns: NDArray[np.float64]) -> NDArray[np.float64]:
    lo, hi = columns.min(axis=0), columns.max(axis=0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    return (columns - lo) / span


def leading_components(x: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """The first ``k`` principal scores (U S) of centred ``x`` (tokens x features).

    Exact SVD on small matrices (the toy world's); above ``EXACT_SVD_MAX`` on the short side, a
    randomized SVD: a full SVD of FLUX.1's 4096 x 3072 block features takes minutes on a CPU, the
    three leading components by randomized power iterations about a second.
    """
    k = min(k, x.shape[1], x.shape[0])
    if min(x.shape) <= EXACT_SVD_MAX:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        return u[:, :k] * s[:k]
    u, s, _ = randomized_svd(x, k, n_iter=RANDOMIZED_SVD_ITERATIONS, random_state=0)
    return u * s


def cluster_tokens(features: NDArray[np.floating], height: int, width: int) -> NDArray[np.int_]:
    """MeanShift labels (H x W) over SVD components of the features plus scaled coordinates."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    components = _scale(leading_components(x, SVD_COMPONENTS))
    rows, cols = np.divmod(np.arange(height * width), width)
    coords = np.stack([rows / max(1, height - 1), cols / max(1, width - 1)], axis=1)
    points = np.concatenate([components, COORD_WEIGHT * coords], axis=1)
    bandwidth = estimate_bandwidth(
        points, quantile=BANDWIDTH_QUANTILE, n_samples=min(len(points), 600), random_state=0
    )
    if not np.isfinite(bandwidth) or bandwidth <= 0:
        return np.zeros((height, width), dtype=np.int_)
    labels = MeanShift(bandwidth=bandwidth, bin_seeding=True).fit_predict(points)
    return labels.reshape(height, width).astype(np.int_)


def otsu_threshold(values: NDArray[np.floating], bins: int = OTSU_BINS) -> float:
    """The threshold that best splits ``values`` into two classes (Otsu's between-class variance).

    Written here rather than taken from scikit-image: a dozen lines of numpy against a new
    dependency for one function."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(flat.min()), float(flat.max())
    if hi - lo <= 1e-12:
        return lo
    counts, edges = np.histogram(flat, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])


def noun_focus(cross_attention: NDArray[np.floating]) -> Mask:
    """Tokens that attend to the noun: >= 0.05 of the peak and >= Otsu's threshold, specks
    removed by DBSCAN."""
    attn = np.asarray(cross_attention, dtype=np.float64)
    peak = float(attn.max()) if attn.size else 0.0
    if peak <= 0:
        return np.zeros(attn.shape, dtype=bool)
    raw = attn >= max(FOCUS_THRESHOLD * peak, otsu_threshold(attn))
    points = np.argwhere(raw)
    if len(points) < DBSCAN_MIN_SAMPLES:
        return np.zeros(attn.shape, dtype=bool)
    labels = DBSCAN(eps=DBSCAN_EPS, min_samples=DBSCAN_MIN_SAMPLES).fit_predict(points)
    focus = np.zeros(attn.shape, dtype=bool)
    kept = points[labels >= 0]
    focus[kept[:, 0], kept[:, 1]] = True
    return focus


def _grid_shapes(height: int, width: int, count: int) -> list[Mask]:
    """``count`` discs on a grid, used when the reference pass shows no instance at all."""
    cols = int(np.ceil(np.sqrt(count)))
    rows_n = int(np.ceil(count / cols))
    cell_h, cell_w = height / rows_n, width / cols
    radius = max(0.5, 0.4 * min(cell_h, cell_w))
    rr, cc = np.ogrid[:height, :width]
    shapes = []
    for k in range(count):
        r, c = divmod(k, cols)
        cy, cx = (r + 0.5) * cell_h - 0.5, (c + 0.5) * cell_w - 0.5
        shapes.append(np.asarray((rr - cy) ** 2 + (cc - cx) ** 2 <= radius**2, dtype=bool))
    return shapes


def _rect(mask: Mask) -> Mask:
    """The filled bounding rectangle of a mask."""
    rows, cols = np.nonzero(mask)
    out = np.zeros_like(mask)
    out[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    return out


def _place_copy(shape: Mask, taken: Mask, anchor: tuple[float, float]) -> Mask:
    """The shape moved to the spot with least overlap with ``taken``, then nearest ``anchor``."""
    h, w = taken.shape
    rows, cols = np.nonzero(shape)
    r0, c0 = rows.min(), cols.min()
    patch = shape[r0 : rows.max() + 1, c0 : cols.max() + 1]
    sh, sw = patch.shape
    # Search with the shape's bounding rectangle so that boxes, not only masks, stay apart.
    # cost[top, left]: taken tokens under the rectangle placed there; a one-token halo around
    # taken tokens costs a quarter, so that copies keep a gap when there is room.
    footprint = np.ones((sh, sw))
    overlap = signal.correlate2d(taken.astype(np.float64), footprint, mode="valid")
    halo = ndimage.binary_dilation(taken, iterations=1) & ~taken
    cost = overlap + 0.25 * signal.correlate2d(halo.astype(np.float64), footprint, mode="valid")
    tops, lefts = np.mgrid[0 : h - sh + 1, 0 : w - sw + 1]
    dist = np.hypot(tops + sh / 2 - anchor[0], lefts + sw / 2 - anchor[1])
    order = np.lexsort((lefts.ravel(), tops.ravel(), dist.ravel(), np.round(cost.ravel(), 6)))
    top, left = int(tops.ravel()[order[0]]), int(lefts.ravel()[order[0]])
    out = np.zeros_like(taken)
    out[top : top + sh, left : left + sw] = patch
    return out


def _instance_masks(clusters: NDArray[np.int_], focus: Mask) -> list[Mask]:
    """The connected pieces of the clusters that lie at least 20% in the focus; pieces under a
    quarter of the largest one (fringes of an object or of the background) are dropped."""
    if not focus.any():
        return []
    object_labels = [
        label
        for label in np.unique(clusters[focus])
        if (focus & (clusters == label)).sum() >= INSTANCE_FRACTION * (clusters == label).sum()
    ]
    pieces, n_pieces = ndimage.label(np.isin(clusters, object_labels), structure=np.ones((3, 3)))
    masks = [pieces == piece for piece in range(1, n_pieces + 1)]
    largest = max((int(m.sum()) for m in masks), default=0)
    floor = max(MIN_INSTANCE_TOKENS, MIN_INSTANCE_SHARE * largest)
    return [m for m in masks if m.sum() >= floor]


def attention_peaks(cross_attention: NDArray[np.floating], focus: Mask) -> list[tuple[int, int]]:
    """The (row, col) tokens in ``focus`` where the smoothed map is the maximum of its window; a
    plateau of equal maxima counts once (its first token)."""
    side = min(cross_attention.shape)
    smoothed = ndimage.gaussian_filter(
        np.asarray(cross_attention, dtype=np.float64), PEAK_SMOOTHING_SHARE * side
    )
    window = max(3, round(PEAK_WINDOW_SHARE * side))
    highest = ndimage.maximum_filter(smoothed, size=window, mode="constant", cval=-np.inf)
    groups, n_groups = ndimage.label((smoothed == highest) & focus, structure=np.ones((3, 3)))
    firsts = [np.argwhere(groups == g)[0] for g in range(1, n_groups + 1)]
    return [(int(r), int(c)) for r, c in firsts]


def split_at_peaks(pieces: list[Mask], peaks: list[tuple[int, int]]) -> list[Mask]:
    """Each piece holding two or more peaks divided among them (every token to its nearest peak);
    a piece with one peak or none stays whole."""
    out: list[Mask] = []
    for piece in pieces:
        inside = [p for p in peaks if piece[p]]
        if len(inside) < 2:
            out.append(piece)
            continue
        tokens = np.argwhere(piece)
        distance = np.linalg.norm(tokens[:, None, :] - np.asarray(inside)[None, :, :], axis=2)
        nearest = distance.argmin(axis=1)
        for k in range(len(inside)):
            part = np.zeros_like(piece)
            chosen = tokens[nearest == k]
            part[chosen[:, 0], chosen[:, 1]] = True
            out.append(part)
    return out


def build_count_layout(
    self_attention_features: NDArray[np.floating],
    cross_attention: NDArray[np.floating],
    count: int,
) -> CountLayout:
    """Exactly ``count`` instances for the noun; see the module doc for the steps."""
    cross = np.asarray(cross_attention)
    if cross.ndim != 2 or min(cross.shape) < 2:
        raise InvalidInputError(
            "cross_attention", f"has shape {cross.shape}", "pass one H x W map for the noun"
        )
    h, w = cross.shape
    feats = np.asarray(self_attention_features)
    if feats.ndim != 2 or feats.shape[0] != h * w:
        raise InvalidInputError(
            "self_attention_features",
            f"has shape {feats.shape} for a {h} x {w} grid",
            f"pass one row per image token ({h * w} x D)",
        )
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInputError(
            "count", f"{count} is outside 1..{MAX_COUNT}", f"ask for 1 to {MAX_COUNT} instances"
        )
    focus = noun_focus(cross)
    # No focus, no instance: skip the clustering (the costly step) altogether.
    clusters = cluster_tokens(feats, h, w) if focus.any() else np.full((h, w), -1, dtype=np.int_)
    pieces = (
        split_at_peaks(_instance_masks(clusters, focus), attention_peaks(cross, focus)) if focus.any() else []
    )
    found = [Instance(mask, mask_box(mask), "found") for mask in pieces]
    seen = len(found)
    found.sort(key=lambda inst: -inst.area)
    removed = found[count:]
    instances = found[:count]
    if not instances:
        instances = [Instance(m, mask_box(m), "added") for m in _grid_shapes(h, w, count)]
    if len(instances) < count:
        shape = min(instances, key=lambda inst: inst.area).mask
        taken = np.zeros((h, w), dtype=bool)  # the instances' bounding rectangles
        for inst in instances:
            taken |= _rect(inst.mask)
        while len(instances) < count:
            rows, cols = np.nonzero(taken)
            anchor = (float(rows.mean()), float(cols.mean()))
            copy = _place_copy(shape, taken, anchor)
            instances.append(Instance(copy, mask_box(copy), "added"))
            taken |= _rect(copy)
    return CountLayout(instances, removed, clusters, focus, seen)
