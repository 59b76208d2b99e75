"""NUMINA counting layouts on synthetic attention: found instances, then exactly the count."""

from __future__ import annotations

import numpy as np
import pytest

from scenewright.errors import InvalidInputError
from scenewright.planner.count_layout import build_count_layout, noun_focus
from scenewright.planner.geometry import overlap_area

H = W = 24


def synthetic(
    centres: list[tuple[int, int]], radius: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Self-attention features with one prototype per blob (plus background) and a noun
    cross-attention map peaked on the blobs: what a reference pass shows for len(centres) objects."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:H, :W]
    protos = rng.normal(0, 1, (len(centres) + 1, 16))
    features = protos[0] + rng.normal(0, 0.05, (H * W, 16))
    cross = rng.uniform(0, 0.01, (H, W))
    for k, (r, c) in enumerate(centres):
        dist2 = (rows - r) ** 2 + (cols - c) ** 2
        features[(dist2 <= radius**2).ravel()] += protos[k + 1] - protos[0]
        cross += np.exp(-dist2 / (2 * (radius / 2) ** 2))
    return features, cross


THREE = [(6, 6), (6, 17), (17, 11)]


def _disjoint(boxes: list[tuple[float, float, float, float]]) -> bool:
    return all(overlap_area(a, b) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_finds_the_instances_of_the_reference_pass() -> None:
    features, cross = synthetic(THREE)
    layout = build_count_layout(features, cross, 3)
    assert layout.found == 3 and len(layout.instances) == 3 and layout.removed == []
    centres = sorted(((b[1] + b[3]) / 2 * H, (b[0] + b[2]) / 2 * W) for b in layout.boxes)
    for (r, c), (er, ec) in zip(centres, sorted(THREE), strict=True):
        assert abs(r - er - 0.5) <= 0.5 and abs(c - ec - 0.5) <= 0.5  # box ends are exclusive
    assert all(inst.origin == "found" for inst in layout.instances)
    assert layout.clusters is not None and layout.clusters.shape == (H, W)


def test_too_many_drops_the_smallest() -> None:
    features, cross = synthetic([(6, 6), (6, 17), (18, 12)], radius=4, seed=2)
    # Shrink the third blob: its tokens outside radius 2 go back to the background prototype.
    rows, cols = np.mgrid[:H, :W]
    dist2 = ((rows - 18) ** 2 + (cols - 12) ** 2).ravel()
    ring = (dist2 > 4) & (dist2 <= 16)
    features[ring] = features[0]
    cross.ravel()[ring] = 0.0
    layout = build_count_layout(features, cross, 2)
    assert layout.found == 3 and len(layout.instances) == 2 and len(layout.removed) == 1
    assert layout.removed[0].area < min(inst.area for inst in layout.instances)
    assert layout.removed[0].box[1] > 0.6  # the small blob at the bottom went


@pytest.mark.parametrize("count", [4, 6])
def test_too_few_copies_the_smallest_shape_to_free_places(count: int) -> None:
    features, cross = synthetic(THREE)
    layout = build_count_layout(features, cross, count)
    assert len(layout.instances) == count and len(layout.added) == count - 3
    smallest = min(inst.area for inst in layout.instances if inst.origin == "found")
    for inst in layout.added:
        assert inst.area == smallest  # the copied shape
    masks = np.stack([inst.mask for inst in layout.instances])
    assert masks.sum(axis=0).max() == 1  # no two instances share a token
    if count == 4:  # room for one more box beside the three; and the same result every time
        assert _disjoint(layout.boxes)
        assert build_count_layout(features, cross, count).boxes == layout.boxes
    assert all(0 <= v <= 1 for box in layout.boxes for v in box)


def test_no_instance_seen_still_yields_the_count() -> None:
    rng = np.random.default_rng(0)
    layout = build_count_layout(rng.normal(0, 0.01, size=(H * W, 8)), np.zeros((H, W)), 2)
    assert layout.found == 0 and len(layout.instances) == 2 and _disjoint(layout.boxes)


def test_focus_threshold_and_speck_removal() -> None:
    cross = np.zeros((H, W))
    cross[5:12, 5:12] = 1.0
    cross[20, 20] = 0.9  # a lone speck: DBSCAN noise
    cross[0, 23] = 0.04  # under 5% of the peak
    focus = noun_focus(cross)
    assert focus[5:12, 5:12].all() and not focus[20, 20] and not focus[0, 23]


@pytest.mark.parametrize(
    ("features_shape", "cross_shape", "count", "field"),
    [
        ((H * W, 8), (H, W), 0, "count"),
        ((H * W, 8), (H, W), 99, "count"),
        ((10, 8), (H, W), 2, "self_attention_features"),
        ((H * W, 8), (H * W,), 2, "cross_attention"),
    ],
)
def test_bad_inputs_name_the_field(
    features_shape: tuple[int, ...], cross_shape: tuple[int, ...], count: int, field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        build_count_layout(np.zeros(features_shape), np.zeros(cross_shape), count)
    assert info.value.field == field


def test_leading_components_match_the_exact_svd_on_large_feature_matrices() -> None:
    from scenewright.planner.count_layout import EXACT_SVD_MAX, leading_components

    rng = np.random.default_rng(0)
    # Three strong directions over noise, wider than the exact-SVD limit: the randomized path.
    scores = rng.standard_normal((1024, 3)) * np.array([40.0, 20.0, 10.0])
    x = scores @ rng.standard_normal((3, EXACT_SVD_MAX + 88)) + 0.1 * rng.standard_normal(
        (1024, EXACT_SVD_MAX + 88)
    )
    x -= x.mean(axis=0)
    fast = leading_components(x, 3)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    exact = u[:, :3] * s[:3]
    for i in range(3):  # equal up to the sign of each component
        cosine = abs(fast[:, i] @ exact[:, i]) / (np.linalg.norm(fast[:, i]) * np.linalg.norm(exact[:, i]))
        assert cosine > 0.999
    assert np.allclose(np.linalg.norm(fast, axis=0), s[:3], rtol=1e-3)


def test_instances_of_one_noun_sharing_features_on_a_diffuse_map_count_apart() -> None:
    """A small model's reference pass: every instance has the same features (one prototype) and
    the noun's map never falls below a third of its peak. The instances are still told apart
    (connected pieces), and the diffuse floor is not mistaken for one (Otsu's threshold)."""
    rng = np.random.default_rng(4)
    rows, cols = np.mgrid[:H, :W]
    background, heart = rng.normal(0, 1, (2, 16))
    features = background + rng.normal(0, 0.05, (H * W, 16))
    cross = 0.35 + rng.uniform(0, 0.05, (H, W))
    centres = [(5, 5), (5, 18), (18, 5), (18, 18)]
    for r, c in centres:
        disc = ((rows - r) ** 2 + (cols - c) ** 2 <= 9).ravel()
        features[disc] = heart + rng.normal(0, 0.05, (int(disc.sum()), 16))
        cross.ravel()[disc] = 1.0
    layout = build_count_layout(features, cross, 3)
    assert layout.found == 4 and len(layout.instances) == 3 and len(layout.removed) == 1
    for inst in [*layout.instances, *layout.removed]:
        r0, c0 = inst.box[1] * H, inst.box[0] * W
        assert any(abs(r0 - (r - 3)) <= 1 and abs(c0 - (c - 3)) <= 1 for r, c in centres)


def test_otsu_threshold_splits_two_levels() -> None:
    from scenewright.planner.count_layout import otsu_threshold

    values = np.concatenate([np.full(100, 0.3), np.full(20, 0.9)])
    assert 0.3 < otsu_threshold(values) <= 0.9
    assert otsu_threshold(np.full(5, 0.7)) == 0.7


def test_touching_instances_of_one_piece_are_split_at_their_peaks() -> None:
    """Two blobs that touch make one connected piece of one feature cluster; the noun's map has a
    peak on each, so the layout still finds two (before the peak split it found one)."""
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[:H, :W]
    background, star = rng.normal(0, 1, (2, 16))
    features = background + rng.normal(0, 0.05, (H * W, 16))
    cross = rng.uniform(0, 0.01, (H, W))
    for r, c in [(12, 8), (12, 15)]:
        dist2 = (rows - r) ** 2 + (cols - c) ** 2
        features[(dist2 <= 16).ravel()] = star + rng.normal(0, 0.05, (int((dist2 <= 16).sum()), 16))
        cross += np.exp(-dist2 / 8.0)
    layout = build_count_layout(features, cross, 2)
    assert layout.found == 2 and layout.removed == [] and len(layout.instances) == 2
    lefts = sorted(inst.box[0] * W for inst in layout.instances)
    assert lefts[0] < 8 < lefts[1] <= 12  # one instance each side of the seam (column 11.5)
    masks = np.stack([inst.mask for inst in layout.instances])
    assert masks.sum(axis=0).max() == 1  # the split shares no token


def test_split_at_peaks_keeps_a_piece_with_one_peak_whole() -> None:
    from scenewright.planner.count_layout import split_at_peaks

    piece = np.zeros((8, 8), dtype=bool)
    piece[2:6, 1:7] = True
    assert [m.sum() for m in split_at_peaks([piece], [(3, 3)])] == [24]
    halves = split_at_peaks([piece], [(3, 1), (3, 6)])
    assert [int(m.sum()) for m in halves] == [12, 12]
    assert halves[0][2:6, 1:4].all() and not halves[0][:, 4:].any()
