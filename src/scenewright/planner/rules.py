"""The offline rules planner: parse the request, lay it out, return a validated plan.

It is the default (no key, no network) and the fallback of the LLM planner.
"""

from __future__ import annotations

from scenewright.planner.layout import LayoutItem, layout
from scenewright.planner.parse import parse
from scenewright.planner.plan import Plan, PlanObject, PlanRelation, PlanResult


def plan_with_rules(prompt: str, seed: int = 0) -> PlanResult:
    """A plan for ``prompt`` from the rules parser and the layout engine, with its warnings."""
    scene = parse(prompt)
    items = [LayoutItem(o.name, o.count, o.anchor) for o in scene.objects]
    placed = layout(items, scene.relations, seed)
    objects = [
        PlanObject(name=o.name, count=o.count, attributes=o.attributes, boxes=boxes)
        for o, boxes in zip(scene.objects, placed.boxes, strict=True)
    ]
    relations = [
        PlanRelation.model_validate(
            dict(zip(("subject", "relation", "object"), scene.relations[k], strict=True))
        )
        for k in placed.kept
    ]
    plan = Plan(
        prompt=" ".join(prompt.split()),
        background=scene.background,
        objects=objects,
        relations=relations,
    )
    return PlanResult(plan, "rules", [*scene.warnings, *placed.warnings])
