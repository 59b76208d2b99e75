"""Prompt sets drawn from the toy world, each with its plan (boxes, counts, relations).

Every case is a pure function of (set, index, seed), so any row of a benchmark can be re-run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scenewright.planner.plan import Plan, PlanObject, PlanRelation, Relation
from scenewright.toyworld.captions import phrase
from scenewright.toyworld.scene import IMAGE_SIZE, Group, place_boxes
from scenewright.toyworld.vocab import COLORS, SHAPES

SETS = ("single", "two", "counting", "position", "binding", "complex")


@dataclass(frozen=True)
class BenchCase:
    set: str
    index: int
    plan: Plan
    seed: int


def _kinds(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` objects with pairwise different colours and different shapes."""
    colors = rng.sample(list(COLORS), n)
    shapes = rng.sample(list(SHAPES), n)
    return list(zip(colors, shapes, strict=True))


def _norm(box: tuple[float, float, float, float], pad: float = 3.0) -> tuple[float, float, float, float]:
    """Pixel box to a normalised plan box, padded equally on every side (so centres are kept)."""
    x0, y0, x1, y1 = box
    s = IMAGE_SIZE
    pad = min(pad, x0, y0, s - x1, s - y1)
    return ((x0 - pad) / s, (y0 - pad) / s, (x1 + pad) / s, (y1 + pad) / s)


def _layout(
    rng: random.Random, counts: list[int], size: tuple[float, float] = (14, 20)
) -> list[list[tuple[float, float, float, float]]]:
    while True:
        flat = place_boxes(rng, [rng.uniform(*size) for _ in range(sum(counts))])
        if flat is not None:
            break
    out, start = [], 0
    for c in counts:
        out.append([_norm(b) for b in flat[start : start + c]])
        start += c
    return out


def _relation(
    a: list[tuple[float, float, float, float]], b: list[tuple[float, float, float, float]]
) -> Relation:
    ax = sum((x0 + x1) / 2 for x0, _, x1, _ in a) / len(a)
    ay = sum((y0 + y1) / 2 for _, y0, _, y1 in a) / len(a)
    bx = sum((x0 + x1) / 2 for x0, _, x1, _ in b) / len(b)
    by = sum((y0 + y1) / 2 for _, y0, _, y1 in b) / len(b)
    if abs(ax - bx) >= abs(ay - by):
        return "left of" if ax < bx else "right of"
    return "above" if ay < by else "below"


def _objects(groups: list[Group], boxes: list[list[tuple[float, float, float, float]]]) -> list[PlanObject]:
    return [
        PlanObject(name=g.shape, count=g.count, attributes=[g.color], prompt=f"{g.color} {g.shape}", boxes=b)
        for g, b in zip(groups, boxes, strict=True)
    ]


def _with_relations(groups: list[Group], boxes: list[list[tuple[float, float, float, float]]]) -> Plan:
    objects = _objects(groups, boxes)
    relations = [
        PlanRelation(subject=i, relation=_relation(boxes[i], boxes[i + 1]), object=i + 1)
        for i in range(len(groups) - 1)
    ]
    clauses = [
        f"{phrase(groups[r.subject])} {r.relation} {phrase(groups[r.object]).replace('a ', 'the ', 1) if groups[r.object].count == 1 else phrase(groups[r.object])}"
        for r in relations
    ]
    prompt = ", and ".join(clauses)
    return Plan(prompt=prompt, global_prompt=prompt, objects=objects, relations=relations)


def make_case(set_name: str, index: int, seed: int = 0) -> BenchCase:
    rng = random.Random(f"{set_name}/{seed}/{index}")
    if set_name == "single":
        groups = [Group(*_kinds(rng, 1)[0], 1)]
    elif set_name == "two":
        groups = [Group(c, s, 1) for c, s in _kinds(rng, 2)]
    elif set_name == "counting":
        groups = [Group(*_kinds(rng, 1)[0], rng.randint(2, 6))]
    elif set_name in ("position", "binding"):
        groups = [Group(c, s, 1) for c, s in _kinds(rng, rng.choice([2, 3]))]
    elif set_name == "complex":
        n_groups = rng.choice([2, 3])
        counts = [1] * n_groups
        while sum(counts) < rng.randint(4, 6):
            counts[rng.randrange(n_groups)] += 1
        groups = [Group(c, s, k) for (c, s), k in zip(_kinds(rng, n_groups), counts, strict=True)]
    else:
        raise ValueError(f"unknown set {set_name!r}; sets are {', '.join(SETS)}")
    boxes = _layout(
        rng, [g.count for g in groups], (12, 16) if sum(g.count for g in groups) > 3 else (14, 20)
    )
    if set_name in ("position", "complex"):
        plan = _with_relations(groups, boxes)
    else:
        parts = [phrase(g) for g in groups]
        prompt = " and ".join(parts) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]
        plan = Plan(prompt=prompt, global_prompt=prompt, objects=_objects(groups, boxes))
    return BenchCase(set_name, index, plan, seed=seed * 100_003 + index)


def make_cases(set_name: str, n: int, seed: int = 0) -> list[BenchCase]:
    return [make_case(set_name, i, seed) for i in range(n)]
