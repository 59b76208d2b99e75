"""What every face says about a render, object by object, and its verdict: one place.

A judge (the toy world's exact evaluator on the embedded models, a detector, a strategy's
attention maps) writes one row per planned object: ``name``, ``wanted``, ``found``,
``in_boxes``, ``ok``, and, where it knows them, ``color``, ``also_colors``, ``relations`` and
``unchecked`` (why it could not judge the object: a word the model never learned, a class the
detector lacks). :func:`lines_from_rows` turns rows into the lines ``generate`` prints, and each
line's ``short`` form is what chat, the studio, ``batch`` and ``eval`` list; :func:`verdict`
says "matches the plan" only when every object was judged and holds, "cannot verify" when an
object could not be judged, and "(off)" marks an object found outside its boxes everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from scenewright.planner.plan import Plan, PlanObject

if TYPE_CHECKING:
    from scenewright.agent.core import AgentResult

MATCHES = "matches the plan"
DIFFERS = "differs from the plan"
CANNOT_VERIFY = "cannot verify"
NOT_VERIFIED = "not verified"


@dataclass(frozen=True)
class ObjectLine:
    """The check of one planned object; ``ok`` is None when nothing could judge it, and
    ``short`` is its compact form (``square 1/1 (off)``)."""

    text: str
    ok: bool | None
    short: str = ""
    unchecked: str | None = None


def label(obj: PlanObject) -> str:
    """``red circle``: the object's attributes and name, as the user wrote them."""
    return " ".join([*obj.attributes, obj.name])


# ----------------------------------------------------------------------------- the exact judge
def _toy_unchecked(obj: PlanObject, color: str | None, shape: str | None) -> str | None:
    """Why the exact judge cannot check ``obj`` on the embedded models, or None when it can."""
    from scenewright.planner.lexicon import COLORS as NAMED_COLORS

    if shape is None:
        return f"'{obj.name}' is not a shape the embedded model draws (`scenewright vocab` lists them)"
    words = [w.lower() for a in obj.attributes for w in a.split()]
    unknown = [w for w in words if w in NAMED_COLORS and w != color]
    if unknown:
        return f"'{unknown[0]}' is not a colour the embedded model draws (`scenewright vocab` lists them)"
    return None


def exact_rows(image: Image.Image, plan: Plan) -> tuple[list[dict[str, Any]], bool | None]:
    """The toy world's exact judge of every object of ``plan`` in ``image``: the rows, and the
    verdict (None when some object could not be judged and none failed)."""
    from scenewright.tools.evaluator import score_plan

    score = score_plan(image, plan)
    rows: list[dict[str, Any]] = []
    for obj, got in zip(plan.objects, score.objects, strict=True):
        unchecked = _toy_unchecked(obj, got.color, got.shape)
        also = sorted(
            {d.color for d in score.detections if d.shape == got.shape and d.color != got.color}
            if got.shape is not None and got.color is not None
            else set()
        )
        rows.append(
            {
                "name": obj.name,
                "wanted": got.wanted,
                "found": got.found,
                "in_boxes": got.in_boxes,
                "ok": None if unchecked else got.count_exact and got.in_boxes,
                "color": got.color,
                "also_colors": also,
                "unchecked": unchecked,
                "relations": [],
            }
        )
    for rel, holds in zip(plan.relations, score.relations, strict=True):
        judged = not (rows[rel.subject]["unchecked"] or rows[rel.object]["unchecked"])
        rows[rel.subject]["relations"].append(
            {"relation": rel.relation, "object": rel.object, "holds": bool(holds) if judged else None}
        )
        if judged and not holds and rows[rel.subject]["ok"] is not None:
            rows[rel.subject]["ok"] = False
    return rows, overall(rows)


def overall(rows: Sequence[Mapping[str, Any]]) -> bool | None:
    """False when any object fails, None when any could not be judged, else True."""
    oks = [row.get("ok") for row in rows]
    if any(ok is False for ok in oks):
        return False
    if any(ok is None for ok in oks):
        return None
    return True


# ------------------------------------------------------------------------------ the one formatter
def lines_from_rows(plan: Plan, rows: Sequence[Mapping[str, Any]]) -> list[ObjectLine]:
    """One line per planned object from any judge's rows; every face's per-object text."""
    lines = []
    for index, obj in enumerate(plan.objects):
        row = rows[index] if index < len(rows) else {}
        head = f"[{index}] {label(obj)}: "
        unchecked = row.get("unchecked")
        found = row.get("found")
        if unchecked:
            lines.append(
                ObjectLine(head + f"not checked: {unchecked}", None, f"{obj.name} not checked", unchecked)
            )
            continue
        parts = [f"{found}/{obj.count} found" if found is not None else f"?/{obj.count} found"]
        if row.get("color"):
            also = list(row.get("also_colors") or [])
            parts.append(f"colour {row['color']}" + (f" (also drawn in {', '.join(also)})" if also else ""))
        off = row.get("in_boxes") is False and bool(obj.boxes)
        if row.get("in_boxes") is not None and obj.boxes:
            parts.append("not in its boxes" if off else "in its boxes")
        parts.extend(_relation_parts(plan, index, row.get("relations")))
        ok = row.get("ok")
        # "(off)": found, but outside its boxes (nothing found is said by the count alone)
        short = f"{obj.name} {found if found is not None else '?'}/{obj.count}" + (
            " (off)" if off and found else ""
        )
        lines.append(ObjectLine(head + "; ".join(parts), None if ok is None else bool(ok), short))
    return lines


def _relation_parts(plan: Plan, index: int, judged: Any) -> list[str]:
    """``left of blue square: holds`` for each relation ``index`` is the subject of."""
    holds = {(r.get("relation"), r.get("object")): r.get("holds") for r in judged or []}
    parts = []
    for rel in plan.relations:
        if rel.subject != index:
            continue
        said = holds.get((rel.relation, rel.object))
        state = "not judged" if said is None else ("holds" if said else "fails")
        parts.append(f"{rel.relation} {label(plan.objects[rel.object])}: {state}")
    return parts


def exact_lines(image: Image.Image, plan: Plan) -> list[ObjectLine]:
    """The toy world's exact check of every object of ``plan`` in ``image``."""
    return lines_from_rows(plan, exact_rows(image, plan)[0])


def row_lines(plan: Plan, rows: Sequence[Mapping[str, Any]]) -> list[ObjectLine]:
    """Lines from a verifier's rows (detector or attention maps)."""
    return lines_from_rows(plan, rows)


def verdict(lines: Sequence[ObjectLine], verified: bool | None) -> str:
    """ "matches the plan" only when the verifier agrees and every object was judged and holds;
    "cannot verify" when an object could not be judged (and none failed)."""
    oks = [line.ok for line in lines]
    if verified is False or any(ok is False for ok in oks):
        return DIFFERS
    if any(line.unchecked for line in lines):
        return CANNOT_VERIFY
    if verified is None or any(ok is None for ok in oks):
        return NOT_VERIFIED
    return MATCHES


def short_list(lines: Sequence[ObjectLine]) -> str:
    """``circle 2/2, square 1/1 (off), dog not checked``: the compact per-object list."""
    return ", ".join(line.short for line in lines if line.short)


def result_lines(result: AgentResult) -> tuple[list[ObjectLine], str]:
    """A finished turn's per-object lines and verdict, from the rows its judge wrote (what the
    chat, the studio's chat, gallery and comparison show)."""
    if result.plan is None:
        return [], verdict([], result.verified)
    lines = lines_from_rows(result.plan, result.report)
    return lines, verdict(lines, result.verified)


def result_summary(result: AgentResult) -> str:
    """``matches the plan [circle 2/2, square 1/1]``: a finished turn's verdict and objects."""
    lines, said = result_lines(result)
    listed = short_list(lines)
    return said + (f" [{listed}]" if listed else "")


def turn_summary(turn: Mapping[str, Any]) -> str:
    """A stored turn's verdict and objects (a reloaded studio page rebuilds its conversation from
    these), by the same rules as :func:`result_summary`."""
    plan_data = turn.get("plan")
    if not plan_data:
        return verdict([], turn.get("verified"))
    lines = lines_from_rows(Plan.model_validate(plan_data), turn.get("report") or [])
    listed = short_list(lines)
    said = verdict(lines, turn.get("verified"))
    return said + (f" [{listed}]" if listed else "")
