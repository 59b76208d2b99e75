"""The exact judge of the toy world: find coloured shapes in an image and score a plan.

Pixels are classified by colour direction (an anti-aliased edge pixel is a dimmer copy of its
colour on the black background), grouped into connected components per colour, and each
component's shape is the template (drawn by the same code that draws scenes) with the highest
IoU. Deterministic and exact on rendered scenes; tolerant of the softness of generated ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from scenewright.planner.plan import Plan, PlanObject
from scenewright.tools.checks import CountedObject, covers_boxes, judge_relations
from scenewright.toyworld.shapes import shape_coverage
from scenewright.toyworld.vocab import COLORS, SHAPES

_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[c] for c in _PALETTE_NAMES], dtype=np.float32)
_PLURAL_TO_SHAPE = {plural: shape for shape, plural in SHAPES.items()}

MIN_ALPHA = 0.5  # a pixel is an object pixel when at least half covered
MAX_RESIDUAL = 70.0  # distance from the nearest colour direction, in 8-bit units
MIN_AREA = 12  # smaller components are noise (the smallest drawn object covers about 90 pixels)
MIN_SHAPE_IOU = 0.55


@dataclass(frozen=True)
class Detection:
    """An object found in an image; ``box`` is ``(x0, y0, x1, y1)`` in pixels, end-exclusive."""

    color: str
    shape: str | None  # None when no template fits well enough
    box: tuple[int, int, int, int]
    area: int
    shape_iou: float

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def _as_array(image: np.ndarray | Image.Image) -> np.ndarray:
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got shape {array.shape}")
    return array.astype(np.float32)


def classify_pixels(image: np.ndarray | Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: the palette index (-1 for background) and its coverage alpha."""
    pixels = _as_array(image)
    norms = (_PALETTE**2).sum(axis=1)
    alpha = np.einsum("hwc,kc->hwk", pixels, _PALETTE) / norms  # best scale of each colour
    alpha = np.clip(alpha, 0.0, 1.5)
    residual = np.linalg.norm(pixels[:, :, None, :] - alpha[..., None] * _PALETTE, axis=-1)
    best = residual.argmin(axis=-1)
    best_alpha = np.take_along_axis(alpha, best[..., None], axis=-1)[..., 0]
    best_residual = np.take_along_axis(residual, best[..., None], axis=-1)[..., 0]
    labels = np.where((best_alpha >= MIN_ALPHA) & (best_residual <= MAX_RESIDUAL), best, -1)
    return labels, best_alpha


def classify_shape(mask: np.ndarray) -> tuple[str | None, float]:
    """Best-fitting shape template for a component mask cropped to its bounding box."""
    height, width = mask.shape
    if min(height, width) < 3:  # a line of pixels is no shape (and cannot hold a template)
        return None, 0.0
    scores = {}
    for shape in SHAPES:
        template = shape_coverage(shape, width, height, (0.0, 0.0, float(width), float(height))) >= 0.5
        union = np.logical_or(template, mask).sum()
        scores[shape] = float(np.logical_and(template, mask).sum() / union) if union else 0.0
    best = max(scores, key=lambda s: scores[s])
    return (best if scores[best] >= MIN_SHAPE_IOU else None), scores[best]


def detect(image: np.ndarray | Image.Image) -> list[Detection]:
    """Every coloured object in ``image``, in reading order (top to bottom, left to right)."""
    labels, _ = classify_pixels(image)
    found: list[Detection] = []
    structure = np.ones((3, 3), dtype=bool)
    for index, color in enumerate(_PALETTE_NAMES):
        components, count = ndimage.label(labels == index, structure=structure)
        for slc, comp_id in zip(ndimage.find_objects(components), range(1, count + 1), strict=True):
            if slc is None:
                continue
            mask = components[slc] == comp_id
            area = int(mask.sum())
            if area < MIN_AREA:
                continue
            # Fill holes only for classification's sake is wrong (rings have one): use the mask as is.
            shape, iou = classify_shape(mask)
            box = (slc[1].start, slc[0].start, slc[1].stop, slc[0].stop)
            found.append(Detection(color, shape, box, area, iou))
    found.sort(key=lambda d: (d.center[1], d.center[0]))
    return found


# --------------------------------------------------------------------------- scoring a plan
def object_kind(obj: PlanObject) -> tuple[str | None, str | None]:
    """The (colour, shape) a plan object asks for in toy-world words, None where it names none."""
    words = [w.lower() for w in [*obj.attributes, *obj.name.split()]]
    color = next((w for w in words if w in COLORS), None)
    shape = next(
        (
            w if w in SHAPES else _PLURAL_TO_SHAPE[w]
            for w in reversed(words)
            if w in SHAPES or w in _PLURAL_TO_SHAPE
        ),
        None,
    )
    return color, shape


@dataclass
class ObjectScore(CountedObject):
    name: str
    color: str | None
    shape: str | None
    wanted: int
    found: int
    in_boxes: bool
    centers: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class PlanScore:
    objects: list[ObjectScore]
    relations: list[bool]
    detections: list[Detection]

    @property
    def all_present(self) -> bool:
        return all(o.present for o in self.objects)

    @property
    def counts_exact(self) -> bool:
        return all(o.count_exact for o in self.objects)

    @property
    def all_in_boxes(self) -> bool:
        return all(o.in_boxes for o in self.objects)

    @property
    def relations_hold(self) -> bool:
        return all(self.relations)

    @property
    def position_ok(self) -> bool:
        return self.all_present and self.all_in_boxes and self.relations_hold


def _relation_holds(relation: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    dx, dy = a[0] - b[0], a[1] - b[1]
    if relation == "left of":
        return dx < 0
    if relation == "right of":
        return dx > 0
    if relation in ("above", "on"):
        return dy < 0
    if relation in ("below", "under"):
        return dy > 0
    if relation == "next to":
        return abs(dx) >= abs(dy)
    return True  # "between" needs three objects; not judged


def _mean_centers_hold(
    relation: str, a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]
) -> bool:
    """The relation between the mean centres of both sides; False when either was not found."""
    if not a or not b:
        return False
    mean_a = (sum(c[0] for c in a) / len(a), sum(c[1] for c in a) / len(a))
    mean_b = (sum(c[0] for c in b) / len(b), sum(c[1] for c in b) / len(b))
    return _relation_holds(relation, mean_a, mean_b)


def score_plan(image: np.ndarray | Image.Image, plan: Plan) -> PlanScore:
    """Judge ``image`` against ``plan``: presence, counts, boxes and relations."""
    array = _as_array(image)
    size = (array.shape[1], array.shape[0])
    detections = detect(array.astype(np.uint8))
    scores = []
    for obj in plan.objects:
        color, shape = object_kind(obj)
        matches = [
            d
            for d in detections
            if (color is None or d.color == color) and (shape is None or d.shape == shape)
        ]
        centers = [d.center for d in matches]
        in_boxes = covers_boxes(centers, list(obj.boxes), size) if obj.boxes else True
        scores.append(ObjectScore(obj.name, color, shape, obj.count, len(matches), in_boxes, centers))
    relations = judge_relations(plan.relations, [o.centers for o in scores], _mean_centers_hold)
    return PlanScore(scores, relations, detections)
