"""What a relation means for boxes, and checks that a plan's boxes honour its relations.

One definition serves the layout engine (which must satisfy it), the LLM planner (which checks
what the model proposed) and the tests, so that "satisfies its relation" means one thing.
Boxes are ``(x0, y0, x1, y1)`` in [0, 1], x to the right, y down.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scenewright.planner.plan import Plan

Box = tuple[float, float, float, float]

EPS = 1e-6
# "on" and "under" need contact: at most this gap between the two boxes.
CONTACT_GAP = 0.05
# "next to" needs the two boxes side by side, at most this far apart.
NEAR_GAP = 0.25


def center(box: Box) -> tuple[float, float]:
    """Centre of a box."""
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def overlap_area(a: Box, b: Box) -> float:
    """Area shared by two boxes (0 when they only touch)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def pair_holds(relation: str, s: Box, o: Box) -> bool:
    """Whether box ``s`` stands in ``relation`` to box ``o`` (pairwise part of the definition)."""
    if relation == "left of":
        return s[2] <= o[0] + EPS
    if relation == "right of":
        return s[0] >= o[2] - EPS
    if relation == "above":
        return s[3] <= o[1] + EPS
    if relation == "below":
        return s[1] >= o[3] - EPS
    cx = center(s)[0]
    if relation == "on":
        gap = o[1] - s[3]
        return -EPS <= gap <= CONTACT_GAP and o[0] - EPS <= cx <= o[2] + EPS
    if relation == "under":
        gap = s[1] - o[3]
        return -EPS <= gap <= CONTACT_GAP and o[0] - EPS <= cx <= o[2] + EPS
    if relation == "next to":
        same_row = min(s[3], o[3]) - max(s[1], o[1]) > 0
        gap = max(o[0] - s[2], s[0] - o[2])
        return same_row and -EPS <= gap <= NEAR_GAP
    return True  # "between" needs both partners: see group_holds


# Relations that must hold for every pair of instances. "on" and "under" hold for every subject
# instance against the object group's bounding box (three apples on two tables pushed together);
# "next to" is about both groups' bounding boxes ("two dogs next to a car").
_ALL_PAIRS = frozenset({"left of", "right of", "above", "below"})


def union_box(boxes: Sequence[Box]) -> Box:
    """The bounding box of a group of boxes."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def group_holds(relation: str, subject: Sequence[Box], obj: Sequence[Box]) -> bool:
    """Whether every instance of the subject stands in ``relation`` to the object group."""
    if not subject or not obj:
        return False
    if relation in _ALL_PAIRS:
        return all(pair_holds(relation, s, o) for s in subject for o in obj)
    if relation == "between":
        return True
    if relation == "next to":
        return pair_holds(relation, union_box(subject), union_box(obj))
    whole = union_box(obj)  # "on"/"under": each subject instance against the object group
    return all(pair_holds(relation, s, whole) for s in subject)


def between_holds(subject: Sequence[Box], first: Sequence[Box], second: Sequence[Box]) -> bool:
    """Subject instances lie horizontally between the two partner groups (in either order)."""
    if not subject or not first or not second:
        return False
    lo_a, hi_a = min(b[0] for b in first), max(b[2] for b in first)
    lo_b, hi_b = min(b[0] for b in second), max(b[2] for b in second)
    left_hi, right_lo = (hi_a, lo_b) if lo_a <= lo_b else (hi_b, lo_a)
    return all(s[0] >= left_hi - EPS and s[2] <= right_lo + EPS for s in subject)


def relation_violations(plan: Plan) -> list[str]:
    """Each relation of ``plan`` whose boxes do not honour it, as a readable line."""
    problems: list[str] = []
    partners: dict[int, list[int]] = {}
    for index, rel in enumerate(plan.relations):
        s_obj, o_obj = plan.objects[rel.subject], plan.objects[rel.object]
        if not s_obj.boxes or not o_obj.boxes:
            continue
        if rel.relation == "between":
            partners.setdefault(rel.subject, []).append(rel.object)
            continue
        if not group_holds(rel.relation, s_obj.boxes, o_obj.boxes):
            problems.append(
                f"relations[{index}]: the boxes of {s_obj.name!r} are not {rel.relation} {o_obj.name!r}"
            )
    for subject, others in partners.items():
        if len(others) >= 2:
            boxes = [plan.objects[k].boxes for k in others[:2]]
            if not between_holds(plan.objects[subject].boxes, boxes[0], boxes[1]):
                problems.append(f"the boxes of {plan.objects[subject].name!r} are not between their partners")
    return problems


def overlap_violations(plan: Plan, tolerance: float = 1e-4) -> list[str]:
    """Pairs of boxes of different objects that overlap by more than ``tolerance`` area."""
    problems: list[str] = []
    for i, a in enumerate(plan.objects):
        for j in range(i + 1, len(plan.objects)):
            b = plan.objects[j]
            if any(overlap_area(p, q) > tolerance for p in a.boxes for q in b.boxes):
                problems.append(f"objects[{i}] {a.name!r} and objects[{j}] {b.name!r} overlap")
    return problems
