"""Detected instances and GenEval's rule for which of them count.

A detector proposes scored boxes per class; GenEval keeps those above a confidence threshold
(a higher one for counting prompts), at most 16 per class, most confident first, optionally
dropping boxes that overlap a kept one too much. The same rule decides what the verifier counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# (x0, y0, x1, y1) in pixels of the image the instance was found in.
PixelBox = tuple[float, float, float, float]
MAX_OBJECTS = 16  # GenEval's cap on instances per class


@dataclass(frozen=True)
class Instance:
    """One detected object: its box in pixels, the detector's confidence, its mask if segmented."""

    box: PixelBox
    score: float
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def iou(a: PixelBox, b: PixelBox) -> float:
    """Intersection over union with GenEval's inclusive pixel areas (width is x1 - x0 + 1)."""

    def area(box: Sequence[float]) -> float:
        return max(box[2] - box[0] + 1, 0) * max(box[3] - box[1] + 1, 0)

    inter = area([max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])])
    union = area(a) + area(b) - inter
    return inter / union if union else 0.0


def select_instances(
    candidates: Sequence[Instance],
    threshold: float,
    max_objects: int = MAX_OBJECTS,
    max_overlap: float = 1.0,
) -> list[Instance]:
    """Candidates scoring above ``threshold``, best first, at most ``max_objects``; a candidate
    overlapping a kept one by ``max_overlap`` IoU or more is dropped (1.0: nothing is dropped)."""
    ranked = sorted((c for c in candidates if c.score > threshold), key=lambda c: -c.score)[:max_objects]
    kept: list[Instance] = []
    while ranked:
        best = ranked.pop(0)
        kept.append(best)
        if max_overlap < 1.0:
            ranked = [c for c in ranked if iou(best.box, c.box) < max_overlap]
    return kept


def center_boxes_to_pixels(
    boxes: np.ndarray, scale: tuple[float, float], size: tuple[int, int]
) -> list[PixelBox]:
    """(cx, cy, w, h) boxes in [0, 1] of a frame ``scale`` = (width, height) pixels wide, as pixel
    corners clipped to the image of ``size`` = (width, height).

    OWLv2 predicts relative to the image padded to a square (scale = the longer side twice);
    DETR-style models relative to the image itself (scale = size).
    """
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sx, sy = scale
    width, height = size
    x0 = np.clip((array[:, 0] - array[:, 2] / 2) * sx, 0, width)
    y0 = np.clip((array[:, 1] - array[:, 3] / 2) * sy, 0, height)
    x1 = np.clip((array[:, 0] + array[:, 2] / 2) * sx, 0, width)
    y1 = np.clip((array[:, 1] + array[:, 3] / 2) * sy, 0, height)
    return [(float(a), float(b), float(c), float(d)) for a, b, c, d in zip(x0, y0, x1, y1, strict=True)]


def normalised(box: PixelBox, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A pixel box as the plan's normalised ``[x0, y0, x1, y1]`` (clipped to [0, 1])."""
    width, height = size
    x0, y0, x1, y1 = box
    return (
        min(max(x0 / width, 0.0), 1.0),
        min(max(y0 / height, 0.0), 1.0),
        min(max(x1 / width, 0.0), 1.0),
        min(max(y1 / height, 0.0), 1.0),
    )


def mask_box(mask: np.ndarray) -> PixelBox | None:
    """The pixel box (end-exclusive) around a boolean mask; None for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    if not len(xs):
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
