"""The layout engine on its own: random scenes, contradictions, priors, determinism, speed."""

from __future__ import annotations

import random

import pytest

from scenewright.planner.geometry import between_holds, group_holds, overlap_area
from scenewright.planner.layout import LayoutItem, layout
from scenewright.planner.lexicon import RELATIONS

NAMES = ("cat", "dog", "giraffe", "bus", "apple", "vase", "table", "circle", "wine glass", "tree")


def random_scene(rng: random.Random) -> tuple[list[LayoutItem], list[tuple[int, str, int]]]:
    n = rng.randint(1, 5)
    anchors = (None, None, None, "left", "right", "top", "bottom", "center")
    items = [LayoutItem(rng.choice(NAMES), rng.randint(1, 6), rng.choice(anchors)) for _ in range(n)]
    relations = []
    for _ in range(rng.randint(0, 4) if n > 1 else 0):
        s, o = rng.sample(range(n), 2)
        relation = rng.choice(RELATIONS)
        if relation == "between":  # needs two partners
            if n < 3:
                continue
            s, a, b = rng.sample(range(n), 3)
            relations.extend([(s, "between", a), (s, "between", b)])
        else:
            relations.append((s, relation, o))
    return items, relations


def check(items: list[LayoutItem], relations: list[tuple[int, str, int]], seed: int) -> list[str]:
    result = layout(items, relations, seed)
    problems = []
    for item, boxes in zip(items, result.boxes, strict=True):
        if len(boxes) != item.count:
            problems.append(f"{item.name}: {len(boxes)} boxes for {item.count}")
        for box in boxes:
            if not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
                problems.append(f"{item.name}: bad box {box}")
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if any(overlap_area(a, b) > 1e-6 for a in result.boxes[i] for b in result.boxes[j]):
                problems.append(f"objects {i} and {j} overlap")
    partners: dict[int, list[int]] = {}
    for k in result.kept:
        s, rel, o = relations[k]
        if rel == "between":
            partners.setdefault(s, []).append(o)
        elif not group_holds(rel, result.boxes[s], result.boxes[o]):
            problems.append(f"kept relation {relations[k]} does not hold")
    for s, others in partners.items():
        if not between_holds(result.boxes[s], result.boxes[others[0]], result.boxes[others[1]]):
            problems.append(f"between for {s} does not hold")
    dropped = len(relations) - len(result.kept)
    if dropped and len(result.warnings) < dropped:
        problems.append("a relation was dropped without a warning")
    return problems


def test_random_scenes_keep_every_promise() -> None:
    rng = random.Random(1234)
    kept = total = 0
    for trial in range(400):
        items, relations = random_scene(rng)
        assert check(items, relations, trial) == [], (items, relations)
        result = layout(items, relations, trial)
        kept += len(result.kept)
        total += len(relations)
    assert kept / total > 0.6  # most random relations are compatible and kept


@pytest.mark.parametrize("relation", [r for r in RELATIONS if r != "between"])
def test_each_relation_with_counts(relation: str) -> None:
    for a in range(1, 5):
        for b in range(1, 4):
            items = [LayoutItem("apple", a), LayoutItem("table", b)]
            result = layout(items, [(0, relation, 1)], seed=a * 10 + b)
            if relation in ("on", "under") and b > 1 and result.kept == []:
                continue  # resting on several tables at once may not fit; dropped with a warning
            assert result.kept == [0], (relation, a, b, result.warnings)
            assert check(items, [(0, relation, 1)], a * 10 + b) == []


def test_contradictions_are_dropped_with_warnings() -> None:
    items = [LayoutItem("cat", 1), LayoutItem("dog", 1), LayoutItem("bird", 1)]
    relations = [(0, "left of", 1), (1, "left of", 2), (2, "left of", 0), (0, "on", 0)]
    result = layout(items, relations)
    assert result.kept == [0, 1]
    assert len(result.warnings) == 2


def test_aspect_priors_shape_the_boxes() -> None:
    result = layout([LayoutItem("giraffe", 1), LayoutItem("bus", 1)], [])
    giraffe, bus = result.boxes[0][0], result.boxes[1][0]
    assert giraffe[3] - giraffe[1] > giraffe[2] - giraffe[0]
    assert bus[2] - bus[0] > 1.5 * (bus[3] - bus[1])


def test_deterministic_per_seed() -> None:
    items = [LayoutItem("apple", 5), LayoutItem("vase", 1, "right")]
    assert layout(items, [(0, "left of", 1)], 9).boxes == layout(items, [(0, "left of", 1)], 9).boxes
    assert layout(items, [(0, "left of", 1)], 9).boxes != layout(items, [(0, "left of", 1)], 10).boxes


def test_a_crowded_scene_still_lays_out_without_overlaps() -> None:
    """Six objects of four instances with four relations (speed belongs in benchmarks, not here)."""
    items = [LayoutItem(n, 4) for n in NAMES[:6]]
    relations = [(0, "left of", 1), (2, "on", 3), (4, "above", 5), (1, "next to", 2)]
    for seed in range(10):
        boxes = [box for group in layout(items, relations, seed).boxes for box in group]
        assert len(boxes) == 24
        assert all(overlap_area(a, b) <= 1e-6 for i, a in enumerate(boxes) for b in boxes[i + 1 :])
