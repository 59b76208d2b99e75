"""The toy world, its captions and the exact evaluator."""

from __future__ import annotations

import random

import numpy as np
import pytest

from scenewright.planner.plan import Plan, PlanObject, PlanRelation
from scenewright.tools.evaluator import classify_shape, detect, score_plan
from scenewright.toyworld.captions import caption
from scenewright.toyworld.scene import Group, Scene, SceneObject, random_scene
from scenewright.toyworld.shapes import shape_coverage
from scenewright.toyworld.vocab import COLORS, FILLER, SHAPES


def _box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_evaluator_recovers_at_least_99_percent_of_rendered_objects() -> None:
    rng = random.Random(123)
    total = recovered = 0
    for _ in range(150):
        scene, _ = random_scene(rng)
        detections = detect(scene.render())
        assert len(detections) == len(scene.objects)
        for obj in scene.objects:
            total += 1
            recovered += any(
                d.color == obj.color and d.shape == obj.shape and _box_iou(d.box, obj.box) > 0.5
                for d in detections
            )
    assert total > 400
    assert recovered / total >= 0.99


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_is_told_apart_at_small_and_large_sizes(shape: str) -> None:
    for size in (11, 16, 22):
        mask = shape_coverage(shape, size + 4, size + 4, (2, 2, 2 + size, 2 + size)) >= 0.5
        ys, xs = np.nonzero(mask)
        assert classify_shape(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])[0] == shape


def test_background_and_noise_are_not_objects() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.random((64, 64, 3)) * 40).astype(np.uint8)  # dark noise
    assert detect(noise) == []


def test_score_plan_judges_presence_counts_boxes_and_relations() -> None:
    scene = Scene(
        [
            SceneObject("circle", "red", (4, 20, 18, 34)),
            SceneObject("circle", "red", (4, 40, 18, 54)),
            SceneObject("square", "blue", (40, 24, 56, 40)),
        ]
    )
    image = scene.render()
    plan = Plan(
        prompt="two red circles left of a blue square",
        objects=[
            PlanObject(
                name="circle",
                count=2,
                attributes=["red"],
                boxes=[(0, 0.25, 0.35, 0.6), (0, 0.55, 0.35, 0.95)],
            ),
            PlanObject(name="square", count=1, attributes=["blue"], boxes=[(0.5, 0.2, 1, 0.8)]),
        ],
        relations=[PlanRelation(subject=0, relation="left of", object=1)],
    )
    score = score_plan(image, plan)
    assert score.all_present and score.counts_exact and score.all_in_boxes and score.relations_hold
    assert score.position_ok

    wrong = plan.model_copy(
        update={"relations": [PlanRelation(subject=0, relation="right of", object=1)]}, deep=True
    )
    assert not score_plan(image, wrong).relations_hold
    three = Plan(prompt="x", objects=[PlanObject(name="circles", count=3, attributes=["red"])])
    result = score_plan(image, three)
    assert result.objects[0].found == 2 and not result.counts_exact and result.all_present
    green = Plan(prompt="x", objects=[PlanObject(name="square", attributes=["green"])])
    assert not score_plan(image, green).all_present


def test_captions_name_counts_and_kinds_and_never_positions() -> None:
    groups = [Group("red", "circle", 3), Group("orange", "star", 1)]
    assert caption(groups) == "three red circles and an orange star"
    rng = random.Random(0)
    position_words = {"left", "right", "above", "below", "top", "under", "beside", "next"}
    for _ in range(200):
        scene, groups = random_scene(rng)
        text = caption(groups, rng)
        for g in groups:
            assert g.color in text and (SHAPES[g.shape] if g.count > 1 else g.shape) in text
        # Position words appear only as meaningless filler, never tied to where things are.
        assert all(w in FILLER for w in position_words)
        assert len(scene.objects) == sum(g.count for g in groups) <= 6
        assert all(o.color in COLORS for o in scene.objects)


def test_thin_components_are_shapeless_not_errors() -> None:
    assert classify_shape(np.ones((1, 9), dtype=bool)) == (None, 0.0)
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[10, 5:30] = (230, 40, 40)  # a one-pixel red line
    assert [d.shape for d in detect(image)] == [None]


def test_flat_components_of_any_aspect_are_classified_without_error() -> None:
    for height, width in ((3, 20), (20, 3), (4, 40)):
        shape, iou = classify_shape(np.ones((height, width), dtype=bool))
        assert shape in (None, "square") and 0.0 <= iou <= 1.0
