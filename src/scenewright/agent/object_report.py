"""One line per planned object after a render: found/asked, colour, boxes, relations.

On the embedded model the toy world's exact evaluator judges the image again here, so the line
says what the pixels hold (including shapes drawn in the wrong colour); on other backends the
verifier's rows are used as they are. "matches the plan" is said only when every line holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from scenewright.planner.plan import Plan, PlanObject


@dataclass(frozen=True)
class ObjectLine:
    """The check of one planned object; ``ok`` is None when nothing could judge it."""

    text: str
    ok: bool | None


def label(obj: PlanObject) -> str:
    """``red circle``: the object's attributes and name, as the user wrote them."""
    return " ".join([*obj.attributes, obj.name])


def _relation_parts(plan: Plan, index: int, holds: Sequence[bool] | None) -> tuple[list[str], bool]:
    parts, ok = [], True
    for k, rel in enumerate(plan.relations):
        if rel.subject != index:
            continue
        state = "not judged" if holds is None else ("holds" if holds[k] else "fails")
        ok = ok and (holds is None or holds[k])
        parts.append(f"{rel.relation} {label(plan.objects[rel.object])}: {state}")
    return parts, ok


def exact_lines(image: Image.Image, plan: Plan) -> list[ObjectLine]:
    """The toy world's exact check of every object of ``plan`` in ``image``."""
    from scenewright.tools.evaluator import score_plan

    score = score_plan(image, plan)
    lines = []
    for index, (obj, got) in enumerate(zip(plan.objects, score.objects, strict=True)):
        parts = [f"{got.found}/{got.wanted} found"]
        if got.color is not None:
            other = sorted(
                {d.color for d in score.detections if d.shape == got.shape and d.color != got.color}
                if got.shape is not None
                else set()
            )
            parts.append(f"colour {got.color}" + (f" (also drawn in {', '.join(other)})" if other else ""))
        if obj.boxes:
            parts.append("in its boxes" if got.in_boxes else "not in its boxes")
        relations, relations_ok = _relation_parts(plan, index, score.relations)
        ok = got.count_exact and got.in_boxes and relations_ok
        lines.append(ObjectLine(f"[{index}] {label(obj)}: " + "; ".join(parts + relations), ok))
    return lines


def row_lines(plan: Plan, rows: Sequence[Mapping[str, Any]]) -> list[ObjectLine]:
    """Lines from a verifier's rows (detector or attention maps), which judge no relations."""
    lines = []
    for index, obj in enumerate(plan.objects):
        row = rows[index] if index < len(rows) else {}
        found = row.get("found")
        parts = [f"{found}/{obj.count} found" if found is not None else f"?/{obj.count} found"]
        if row.get("color"):
            parts.append(f"colour {row['color']}")
        if row.get("in_boxes") is not None and obj.boxes:
            parts.append("in its boxes" if row["in_boxes"] else "not in its boxes")
        relations, _ = _relation_parts(plan, index, None)
        ok = row.get("ok")
        lines.append(
            ObjectLine(
                f"[{index}] {label(obj)}: " + "; ".join(parts + relations), None if ok is None else bool(ok)
            )
        )
    return lines


def verdict(lines: Sequence[ObjectLine], verified: bool | None) -> str:
    """ "matches the plan" only when the verifier agrees and every object's line holds."""
    oks = [line.ok for line in lines]
    if verified is False or any(ok is False for ok in oks):
        return "differs from the plan"
    if verified is None or any(ok is None for ok in oks):
        return "not verified"
    return "matches the plan"
