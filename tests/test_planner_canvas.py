"""Layouts that use the canvas: 2-D arrangements, boxes the embedded model can draw, no overlaps."""

from __future__ import annotations

import random

import pytest

from scenewright.planner.canvas import MIN_BOX_SIDE, Leaf, Split, fit_unit, place
from scenewright.planner.geometry import group_holds, overlap_area, union_box
from scenewright.planner.layout import LayoutItem, layout
from scenewright.planner.rules import plan_with_rules

README = "three red circles left of a blue square, a green triangle on the right"
SHAPES = ("circle", "square", "triangle", "star", "heart", "cross")


def short_side(box: tuple[float, float, float, float]) -> float:
    return min(box[2] - box[0], box[3] - box[1])


def test_fit_unit_is_the_largest_slot_that_fits() -> None:
    row = Split("row", [Leaf(0, 1, 3), Leaf(1, 1, 1)])  # four slots and one gutter across
    unit = fit_unit(row)
    assert unit * 4 + 0.04 == pytest.approx(0.92)
    rects = place(row, unit)
    assert rects[0][2] <= rects[1][0] - 0.04 + 1e-9  # the gutter is kept


@pytest.mark.parametrize("seed", range(4))
def test_readme_example_is_two_dimensional_and_drawable(seed: int) -> None:
    plan = plan_with_rules(README, seed).plan
    circles, square, triangle = (o.boxes for o in plan.objects)
    assert len({round(b[1], 2) for b in circles}) == 3  # the three circles are stacked, not a thin row
    assert all(short_side(b) >= MIN_BOX_SIDE - 1e-4 for o in plan.objects for b in o.boxes)
    assert group_holds("left of", circles, square) and group_holds("left of", square, triangle)
    assert triangle[0][0] > 0.5  # "on the right"
    everything = union_box([b for o in plan.objects for b in o.boxes])
    assert everything[2] - everything[0] > 0.8 and everything[3] - everything[1] > 0.7  # the canvas is used


def test_counts_are_grids() -> None:
    stars = plan_with_rules("five red stars").plan.objects[0].boxes
    rows = sorted({round(b[1], 2) for b in stars})
    assert len(rows) == 2 and all(short_side(b) >= MIN_BOX_SIDE - 1e-4 for b in stars)


def test_unrelated_objects_wrap_into_bands() -> None:
    plan = plan_with_rules(
        "a red circle, a blue square, a green triangle, a yellow star, a purple heart"
    ).plan
    tops = {round(o.boxes[0][1], 1) for o in plan.objects}
    assert len(tops) >= 2  # not one thin row of five
    assert all(short_side(o.boxes[0]) >= MIN_BOX_SIDE - 1e-4 for o in plan.objects)


def test_too_many_instances_say_so() -> None:
    result = layout([LayoutItem("circle", 12), LayoutItem("square", 12)], [])
    assert any("under the 0.22" in w for w in result.warnings)


def test_random_toy_scenes_keep_the_minimum_and_never_overlap() -> None:
    rng = random.Random(7)
    relations = ("left of", "right of", "above", "below", "next to")
    for trial in range(300):
        n = rng.randint(1, 4)
        items = [LayoutItem(rng.choice(SHAPES), rng.randint(1, 3)) for _ in range(n)]
        rels = [(i, rng.choice(relations), i + 1) for i in range(n - 1) if rng.random() < 0.7]
        result = layout(items, rels, trial)
        boxes = result.boxes
        for i in range(n):
            for j in range(i + 1, n):
                assert all(overlap_area(a, b) <= 1e-6 for a in boxes[i] for b in boxes[j])
        for k in result.kept:
            s, rel, o = rels[k]
            assert group_holds(rel, boxes[s], boxes[o])
        small = any(short_side(b) < MIN_BOX_SIDE - 1e-4 for group in boxes for b in group)
        assert small == any("under the" in w for w in result.warnings)  # never silently too small
        if n <= 3 and sum(item.count for item in items) <= 6:  # as many as the model was trained on
            assert not small, (items, rels)
