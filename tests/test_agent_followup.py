"""Follow-up reading and plan editing (no rendering), and the overlay pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenewright.agent.followup import apply_edit, describe, parse_edit
from scenewright.planner.plan import Plan
from scenewright.planner.rules import plan_with_rules
from scenewright.tools.overlay import layout_overlay, write_attention_sheet

SCENE = "three red apples left of a blue vase, a cat on the right, at night"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return plan_with_rules(SCENE).plan


@pytest.mark.parametrize(
    ("text", "kind", "target", "value"),
    [
        ("make it four apples", "count", 0, 4),
        ("Now 5 apples, please", "count", 0, 5),
        ("two apples instead", "count", 0, 2),
        ("move the cat to the left", "move", 2, "left"),
        ("put the vase on the right side", "move", 1, "right"),
        ("now at sunset", "background", None, "at sunset"),
        ("make it night", "background", None, "at night"),
        ("in a snowy forest", "background", None, "in a snowy forest"),
        ("make the vase green", "color", 1, "green"),
        ("the apples should be yellow", "color", 0, "yellow"),
        ("change the cat to orange", "color", 2, "orange"),
        ("remove the cat", "remove", 2, None),
        ("add a yellow star", "add", None, "a yellow star"),
    ],
)
def test_follow_ups_are_read_as_edits(
    plan: Plan, text: str, kind: str, target: int | None, value: object
) -> None:
    edit = parse_edit(text, plan)
    assert edit is not None, text
    assert (edit.kind, edit.target, edit.value) == (kind, target, value)


@pytest.mark.parametrize(
    "text", ["a dog on a sofa", "two red circles left of a blue square", "a cat", "hello"]
)
def test_new_requests_are_not_edits(plan: Plan, text: str) -> None:
    assert parse_edit(text, plan) is None


def test_edits_touch_only_what_was_asked(plan: Plan) -> None:
    original = plan.to_json_dict()
    four = Plan.model_validate(apply_edit(plan, parse_edit("make it four green apples", plan), 0).plan)  # type: ignore[arg-type]
    assert four.objects[0].count == 4 and len(four.objects[0].boxes) == 4
    assert four.objects[0].attributes == ["green"] and four.objects[0].prompt == "green apple"
    assert four.objects[1:] == plan.objects[1:] and four.relations == plan.relations
    assert four.global_prompt.startswith("four green apples left of a blue vase")

    fewer = Plan.model_validate(apply_edit(plan, parse_edit("two apples", plan), 0).plan)  # type: ignore[arg-type]
    assert fewer.objects[0].boxes == plan.objects[0].boxes[:2]

    gone = apply_edit(plan, parse_edit("remove the vase", plan), 0).plan  # type: ignore[arg-type]
    assert [o["name"] for o in gone["objects"]] == ["apple", "cat"] and gone["relations"] == []

    moved = apply_edit(plan, parse_edit("move the apples to the right", plan), 0)  # type: ignore[arg-type]
    assert moved.plan["relations"] == []  # "apples left of the vase" no longer holds: dropped, and said
    assert any("'apple left of vase' no longer holds" in n for n in moved.notes)
    assert moved.plan["objects"][0]["boxes"][-1][2] == pytest.approx(0.96)

    added = Plan.model_validate(apply_edit(plan, parse_edit("add two yellow stars", plan), 0).plan)  # type: ignore[arg-type]
    assert (
        added.objects[:3] == plan.objects and added.objects[3].count == 2 and len(added.objects[3].boxes) == 2
    )
    assert plan.to_json_dict() == original  # the previous plan itself is never changed


def test_describe_reads_like_a_prompt() -> None:
    data = {
        "objects": [
            {"name": "apple", "count": 4, "attributes": ["red"]},
            {"name": "vase", "count": 1, "attributes": ["blue"]},
        ],
        "relations": [{"subject": 0, "relation": "left of", "object": 1}],
        "background": "at sunset",
    }
    assert describe(data) == "four red apples left of a blue vase, at sunset"


def test_overlay_and_attention_sheet(tmp_path: Path, plan: Plan) -> None:
    image = Image.new("RGB", (64, 64))
    overlay = layout_overlay(image, plan)
    assert overlay.size == (512, 512) and overlay.getbbox() is not None  # boxes were drawn
    assert write_attention_sheet(None, tmp_path / "a.png", {}) is None
    assert write_attention_sheet({}, tmp_path / "a.png", {}) is None and not (tmp_path / "a.png").exists()
    maps = {
        "apple": np.random.default_rng(0).random((16, 16)),
        "vase": np.zeros((16, 16)),
        "bad": np.zeros(3),
    }
    written = write_attention_sheet(maps, tmp_path / "a.png", {"version": "test"}, image)
    assert written is not None and Image.open(written).size == (3 * 192, 192 + 192 // 6)
