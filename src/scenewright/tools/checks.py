"""What every judge of an image checks per planned object, whatever finds the objects.

The toy world's exact evaluator and the detector verifier find objects differently (pixel colours
and shape templates against a detector and CLIP) and judge relations by their own rules, but an
object is present, counted exactly and inside its boxes by one definition, kept here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from scenewright.planner.plan import Box, PlanRelation

Item = TypeVar("Item")


class CountedObject:
    """A planned object's found count against the count it wants (``found`` and ``wanted``)."""

    wanted: int
    found: int

    @property
    def present(self) -> bool:
        return self.found >= 1

    @property
    def count_exact(self) -> bool:
        return self.found == self.wanted


def covers_boxes(
    centers: Sequence[tuple[float, float]], boxes: Sequence[Box], size: tuple[float, float] = (1.0, 1.0)
) -> bool:
    """Each planned box (normalised, scaled by ``size``) holds the centre of a distinct instance;
    greedy matching suffices for the plans' disjoint boxes."""
    width, height = size
    free = list(centers)
    for x0, y0, x1, y1 in boxes:
        inside = [c for c in free if x0 * width <= c[0] <= x1 * width and y0 * height <= c[1] <= y1 * height]
        if not inside:
            return False
        free.remove(inside[0])
    return True


def judge_relations(
    relations: Sequence[PlanRelation],
    found: Sequence[Sequence[Item]],
    holds: Callable[[str, Sequence[Item], Sequence[Item]], bool],
) -> list[bool]:
    """Each relation judged by ``holds`` on what was found of its subject and of its object."""
    return [holds(r.relation, found[r.subject], found[r.object]) for r in relations]
