"""Follow-up requests that edit the previous plan instead of starting a new scene.

"make it four apples", "move the cat to the left", "now at sunset", "make the vase green",
"remove the cat", "add a yellow star": each is read into an :class:`Edit` and applied to the
plan's JSON, touching only the fields the user named (other objects keep their boxes), so that
re-rendering with the same seed shows just the change. Anything not recognised is a new request.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import inflect

from scenewright.errors import ScenewrightError
from scenewright.planner.geometry import group_holds, overlap_area, union_box
from scenewright.planner.lexicon import COLORS
from scenewright.planner.parse import parse, singular
from scenewright.planner.plan import MAX_COUNT, Plan

_engine = inflect.engine()
_LEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|now|then|and|but|please|actually|also|instead|so|no|wait)[,!]?\s+)*"
    r"(?:(?:make|change|set|turn) (?:it|that|this|them|the scene|the picture|the image)(?: to| into)?\s+"
    r"|i (?:want|would like|'d like)\s+|let'?s have\s+|there should be\s+)?"
)
_TAIL = re.compile(r"\s*(?:,?\s*(?:instead|please|now|then|too))+$")
_TIMES = ("night", "sunset", "sunrise", "dawn", "dusk", "noon", "midnight", "daytime", "twilight")
_PLACES = ("left", "right", "top", "bottom", "center", "centre", "middle")
_COLOR_RE = "|".join(sorted(COLORS, key=len, reverse=True))
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a dozen": 12, "dozen": 12, "a": 1, "an": 1,
}  # fmt: skip
_MARGIN = 0.04


@dataclass
class Edit:
    """One change to a plan: what kind, which object (index), and the new value."""

    kind: str  # "count", "move", "background", "color", "remove", "add"
    target: int | None = None
    value: Any = None
    words: str = ""
    colour: str | None = None  # a colour named along with a count ("four green apples")


@dataclass
class EditOutcome:
    """The edited plan's JSON and what the user should be told about it."""

    plan: dict[str, Any]
    summary: str
    notes: list[str] = field(default_factory=list)


def _clean(text: str) -> str:
    text = " ".join(text.lower().strip().rstrip(".!").split())
    text = _LEAD.sub("", text, count=1)
    return _TAIL.sub("", text).strip()


def _find(plan: Plan, phrase: str) -> int | None:
    """The index of the object a phrase names ("the cat", "apples", "red apple", "it")."""
    words = [w for w in phrase.split() if w not in ("the", "a", "an", "all", "my", "that", "those", "these")]
    if not words:
        return None
    if words in (["it"], ["them"], ["one"]):
        return 0 if len(plan.objects) == 1 else None
    noun = singular(words[-1], plural_expected=True)
    matches = [
        i
        for i, o in enumerate(plan.objects)
        if o.name.lower() in (words[-1], noun) or o.name.lower().split()[-1] in (words[-1], noun)
    ]
    if len(matches) > 1:
        narrowed = [i for i in matches if set(words[:-1]) <= {a.lower() for a in plan.objects[i].attributes}]
        matches = narrowed or matches
    return matches[0] if len(matches) == 1 else None


def parse_edit(text: str, plan: Plan) -> Edit | None:
    """Read ``text`` as an edit of ``plan``; None when it reads as a new request."""
    if not plan.objects and plan.background is None:
        return None
    clean = _clean(text)
    if not clean:
        return None
    move = re.fullmatch(
        rf"(?:move|put|place|shift|push) (?P<obj>.+?) (?:over |more )?(?:to|on|at|into|towards?) "
        rf"(?:the )?(?P<where>{'|'.join(_PLACES)})(?: side| edge| of the (?:image|picture|scene))?",
        clean,
    )
    if move:
        target = _find(plan, move["obj"])
        return None if target is None else Edit("move", target, move["where"], clean)
    color = (
        re.fullmatch(rf"(?:make|paint|colou?r|turn) (?P<obj>.+?) (?P<c>{_COLOR_RE})", clean)
        or re.fullmatch(rf"(?:change|switch) (?P<obj>.+?) to (?P<c>{_COLOR_RE})", clean)
        or re.fullmatch(rf"(?P<obj>.+?) (?:should be|in|is|are|to be) (?P<c>{_COLOR_RE})", clean)
    )
    if color:
        target = _find(plan, color["obj"])
        return None if target is None else Edit("color", target, color["c"], clean)
    remove = re.fullmatch(
        r"(?:remove|delete|drop|take out|get rid of|without|no more|lose) (?P<obj>.+)", clean
    )
    if remove:
        target = _find(plan, remove["obj"])
        return None if target is None else Edit("remove", target, None, clean)
    add = re.fullmatch(r"(?:add|include|put in|plus) (?P<what>.+)", clean)
    if add:
        return Edit("add", None, add["what"], clean)
    time_of_day = re.fullmatch(rf"(?:at )?(?P<t>{'|'.join(_TIMES)})(?:time)?", clean)
    if time_of_day and (clean != text.lower().strip() or clean.startswith("at ")):
        return Edit("background", None, f"at {time_of_day['t']}", clean)
    if re.fullmatch(r"(?:at|in|during|under|on|by) .+", clean) and not _names_object(clean, plan):
        return Edit("background", None, clean, clean)
    count = re.fullmatch(r"(?P<n>\d+|[a-z]+(?: dozen)?) (?P<rest>.+)", clean)
    if count:
        number = _count(count["n"])
        target = _find(plan, count["rest"]) if number is not None else None
        explicit = count["n"] not in ("a", "an") or clean != " ".join(text.lower().split()).rstrip(".!")
        if target is not None and number is not None and explicit:
            edit = Edit("count", target, number, clean)
            colours = [w for w in count["rest"].split() if w in COLORS]
            if colours:
                edit.colour = colours[-1]  # "make it four green apples": the colour changes as well
            return edit
    return None


def _names_object(text: str, plan: Plan) -> bool:
    return any(o.name.lower() in text.split() for o in plan.objects)


def _count(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


def apply_edit(plan: Plan, edit: Edit, seed: int = 0) -> EditOutcome:
    """Apply ``edit`` to a copy of ``plan``'s JSON; the result is validated by the caller."""
    data = plan.model_dump(mode="json")
    objects: list[dict[str, Any]] = data["objects"]
    notes: list[str] = []
    if edit.kind == "background":
        data["background"] = edit.value
        summary = f"background set to '{edit.value}'"
    elif edit.kind == "count":
        assert edit.target is not None
        obj = objects[edit.target]
        wanted = max(1, min(MAX_COUNT, int(edit.value)))
        if wanted != int(edit.value):
            notes.append(f"count {edit.value} capped at {wanted}")
        old = obj["count"]
        obj["count"] = wanted
        obj["boxes"] = _fit_group(data, edit.target, wanted)
        summary = f"{obj['name']}: count {old} -> {wanted}"
        if edit.colour:
            _set_colour(obj, edit.colour)
            summary += f", colour {edit.colour}"
    elif edit.kind == "color":
        assert edit.target is not None
        obj = objects[edit.target]
        _set_colour(obj, edit.value)
        summary = f"{obj['name']}: colour -> {edit.value}"
    elif edit.kind == "move":
        assert edit.target is not None
        obj = objects[edit.target]
        obj["boxes"] = _move_group(obj["boxes"], edit.value)
        summary = f"{obj['name']}: moved to the {edit.value}"
        notes.extend(_fix_relations(data, edit.target))
    elif edit.kind == "remove":
        assert edit.target is not None
        removed = objects.pop(edit.target)
        kept = []
        for rel in data["relations"]:
            if edit.target in (rel["subject"], rel["object"]):
                continue
            rel["subject"] -= rel["subject"] > edit.target
            rel["object"] -= rel["object"] > edit.target
            kept.append(rel)
        data["relations"] = kept
        summary = f"removed the {removed['name']}"
    elif edit.kind == "add":
        added, add_notes = _added_objects(str(edit.value), objects, seed)
        objects.extend(added)
        notes.extend(add_notes)
        summary = "added " + ", ".join(describe_object(o) for o in added)
    else:  # pragma: no cover - parse_edit makes only the kinds above
        raise ValueError(f"unknown edit {edit.kind}")
    if edit.kind in ("count", "move", "add"):
        notes.extend(_overlap_notes(objects))
    text = describe(data)
    data["prompt"] = text
    data["global_prompt"] = text
    return EditOutcome(data, summary, notes)


def _set_colour(obj: dict[str, Any], colour: str) -> None:
    attributes = [a for a in obj["attributes"] if a.lower() not in COLORS]
    obj["attributes"] = [colour, *attributes]
    obj["prompt"] = " ".join([*obj["attributes"], obj["name"]])


def _fit_group(data: dict[str, Any], target: int, count: int) -> list[list[float]]:
    """New boxes for a recounted object, as large as possible (down to 40% of the old size)
    while they stay clear of the other objects' boxes and keep the object's relations."""
    objects = data["objects"]
    old = objects[target]["boxes"]
    others = [tuple(b) for i, o in enumerate(objects) if i != target for b in o["boxes"]]
    boxes = _resize_group(old, count)
    for scale in (1.0, 0.85, 0.7, 0.55, 0.4):
        boxes = _resize_group(old, count, scale)
        clear = all(overlap_area(tuple(b), o) <= 1e-4 for b in boxes for o in others)  # type: ignore[arg-type]
        if clear and _relations_hold(data, target, boxes):
            return boxes
    return _resize_group(old, count)


def _relations_hold(data: dict[str, Any], target: int, boxes: list[list[float]]) -> bool:
    objects = data["objects"]
    for rel in data["relations"]:
        if target not in (rel["subject"], rel["object"]) or rel["relation"] == "between":
            continue
        side = {
            i: [tuple(b) for b in (boxes if i == target else objects[i]["boxes"])]
            for i in (rel["subject"], rel["object"])
        }
        if not group_holds(rel["relation"], side[rel["subject"]], side[rel["object"]]):
            return False
    return True


def _resize_group(boxes: list[list[float]], count: int, scale: float = 1.0) -> list[list[float]]:
    """Boxes for ``count`` instances: fewer keeps the first ones; more lays a grid of boxes of the
    old mean size around the old group's centre, shrunk if the canvas is too small for it."""
    if not boxes:
        return []
    if count <= len(boxes):
        return [list(b) for b in boxes[:count]]
    x0, y0, x1, y1 = union_box([tuple(b) for b in boxes])  # type: ignore[misc]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w = scale * sum(b[2] - b[0] for b in boxes) / len(boxes)
    h = scale * sum(b[3] - b[1] for b in boxes) / len(boxes)
    rows = max(1, round(math.sqrt(count / 3)))
    cols = math.ceil(count / rows)
    gap = 0.25
    span_w, span_h = cols * w * (1 + gap), rows * h * (1 + gap)
    shrink = min(1.0, (1 - 2 * _MARGIN) / span_w, (1 - 2 * _MARGIN) / span_h)
    w, h, span_w, span_h = w * shrink, h * shrink, span_w * shrink, span_h * shrink
    left = min(max(_MARGIN, cx - span_w / 2), 1 - _MARGIN - span_w)
    top = min(max(_MARGIN, cy - span_h / 2), 1 - _MARGIN - span_h)
    out: list[list[float]] = []
    for k in range(count):
        r, c = divmod(k, cols)
        in_row = min(cols, count - r * cols)
        offset = (cols - in_row) * w * (1 + gap) / 2  # centre a short last row
        bx = left + offset + c * w * (1 + gap) + w * gap / 2
        by = top + r * h * (1 + gap) + h * gap / 2
        out.append([round(bx, 4), round(by, 4), round(bx + w, 4), round(by + h, 4)])
    return out


def _move_group(boxes: list[list[float]], where: str) -> list[list[float]]:
    """Shift the whole group, unchanged in shape, to one side of the canvas."""
    if not boxes:
        return boxes
    x0, y0, x1, y1 = union_box([tuple(b) for b in boxes])  # type: ignore[misc]
    dx = dy = 0.0
    if where == "left":
        dx = _MARGIN - x0
    elif where == "right":
        dx = 1 - _MARGIN - x1
    elif where == "top":
        dy = _MARGIN - y0
    elif where == "bottom":
        dy = 1 - _MARGIN - y1
    else:
        dx, dy = 0.5 - (x0 + x1) / 2, 0.5 - (y0 + y1) / 2
    return [
        [round(b[0] + dx, 4), round(b[1] + dy, 4), round(b[2] + dx, 4), round(b[3] + dy, 4)] for b in boxes
    ]


_OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _fix_relations(data: dict[str, Any], moved: int) -> list[str]:
    """Relations of a moved object that no longer hold are flipped when the opposite holds, else dropped."""
    notes: list[str] = []
    kept = []
    objects = data["objects"]
    for rel in data["relations"]:
        if moved not in (rel["subject"], rel["object"]) or rel["relation"] == "between":
            kept.append(rel)
            continue
        subject = [tuple(b) for b in objects[rel["subject"]]["boxes"]]
        obj = [tuple(b) for b in objects[rel["object"]]["boxes"]]
        if group_holds(rel["relation"], subject, obj):
            kept.append(rel)
            continue
        names = f"{objects[rel['subject']]['name']} {{}} {objects[rel['object']]['name']}"
        flipped = _OPPOSITE.get(rel["relation"])
        if flipped and group_holds(flipped, subject, obj):
            notes.append(f"relation '{names.format(rel['relation'])}' is now '{names.format(flipped)}'")
            kept.append({**rel, "relation": flipped})
        else:
            notes.append(f"relation '{names.format(rel['relation'])}' no longer holds; dropped")
    data["relations"] = kept
    return notes


def _overlap_notes(objects: list[dict[str, Any]]) -> list[str]:
    notes = []
    for i, a in enumerate(objects):
        for j in range(i + 1, len(objects)):
            b = objects[j]
            if any(overlap_area(tuple(p), tuple(q)) > 1e-4 for p in a["boxes"] for q in b["boxes"]):
                notes.append(f"the {a['name']} and the {b['name']} boxes now overlap")
    return notes


def _free_box(taken: list[list[float]], size: float) -> list[float] | None:
    """The first spot on a coarse grid (centre first) where a square box overlaps nothing."""
    steps = [i / 20 for i in range(21)]
    spots = sorted(
        (
            (x, y)
            for x in steps
            for y in steps
            if _MARGIN <= x <= 1 - _MARGIN - size and _MARGIN <= y <= 1 - _MARGIN - size
        ),
        key=lambda p: (abs(p[1] + size / 2 - 0.5), abs(p[0] + size / 2 - 0.5)),
    )
    for x, y in spots:
        box = (x, y, x + size, y + size)
        if all(overlap_area(box, tuple(t)) <= 0 for t in taken):  # type: ignore[arg-type]
            return [round(v, 4) for v in box]
    return None


def _added_objects(
    text: str, existing: list[dict[str, Any]], seed: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Objects parsed from "add ..." text, placed in free space so that no existing box moves."""
    try:
        scene = parse(text)
    except ScenewrightError as error:
        raise ValueError(f"could not read what to add: {error}") from error
    taken = [b for o in existing for b in o["boxes"]]
    added: list[dict[str, Any]] = []
    notes: list[str] = []
    for spec in scene.objects:
        boxes: list[list[float]] = []
        for size in (0.22, 0.16, 0.1):
            boxes = []
            trial = list(taken)
            for _ in range(spec.count):
                box = _free_box(trial, size)
                if box is None:
                    break
                boxes.append(box)
                trial.append(box)
            if len(boxes) == spec.count:
                break
        if len(boxes) != spec.count:
            boxes = []
            notes.append(f"no free space for the {spec.name}; the layout will be re-packed")
        taken.extend(boxes)
        added.append(
            {"name": spec.name, "count": spec.count, "attributes": list(spec.attributes), "boxes": boxes}
        )
    return added, notes


def describe_object(obj: dict[str, Any]) -> str:
    """ "four red apples", "a blue vase": the words a prompt uses for one plan object."""
    words = " ".join([*obj.get("attributes", []), obj["name"]])
    count = int(obj.get("count", 1))
    if count == 1:
        return str(_engine.a(words))
    return f"{_engine.number_to_words(str(count))} {' '.join([*obj.get('attributes', []), _engine.plural_noun(obj['name'])])}"


def describe(data: dict[str, Any]) -> str:
    """A prompt for the whole plan: objects, their relations, then the setting."""
    objects = data["objects"]
    phrases = [describe_object(o) for o in objects]
    used: set[int] = set()
    parts: list[str] = []
    for rel in data.get("relations", []):
        s, o = rel["subject"], rel["object"]
        subject = phrases[s] if s not in used else f"the {objects[s]['name']}"
        target = phrases[o] if o not in used else f"the {objects[o]['name']}"
        parts.append(f"{subject} {rel['relation']} {target}")
        used.update((s, o))
    parts.extend(p for i, p in enumerate(phrases) if i not in used)
    if data.get("background"):
        parts.append(str(data["background"]))
    return ", ".join(parts) or str(data.get("prompt", ""))


def plan_json(data: Any) -> str:
    """Plan JSON for people: indented, but each box and attribute list on one line."""

    def render(value: Any, indent: int) -> str:
        pad, inner = " " * indent, " " * (indent + 2)
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(k)}: {render(v, indent + 2)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and value and any(isinstance(v, dict | list) for v in value):
            items = [f"{inner}{render(v, indent + 2)}" for v in value]
            return "[\n" + ",\n".join(items) + f"\n{pad}]"
        return json.dumps(value, separators=(", ", ": "))

    return render(data, 0)
