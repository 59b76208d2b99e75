"""Re-laying out a plan after an edit: change only what must change, never leave boxes overlapping.

An edit first tries a local change with every other object's boxes fixed: a recounted object
regridded in the free room around it, a moved one shifted, a grown one scaled about its centres,
an added one put in free space. When that cannot be done at the smallest drawable box side
without an overlap or a broken relation, :func:`reflow` lays the whole plan out again with the
layout engine and then puts back every untouched object whose old boxes still fit, so the
objects that move are the ones that had to. Plans are the JSON dicts the follow-up code edits.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from scenewright.planner.canvas import MARGIN, MIN_BOX_SIDE
from scenewright.planner.geometry import Box, group_holds, overlap_area, union_box
from scenewright.planner.layout import LayoutItem, layout

STEP = 0.01  # how far the free room around an object grows per try
GAP = 0.02  # room kept between a regridded or added object and its neighbours
TOLERANCE = 1e-4  # overlap area treated as touching (boxes are rounded to four places)
_LOCAL = frozenset({"left of", "right of", "above", "below"})

Data = dict[str, Any]


def boxes_of(data: Data, index: int) -> list[Box]:
    """The boxes of ``objects[index]`` as tuples."""
    return [tuple(b) for b in data["objects"][index]["boxes"]]


def _clear(boxes: Sequence[Box], others: Iterable[Box]) -> bool:
    others = list(others)
    return all(overlap_area(b, o) <= TOLERANCE for b in boxes for o in others)


def _others(data: Data, skip: set[int]) -> list[Box]:
    return [b for i in range(len(data["objects"])) if i not in skip for b in boxes_of(data, i)]


def relations_hold(data: Data, changed: dict[int, list[Box]]) -> bool:
    """Whether every relation touching a changed object holds with the changed boxes."""
    for rel in data["relations"]:
        s, o = rel["subject"], rel["object"]
        if (s not in changed and o not in changed) or rel["relation"] == "between":
            continue
        sb = changed.get(s, boxes_of(data, s))
        ob = changed.get(o, boxes_of(data, o))
        if not group_holds(rel["relation"], sb, ob):
            return False
    return True


def overlapping(data: Data) -> list[tuple[int, int]]:
    """Pairs of different objects whose boxes overlap."""
    n = len(data["objects"])
    return [
        (i, j) for i in range(n) for j in range(i + 1, n) if not _clear(boxes_of(data, i), boxes_of(data, j))
    ]


def _bounds(data: Data, target: int) -> tuple[float, float, float, float] | None:
    """The room the target's relations leave it with the other objects fixed; None when one of
    them ("on", "next to", "between") needs more than a rectangle."""
    x0, y0, x1, y1 = MARGIN, MARGIN, 1 - MARGIN, 1 - MARGIN
    for rel in data["relations"]:
        s, kind, o = rel["subject"], rel["relation"], rel["object"]
        if target not in (s, o):
            continue
        if kind not in _LOCAL:
            return None
        other = union_box(boxes_of(data, o if s == target else s))
        if s != target:  # "the vase is left of the target": the target is right of the vase
            kind = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}[kind]
        if kind == "left of":
            x1 = min(x1, other[0] - GAP)
        elif kind == "right of":
            x0 = max(x0, other[2] + GAP)
        elif kind == "above":
            y1 = min(y1, other[1] - GAP)
        else:
            y0 = max(y0, other[3] + GAP)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def free_room(data: Data, target: int) -> tuple[float, float, float, float] | None:
    """The largest room found by growing the target's old area, side by side, until it meets
    another object's box, the margin or what its relations allow."""
    bounds = _bounds(data, target)
    old = boxes_of(data, target)
    if bounds is None or not old:
        return None
    others = [(b[0] - GAP, b[1] - GAP, b[2] + GAP, b[3] + GAP) for b in _others(data, {target})]
    ux0, uy0, ux1, uy1 = union_box(old)
    room = [max(ux0, bounds[0]), max(uy0, bounds[1]), min(ux1, bounds[2]), min(uy1, bounds[3])]
    if room[2] <= room[0] or room[3] <= room[1] or not _clear([tuple(room)], others):  # type: ignore[list-item]
        return None
    growing = [True] * 4
    while any(growing):
        for side in range(4):
            if not growing[side]:
                continue
            trial = list(room)
            trial[side] += STEP if side >= 2 else -STEP
            limit = bounds[side]
            inside = trial[side] <= limit + 1e-9 if side >= 2 else trial[side] >= limit - 1e-9
            if inside and _clear([tuple(trial)], others):  # type: ignore[list-item]
                room = trial
            else:
                growing[side] = False
    return room[0], room[1], room[2], room[3]


def regrid(data: Data, target: int, count: int, min_side: float = MIN_BOX_SIDE) -> list[Box] | None:
    """``count`` boxes for the target in the free room around it, the size of its old boxes or
    smaller but not under ``min_side`` (nor its old size, when that was smaller); None if they
    do not fit."""
    old = boxes_of(data, target)
    room = free_room(data, target)
    if room is None or not old:
        return None
    width = statistics.fmean(b[2] - b[0] for b in old)
    height = statistics.fmean(b[3] - b[1] for b in old)
    rx0, ry0, rx1, ry1 = room
    best: tuple[float, int, int] | None = None
    for cols in range(1, count + 1):
        rows = math.ceil(count / cols)
        scale = min(
            1.0, (rx1 - rx0) / (cols * width * (1 + GAP * 4)), (ry1 - ry0) / (rows * height * (1 + GAP * 4))
        )
        if best is None or scale > best[0] + 1e-9:
            best = (scale, rows, cols)
    assert best is not None
    scale, rows, cols = best
    w, h = width * scale, height * scale
    if min(w, h) < min(min_side, width, height) - 1e-6:
        return None
    pitch_w, pitch_h = (rx1 - rx0) / cols, (ry1 - ry0) / rows
    pitch_w, pitch_h = min(pitch_w, w * 1.3), min(pitch_h, h * 1.3)  # a group, not a scatter
    cx, cy = (union_box(old)[0] + union_box(old)[2]) / 2, (union_box(old)[1] + union_box(old)[3]) / 2
    left = min(max(rx0, cx - cols * pitch_w / 2), rx1 - cols * pitch_w)
    top = min(max(ry0, cy - rows * pitch_h / 2), ry1 - rows * pitch_h)
    out: list[Box] = []
    for k in range(count):
        r, c = divmod(k, cols)
        in_row = min(cols, count - r * cols)
        bx = left + (cols - in_row) * pitch_w / 2 + c * pitch_w + (pitch_w - w) / 2
        by = top + r * pitch_h + (pitch_h - h) / 2
        out.append((round(bx, 4), round(by, 4), round(bx + w, 4), round(by + h, 4)))
    return out if relations_hold(data, {target: out}) else None


def shifted(boxes: Sequence[Box], where: str) -> list[Box]:
    """The group, unchanged in shape, moved to one side of the canvas (or its centre)."""
    if not boxes:
        return list(boxes)
    x0, y0, x1, y1 = union_box(boxes)
    dx = dy = 0.0
    if where == "left":
        dx = MARGIN - x0
    elif where == "right":
        dx = 1 - MARGIN - x1
    elif where == "top":
        dy = MARGIN - y0
    elif where == "bottom":
        dy = 1 - MARGIN - y1
    else:
        dx, dy = 0.5 - (x0 + x1) / 2, 0.5 - (y0 + y1) / 2
    return [
        (round(b[0] + dx, 4), round(b[1] + dy, 4), round(b[2] + dx, 4), round(b[3] + dy, 4)) for b in boxes
    ]


def scaled(boxes: Sequence[Box], factor: float) -> list[Box]:
    """Each box scaled about its own centre, then the group moved back inside the margins."""
    out = []
    for x0, y0, x1, y1 in boxes:
        cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
        out.append((cx - hw, cy - hh, cx + hw, cy + hh))
    if not out:
        return out
    ux0, uy0, ux1, uy1 = union_box(out)
    dx = max(0.0, MARGIN - ux0) - max(0.0, ux1 - (1 - MARGIN))
    dy = max(0.0, MARGIN - uy0) - max(0.0, uy1 - (1 - MARGIN))
    return [(round(a + dx, 4), round(b + dy, 4), round(c + dx, 4), round(d + dy, 4)) for a, b, c, d in out]


def _self_clear(boxes: Sequence[Box]) -> bool:
    return all(overlap_area(a, b) <= TOLERANCE for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def resize(data: Data, targets: Sequence[int], factors: Sequence[float]) -> dict[int, list[Box]] | None:
    """The targets' boxes scaled by the first of ``factors`` at which nothing overlaps, every box
    stays on the canvas and the relations hold; None when none does."""
    for factor in factors:
        changed = {t: scaled(boxes_of(data, t), factor) for t in targets}
        boxes = [b for group in changed.values() for b in group]
        if not all(0 <= v <= 1 for b in boxes for v in b):
            continue
        if not all(_self_clear(group) for group in changed.values()):
            continue
        if any(not _clear(changed[a], changed[b]) for a in changed for b in changed if a < b):
            continue
        if _clear(boxes, _others(data, set(targets))) and relations_hold(data, changed):
            return changed
    return None


def free_boxes(taken: Sequence[Box], count: int, min_side: float = MIN_BOX_SIDE) -> list[Box] | None:
    """``count`` square boxes in free space (centre first, largest first, down to ``min_side``)."""
    sides = [s for s in (0.32, 0.28, 0.25) if s > min_side] + [min_side]
    steps = [i / 50 for i in range(51)]
    for side in sides:
        spots = sorted(
            (
                (x, y)
                for x in steps
                for y in steps
                if MARGIN <= x <= 1 - MARGIN - side and MARGIN <= y <= 1 - MARGIN - side
            ),
            key=lambda p: (abs(p[1] + side / 2 - 0.5) + abs(p[0] + side / 2 - 0.5), p),
        )
        placed: list[Box] = []
        for x, y in spots:
            box = (round(x, 4), round(y, 4), round(x + side, 4), round(y + side, 4))
            grown = [(b[0] - GAP, b[1] - GAP, b[2] + GAP, b[3] + GAP) for b in [*taken, *placed]]
            if _clear([box], grown):
                placed.append(box)
                if len(placed) == count:
                    return placed
    return None


def relative_sizes(data: Data) -> list[float]:
    """Each object's box size against the scene's median, so a reflow keeps what was grown."""
    sides = [
        statistics.fmean(min(b[2] - b[0], b[3] - b[1]) for b in o["boxes"]) if o["boxes"] else 0.0
        for o in data["objects"]
    ]
    known = [s for s in sides if s > 0]
    middle = statistics.median(known) if known else 1.0
    return [min(1.6, max(0.6, s / middle)) if s > 0 else 1.0 for s in sides]


def reflow(
    data: Data,
    touched: set[int],
    seed: int = 0,
    anchors: dict[int, str] | None = None,
    scales: dict[int, float] | None = None,
    min_side: float = MIN_BOX_SIDE,
) -> tuple[list[str], list[str]]:
    """Lay ``data`` out again in place; untouched objects whose old boxes still fit keep them.
    Returns the names of the objects that moved and the layout engine's warnings."""
    objects = data["objects"]
    old = {i: [list(b) for b in o["boxes"]] for i, o in enumerate(objects)}
    size = relative_sizes(data)
    for i, factor in (scales or {}).items():
        size[i] = factor
    items = [
        LayoutItem(o["name"], int(o["count"]), (anchors or {}).get(i), size[i]) for i, o in enumerate(objects)
    ]
    triples = [(r["subject"], r["relation"], r["object"]) for r in data["relations"]]
    result = layout(items, triples, seed, min_side)
    for obj, boxes in zip(objects, result.boxes, strict=True):
        obj["boxes"] = [list(b) for b in boxes]
    data["relations"] = [data["relations"][k] for k in result.kept]
    for i in range(len(objects)):  # put back what still fits where it was
        if i in touched or len(old[i]) != int(objects[i]["count"]):
            continue
        back = [tuple(b) for b in old[i]]
        if _clear(back, _others(data, {i})) and relations_hold(data, {i: back}):
            objects[i]["boxes"] = old[i]
    moved = [o["name"] for i, o in enumerate(objects) if i not in touched and o["boxes"] != old[i]]
    return moved, result.warnings
