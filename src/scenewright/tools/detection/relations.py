"""Where one detected object lies relative to another, by box centres as GenEval judges it.

GenEval's rule: the offset between centres, shrunk on each axis by a tenth of the two boxes'
summed sizes (so touching or overlapping objects are not called left or right of each other),
then normalised by the raw offset's length; a direction holds when its share exceeds one half.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scenewright.tools.detection.instances import Instance, PixelBox

POSITION_THRESHOLD = 0.1
# The plan's relation words as GenEval's directions; None: not judged from boxes ("between").
PLAN_TO_GENEVAL: dict[str, tuple[str, ...] | None] = {
    "left of": ("left of",),
    "right of": ("right of",),
    "above": ("above",),
    "below": ("below",),
    "on": ("above",),
    "under": ("below",),
    "next to": ("left of", "right of"),
    "between": None,
}


def relative_position(a: PixelBox, b: PixelBox, threshold: float = POSITION_THRESHOLD) -> set[str]:
    """The directions ("left of", "right of", "above", "below") in which box ``a`` lies from ``b``."""
    boxes = np.array([a, b], dtype=np.float64).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=1)
    size_a, size_b = np.abs(boxes[:, 1] - boxes[:, 0])
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - threshold * (size_a + size_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    found = set()
    if dx < -0.5:
        found.add("left of")
    if dx > 0.5:
        found.add("right of")
    if dy < -0.5:
        found.add("above")
    if dy > 0.5:
        found.add("below")
    return found


def relation_holds(
    relation: str,
    subjects: Sequence[Instance],
    objects: Sequence[Instance],
    threshold: float = POSITION_THRESHOLD,
) -> bool:
    """Every subject instance stands in ``relation`` to every object instance (GenEval's rule);
    False when either side was not found; True for a relation boxes cannot judge."""
    wanted = PLAN_TO_GENEVAL.get(relation)
    if wanted is None:
        return True
    if not subjects or not objects:
        return False
    return all(
        bool(relative_position(s.box, o.box, threshold) & set(wanted)) for s in subjects for o in objects
    )
