"""Refine's rounds in words: what each round changed, or why the previous image was kept.

A round's record (see :func:`~scenewright.executor.refine.render_refine`) holds what the verifier
saw of every object before and after the repaint (found/asked, inside its boxes, the colours of
its kind, boxes reached, stray blobs) and the relations. Without these sentences a refine that
returns the same image says nothing; with them it says "square: count 0 -> 1" or "not kept:
the circle got worse (count 2 -> 1)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scenewright.planner.plan import Plan

Record = Mapping[str, Any]


def describe_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What differs between two views of one object, in words ("count 2 -> 3 (3 asked)")."""
    parts: list[str] = []
    if "found" in before and before.get("found") != after.get("found"):
        parts.append(f"count {before['found']} -> {after.get('found')} ({after.get('wanted')} asked)")
    if "in_boxes" in before and before.get("in_boxes") != after.get("in_boxes"):
        parts.append("now inside its boxes" if after.get("in_boxes") else "no longer inside its boxes")
    if "colours" in before and set(before.get("colours") or []) != set(after.get("colours") or []):
        parts.append(f"colour {_colours(before)} -> {_colours(after)}")
    if "boxes_hit" in before and before.get("boxes_hit") != after.get("boxes_hit"):
        parts.append(f"boxes reached {before['boxes_hit']}/{before.get('boxes')} -> {after.get('boxes_hit')}/{after.get('boxes')}")  # fmt: skip
    if "stray_blobs" in before and before.get("stray_blobs") != after.get("stray_blobs"):
        parts.append(f"stray blobs {before['stray_blobs']} -> {after.get('stray_blobs')}")
    return parts


def describe_state(fact: Mapping[str, Any]) -> str:
    """One object as the verifier saw it ("2 of 3", "reaches 1 of 2 boxes")."""
    if "found" in fact:
        where = "" if fact.get("in_boxes", True) else ", not in its boxes"
        return f"{fact['found']} of {fact.get('wanted')}{where}"
    if "boxes_hit" in fact:
        strays = f", {fact['stray_blobs']} stray blobs" if fact.get("stray_blobs") else ""
        return f"reaches {fact['boxes_hit']} of {fact.get('boxes')} boxes{strays}"
    return "unchanged"


def _colours(fact: Mapping[str, Any]) -> str:
    return "/".join(sorted(set(fact.get("colours") or []))) or "none"


def _compare(a: Sequence[float], b: Sequence[float]) -> int:
    """+1 when ``a`` is better than ``b`` (nothing worse, something better), -1 when something is
    worse, 0 when they are the same."""
    if any(x < y for x, y in zip(a, b, strict=False)):
        return -1
    return 1 if list(a) != list(b) else 0


def _relation_name(plan: Plan, index: int) -> str:
    if index >= len(plan.relations):
        return f"relation {index}"
    rel = plan.relations[index]
    return f"'{plan.objects[rel.subject].name} {rel.relation} {plan.objects[rel.object].name}'"


def explain_round(plan: Plan, round_record: Record, before: Record, after: Record | None) -> str:
    """One round in a sentence: what it changed and that it was kept, or why it was not."""
    label = f"round {round_record.get('round')}"
    failing = [plan.objects[i].name for i in round_record.get("failing", []) if i < len(plan.objects)]
    if after is None:
        return (
            f"{label} not tried: the failing objects ({', '.join(failing)}) lie inside the boxes of "
            "objects that already pass, so there was nothing to repaint; the previous image stays"
        )
    better: list[str] = []
    worse: list[str] = []
    same: list[str] = []
    objects_before, objects_after = before.get("objects") or [], after.get("objects") or []
    states_before, states_after = before.get("states") or [], after.get("states") or []
    for index, obj in enumerate(plan.objects):
        if index >= min(len(states_before), len(states_after), len(objects_before), len(objects_after)):
            break
        change = describe_change(objects_before[index], objects_after[index])
        verdict = _compare(states_after[index], states_before[index])
        text = f"{obj.name}: {', '.join(change)}" if change else obj.name
        if verdict > 0:
            better.append(text)
        elif verdict < 0:
            worse.append(text if change else f"{obj.name} got worse")
        elif obj.name in failing:
            same.append(f"{obj.name} still {describe_state(objects_after[index])}")
    for index, (old, new) in enumerate(zip(before.get("relations") or [], after.get("relations") or [], strict=False)):  # fmt: skip
        if old and not new:
            worse.append(f"relation {_relation_name(plan, index)} broke")
        elif new and not old:
            better.append(f"relation {_relation_name(plan, index)} now holds")
    repainted = f" (repainted {', '.join(failing)})" if failing else ""
    if round_record.get("kept"):
        return f"{label} kept{repainted}: {'; '.join(better) or 'the verifier saw it improve'}"
    if worse:
        gain = f" although {'; '.join(better)}" if better else ""
        return f"{label} not kept{repainted}: it made something worse ({'; '.join(worse)}){gain}; the previous image stays"  # fmt: skip
    still = f" ({'; '.join(same)})" if same else ""
    return f"{label} not kept{repainted}: no object improved{still}; the previous image stays"


def explain_outcome(plan: Plan, history: Sequence[Record], rounds: int) -> str:
    """The whole refine in a few words: how many rounds were kept, or why none ran."""
    tried = [r for r in history[1:] if "explanation" in r]
    kept = [r for r in tried if r.get("kept")]
    if not tried:
        if rounds == 0:
            return "no round asked (rounds=0); the image is the one it started from"
        start = history[0] if history else {}
        failing_relations = [
            _relation_name(plan, i) for i, ok in enumerate(start.get("relations") or []) if not ok
        ]
        why = "every object already passes its check"
        if failing_relations:
            why += (
                f", though {', '.join(failing_relations)} does not hold "
                "(refine repaints objects, it does not move them)"
            )
        return f"changed nothing: {why}"
    if not kept:
        return f"kept the image it started from ({_rounds(len(tried))} tried, none kept)"
    return f"kept {len(kept)} of {_rounds(len(tried))}"


def _rounds(n: int) -> str:
    return f"{n} round" + ("" if n == 1 else "s")
