"""Random scenes of coloured shapes on a black background, with their ground truth and caption."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from scenewright.toyworld.shapes import SUPERSAMPLE, Box, draw_shape
from scenewright.toyworld.vocab import COLORS, SHAPES

IMAGE_SIZE = 64
BACKGROUND = (0, 0, 0)
MIN_SIZE, MAX_SIZE = 11, 22
MARGIN = 2


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: its kind and its box in pixels ``(x0, y0, x1, y1)``."""

    shape: str
    color: str
    box: Box

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@dataclass
class Scene:
    objects: list[SceneObject] = field(default_factory=list)
    size: int = IMAGE_SIZE

    def render(self) -> np.ndarray:
        """The scene as an anti-aliased uint8 (H, W, 3) array."""
        s = SUPERSAMPLE
        canvas = Image.new("RGB", (self.size * s, self.size * s), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        for obj in self.objects:
            draw_shape(draw, obj.shape, tuple(v * s for v in obj.box), COLORS[obj.color], BACKGROUND)  # type: ignore[arg-type]
        return np.asarray(canvas.resize((self.size, self.size), Image.Resampling.BOX))


def _overlaps(box: Box, others: list[Box]) -> bool:
    return any(
        box[0] < o[2] + MARGIN
        and o[0] < box[2] + MARGIN
        and box[1] < o[3] + MARGIN
        and o[1] < box[3] + MARGIN
        for o in others
    )


def place_boxes(rng: random.Random, sizes: list[float], image_size: int = IMAGE_SIZE) -> list[Box] | None:
    """Non-overlapping square boxes of the given sizes, or None if they do not fit."""
    boxes: list[Box] = []
    for size in sizes:
        for _ in range(200):
            x0 = rng.uniform(1, image_size - 1 - size)
            y0 = rng.uniform(1, image_size - 1 - size)
            box = (round(x0, 1), round(y0, 1), round(x0 + size, 1), round(y0 + size, 1))
            if not _overlaps(box, boxes):
                boxes.append(box)
                break
        else:
            return None
    return boxes


@dataclass(frozen=True)
class Group:
    """``count`` objects sharing a colour and a shape: what one caption phrase names."""

    color: str
    shape: str
    count: int


# How often each shape is drawn against the others, by name (an absent name weighs 1); empty: uniform.
ShapeWeights = tuple[tuple[str, float], ...]


def pick_shape(rng: random.Random, weights: ShapeWeights = ()) -> str:
    """A shape name, uniform unless ``weights`` favour some (training oversamples the shapes the
    model loses beside others). Uniform draws use ``rng.choice`` as before, so batches of runs
    without weights stay the same."""
    if not weights:
        return rng.choice(list(SHAPES))
    table = dict(weights)
    return rng.choices(list(SHAPES), weights=[table.get(name, 1.0) for name in SHAPES])[0]


def random_groups(rng: random.Random, max_objects: int = 6, shape_weights: ShapeWeights = ()) -> list[Group]:
    """Groups with distinct (colour, shape), biased to few objects as captions get harder."""
    n_groups = rng.choices([1, 2, 3], weights=[0.45, 0.4, 0.15])[0]
    kinds: set[tuple[str, str]] = set()
    groups: list[Group] = []
    budget = max_objects
    for index in range(n_groups):
        left = n_groups - index - 1
        most = max(1, min(budget - left, 6 if n_groups == 1 else 4))
        count = rng.choices(range(1, most + 1), weights=[3.0] + [1.0] * (most - 1))[0]
        while True:
            kind = (rng.choice(list(COLORS)), pick_shape(rng, shape_weights))
            if kind not in kinds:
                kinds.add(kind)
                break
        groups.append(Group(kind[0], kind[1], count))
        budget -= count
    return groups


def simple_groups(rng: random.Random, shape_weights: ShapeWeights = ()) -> list[Group]:
    """One object, or two single objects of different kinds: the scenes the vanilla bars ask for.

    Training mixes these in (``TrainConfig.simple_fraction``) because ``random_groups`` rarely
    draws them, and a default model that cannot draw one or two things cannot be composed either.
    """
    first = (rng.choice(list(COLORS)), pick_shape(rng, shape_weights))
    groups = [Group(first[0], first[1], 1)]
    if rng.random() < 0.5:
        while True:
            second = (rng.choice(list(COLORS)), pick_shape(rng, shape_weights))
            if second != first:
                break
        groups.append(Group(second[0], second[1], 1))
    return groups


def random_scene(rng: random.Random, groups: list[Group] | None = None) -> tuple[Scene, list[Group]]:
    """A scene realising ``groups`` (random ones if not given) at random sizes and places."""
    while True:
        chosen = groups if groups is not None else random_groups(rng)
        kinds = [(g.color, g.shape) for g in chosen for _ in range(g.count)]
        big = len(kinds) <= 2
        sizes = [rng.uniform(MIN_SIZE, MAX_SIZE if big else MAX_SIZE - 4) for _ in kinds]
        boxes = place_boxes(rng, sizes)
        if boxes is not None:
            objects = [
                SceneObject(shape, color, box) for (color, shape), box in zip(kinds, boxes, strict=True)
            ]
            return Scene(objects), chosen
