"""Repair of plans that arrive as raw JSON (from an LLM, a file, a user): fix what can be fixed
and say what was changed, so that only what truly cannot be drawn is rejected.

Fixes: blank names (object dropped), counts clamped to [1, MAX_COUNT], box corners sorted and
clamped to [0, 1], empty boxes grown, relation phrasings mapped to their canonical names,
relations with bad indices dropped, and boxes re-packed by the layout engine when they are
missing, do not match the count, overlap between objects or break a relation.
"""

from __future__ import annotations

import math
from typing import Any

from scenewright.planner.geometry import overlap_violations, relation_violations
from scenewright.planner.layout import LayoutItem, layout
from scenewright.planner.lexicon import RELATION_PHRASES, RELATIONS
from scenewright.planner.plan import (
    MAX_ATTRIBUTES,
    MAX_COUNT,
    MAX_NAME_CHARS,
    MAX_OBJECTS,
    MAX_RELATIONS,
    MAX_TEXT_CHARS,
    Plan,
)

MIN_BOX = 0.02  # smallest side a repaired box gets


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fix_box(raw: Any, where: str, changes: list[str]) -> list[float] | None:
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        changes.append(f"{where}: not four numbers; dropped")
        return None
    values = [_number(v) for v in raw]
    if any(v is None for v in values):
        changes.append(f"{where}: not four numbers; dropped")
        return None
    x0, y0, x1, y1 = (float(v) for v in values if v is not None)
    if 2.0 < max(x0, y0, x1, y1) <= 1024:
        # Pixels on a square canvas (LMD-style 512 canvas): scale to [0, 1].
        scale = 512.0 if max(x0, y0, x1, y1) <= 512 else 1024.0
        x0, y0, x1, y1 = x0 / scale, y0 / scale, x1 / scale, y1 / scale
        changes.append(f"{where}: read as pixels of a {int(scale)} canvas and scaled to [0, 1]")
    box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
    if box != [x0, y0, x1, y1]:
        changes.append(f"{where}: corners sorted")
    clamped = [min(1.0, max(0.0, v)) for v in box]
    if clamped != box:
        changes.append(f"{where}: clamped to [0, 1]")
    for lo, hi in ((0, 2), (1, 3)):
        if clamped[hi] - clamped[lo] < MIN_BOX:
            mid = min(1 - MIN_BOX / 2, max(MIN_BOX / 2, (clamped[lo] + clamped[hi]) / 2))
            clamped[lo], clamped[hi] = mid - MIN_BOX / 2, mid + MIN_BOX / 2
            changes.append(f"{where}: empty, grown to {MIN_BOX}")
    return [round(v, 4) for v in clamped]


def _fix_count(raw: Any, where: str, changes: list[str]) -> int:
    number = _number(raw)
    if number is None:
        changes.append(f"{where}: {raw!r} is not a number; set to 1")
        return 1
    count = round(number)
    if count < 1:
        changes.append(f"{where}: {raw} raised to 1")
        return 1
    if count > MAX_COUNT:
        changes.append(f"{where}: {raw} capped at the maximum of {MAX_COUNT}")
        return MAX_COUNT
    if count != number:
        changes.append(f"{where}: {raw} rounded to {count}")
    return count


def repair_data(data: Any, prompt: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Fix what can be fixed in raw plan JSON; return the fixed dict and the changes made."""
    if not isinstance(data, dict):
        raise ValueError("the plan must be a JSON object")
    changes: list[str] = []
    out: dict[str, Any] = {k: v for k, v in data.items() if k in ("prompt", "global_prompt", "background")}
    for key in sorted(set(data) - {"prompt", "global_prompt", "background", "objects", "relations"}):
        changes.append(f"{key}: not a plan field; dropped")
    if prompt is not None and not str(out.get("prompt") or "").strip():
        out["prompt"] = prompt
    for key in ("global_prompt", "background"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            changes.append(f"{key}: not text; dropped")
            del out[key]
    raw_objects = data.get("objects") or []
    if not isinstance(raw_objects, list):
        raise ValueError("objects must be a list")
    objects: list[dict[str, Any]] = []
    remap: dict[int, int] = {}
    beyond = 0  # objects past MAX_OBJECTS: one note for all of them, not one line each
    for index, raw in enumerate(raw_objects):
        where = f"objects[{index}]"
        if len(objects) >= MAX_OBJECTS:
            beyond += 1
            continue
        if not isinstance(raw, dict) or not str(raw.get("name") or "").strip():
            changes.append(f"{where}: no name; dropped")
            continue
        if not isinstance(raw["name"], str):  # 5 or {"x": 1} is not a thing anyone asked to draw
            changes.append(f"{where}.name: {type(raw['name']).__name__}, not text; dropped")
            continue
        obj: dict[str, Any] = {"name": " ".join(str(raw["name"]).split())}
        obj["count"] = _fix_count(raw.get("count", 1), f"{where}.count", changes)
        attributes = raw.get("attributes") or []
        obj["attributes"] = (
            [a.strip()[:MAX_NAME_CHARS] for a in attributes if isinstance(a, str) and a.strip()][
                :MAX_ATTRIBUTES
            ]
            if isinstance(attributes, list)
            else []
        )
        if isinstance(raw.get("prompt"), str):
            obj["prompt"] = raw["prompt"][:MAX_TEXT_CHARS]
        raw_boxes = raw.get("boxes") or []
        if not isinstance(raw_boxes, list):
            changes.append(f"{where}.boxes: not a list of boxes; re-packed")
            raw_boxes = []
        boxes = [
            box
            for k, b in enumerate(raw_boxes)
            if (box := _fix_box(b, f"{where}.boxes[{k}]", changes)) is not None
        ]
        if boxes and len(boxes) != obj["count"]:
            changes.append(f"{where}.boxes: {len(boxes)} boxes for a count of {obj['count']}; re-packed")
            boxes = []
        obj["boxes"] = boxes
        remap[index] = len(objects)
        objects.append(obj)
    if beyond:
        changes.append(f"objects: {beyond} beyond the maximum of {MAX_OBJECTS}; dropped")
    out["objects"] = objects
    relations: list[dict[str, Any]] = []
    raw_relations = data.get("relations") or []
    for index, raw in enumerate(raw_relations if isinstance(raw_relations, list) else []):
        where = f"relations[{index}]"
        if not isinstance(raw, dict):
            changes.append(f"{where}: not an object; dropped")
            continue
        name = " ".join(str(raw.get("relation", "")).lower().replace("_", " ").split())
        canonical = name if name in RELATIONS else RELATION_PHRASES.get(name)
        if canonical is None:
            changes.append(f"{where}: unknown relation {name!r}; dropped")
            continue
        if canonical != name:
            changes.append(f"{where}: {name!r} read as {canonical!r}")
        s, o = _number(raw.get("subject")), _number(raw.get("object"))
        if s is None or o is None or int(s) not in remap or int(o) not in remap or int(s) == int(o):
            changes.append(f"{where}: subject/object do not name two objects of the plan; dropped")
            continue
        rel = {"subject": remap[int(s)], "relation": canonical, "object": remap[int(o)]}
        if rel in relations:
            changes.append(f"{where}: duplicate; dropped")
            continue
        relations.append(rel)
    if len(relations) > MAX_RELATIONS:
        changes.append(
            f"relations: {len(relations) - MAX_RELATIONS} beyond the maximum of {MAX_RELATIONS}; dropped"
        )
        relations = relations[:MAX_RELATIONS]
    out["relations"] = relations
    return out, changes


MAX_CHANGE_LINES = 8  # repair notes shown per plan; the rest are counted


def repack(plan: Plan, seed: int = 0) -> tuple[Plan, list[str]]:
    """New boxes for every object from the layout engine; relations it cannot honour are dropped."""
    items = [LayoutItem(o.name, o.count) for o in plan.objects]
    triples = [(r.subject, r.relation, r.object) for r in plan.relations]
    result = layout(items, triples, seed)
    data = plan.model_dump()
    for obj, boxes in zip(data["objects"], result.boxes, strict=True):
        obj["boxes"] = boxes
    data["relations"] = [data["relations"][k] for k in result.kept]
    return Plan.model_validate(data), result.warnings


def repair_plan(data: Any, prompt: str | None = None, seed: int = 0) -> tuple[Plan, list[str]]:
    """A valid, drawable plan from raw JSON, and what was changed; raises ``ValidationError``
    (or ``ValueError`` for non-objects) when it cannot be repaired."""
    fixed, changes = repair_data(data, prompt)
    plan = Plan.model_validate(fixed)
    reasons: list[str] = []
    if any(not o.boxes for o in plan.objects):
        reasons.append("some objects had no usable boxes")
    else:
        reasons.extend(overlap_violations(plan))
        reasons.extend(relation_violations(plan))
    if plan.objects and reasons:
        plan, dropped = repack(plan, seed)
        changes.append("boxes re-packed by the layout engine (" + "; ".join(reasons) + ")")
        changes.extend(dropped)
    return plan, summarise_changes(changes)


def summarise_changes(changes: list[str], keep: int = MAX_CHANGE_LINES) -> list[str]:
    """One line per kind of change, naming where it happened, and at most ``keep`` lines.

    Why: a broken answer repeats one problem for every box of every object, and users read a
    list of 13 "empty, grown" lines as noise (an unbounded answer once printed 19,981 lines).
    """
    places: dict[str, list[str]] = {}
    for change in dict.fromkeys(changes):  # exact repeats once, first-seen order kept
        where, sep, what = change.partition(": ")
        located = bool(sep) and " " not in where
        places.setdefault(what if located else change, []).extend([where] if located else [])
    lines: list[str] = []
    for what, found in places.items():
        spots = list(dict.fromkeys(found))
        if not spots:
            lines.append(what)
            continue
        shown = ", ".join(spots[:3]) + (f" and {len(spots) - 3} more" if len(spots) > 3 else "")
        lines.append(f"{shown}: {what}")
    if len(lines) > keep:
        lines = [*lines[: keep - 1], f"and {len(lines) - keep + 1} more kinds of change"]
    return lines
