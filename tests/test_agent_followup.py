"""Follow-up reading and plan editing (no rendering), and the overlay pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scenewright.agent.edit_help import first_turn_edit
from scenewright.agent.followup import apply_edit, describe, parse_edit
from scenewright.errors import InvalidInputError, UnsupportedEditError
from scenewright.planner.canvas import MIN_BOX_SIDE
from scenewright.planner.geometry import group_holds, overlap_violations, relation_violations
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
    # "apples left of the vase" contradicts the move: turned round, and said; the apples reach the
    # right margin and the vase and cat, in the way, are moved aside rather than overlapped.
    assert moved.plan["relations"] == [{"subject": 0, "relation": "right of", "object": 1}]
    assert any("'apple left of vase' is now 'apple right of vase'" in n for n in moved.notes)
    assert max(b[2] for b in moved.plan["objects"][0]["boxes"]) == pytest.approx(0.96)
    assert overlap_violations(Plan.model_validate(moved.plan)) == []

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


README = "three red circles left of a blue square, a green triangle on the right"


@pytest.fixture(scope="module")
def shapes() -> Plan:
    return plan_with_rules(README, 1).plan


def edited(plan: Plan, text: str) -> tuple[Plan, list[str]]:
    edit = parse_edit(text, plan)
    assert edit is not None, text
    outcome = apply_edit(plan, edit, 1)
    result = Plan.model_validate(outcome.plan)
    assert overlap_violations(result) == [], text  # no edit ever leaves boxes overlapping
    return result, outcome.notes


@pytest.mark.parametrize(
    ("text", "target", "value"),
    [
        ("make the circles bigger", 0, "bigger"),
        ("make it bigger", None, "bigger"),
        ("bigger", None, "bigger"),
        ("shrink the square", 1, "smaller"),
        ("the triangle is too small", 2, "bigger"),
        ("make the square a bit smaller", 1, "smaller"),
    ],
)
def test_sizes_are_understood(shapes: Plan, text: str, target: int | None, value: str) -> None:
    edit = parse_edit(text, shapes)
    assert edit is not None and (edit.kind, edit.target, edit.value) == ("size", target, value)


@pytest.mark.parametrize(
    "text", ["make it fancier", "/undo", "undo", "remove the dog", "move the dog to the left", "do it again"]
)
def test_edits_we_cannot_make_are_answered_not_rendered(shapes: Plan, text: str) -> None:
    edit = parse_edit(text, shapes)
    assert edit is not None and edit.kind == "unknown"  # never None: that would be a new scene
    with pytest.raises(UnsupportedEditError) as caught:
        apply_edit(shapes, edit, 1)
    message = str(caught.value)
    assert message.startswith("follow-up: ") and "\n" not in message
    assert '"make the circles bigger"' in message and '"remove the triangle"' in message


def test_recount_keeps_the_other_objects_boxes(shapes: Plan) -> None:
    four, _ = edited(shapes, "make it four circles")
    assert four.objects[0].count == 4 and four.objects[1:] == shapes.objects[1:]
    assert all(min(b[2] - b[0], b[3] - b[1]) >= MIN_BOX_SIDE - 1e-4 for b in four.objects[0].boxes)
    assert relation_violations(four) == []


def test_move_into_a_taken_side_moves_the_others_aside(shapes: Plan) -> None:
    moved, notes = edited(shapes, "move the square to the left")
    square = moved.objects[1].boxes
    assert square[0][0] == pytest.approx(0.04, abs=0.02)  # at the left margin
    assert group_holds("left of", square, moved.objects[0].boxes)
    assert moved.relations[0].relation == "right of"  # circles left of square, turned round
    assert any("moved" in n for n in notes) and relation_violations(moved) == []


def test_growing_and_adding_touch_only_their_object(shapes: Plan) -> None:
    bigger, _ = edited(shapes, "make the square bigger")
    old, new = shapes.objects[1].boxes[0], bigger.objects[1].boxes[0]
    assert new[2] - new[0] > old[2] - old[0]
    assert bigger.objects[0] == shapes.objects[0] and bigger.objects[2] == shapes.objects[2]
    added, _ = edited(shapes, "add a yellow star")
    assert added.objects[:3] == shapes.objects and added.objects[3].name == "star"
    assert min(added.objects[3].boxes[0][2] - added.objects[3].boxes[0][0], 1) >= MIN_BOX_SIDE - 1e-4


def test_smaller_stops_at_the_smallest_drawable_box(shapes: Plan) -> None:
    edit = parse_edit("make the triangle smaller", shapes)
    assert edit is not None
    with pytest.raises(InvalidInputError, match="smallest size the model draws"):
        apply_edit(shapes, edit, 1)


def test_colour_and_removal_keep_every_box(shapes: Plan) -> None:
    red, _ = edited(shapes, "make the square red")
    assert red.objects[1].attributes == ["red"] and [o.boxes for o in red.objects] == [
        o.boxes for o in shapes.objects
    ]
    gone, _ = edited(shapes, "remove the triangle")
    assert [o.boxes for o in gone.objects] == [o.boxes for o in shapes.objects[:2]]


def test_no_chain_of_edits_leaves_boxes_overlapping() -> None:
    edits = [
        "make it five circles", "move the square to the left", "add two yellow stars", "make the circles bigger",
        "move the triangle to the top", "make it twelve circles", "add a purple heart", "move the square to the center",
        "make it bigger", "two circles", "move the circles to the bottom", "remove the square",
    ]  # fmt: skip
    for seed in range(3):
        plan = plan_with_rules(README, seed).plan
        for text in edits:
            edit = parse_edit(text, plan)
            assert edit is not None and edit.kind != "unknown", text
            try:
                outcome = apply_edit(plan, edit, seed)
            except InvalidInputError:
                continue  # "as big as the canvas allows": answered, the plan stays
            plan = Plan.model_validate(outcome.plan)
            assert overlap_violations(plan) == [], (seed, text)
            assert relation_violations(plan) == [], (seed, text)


@pytest.mark.parametrize(
    "text",
    ["make it bigger", "remove the square", "/undo", "undo", "move the square to the left", "bigger",
     "now at night", "make the circles bigger", "the square is too small", "add a green star",
     "Could you make them red?"],
)  # fmt: skip
def test_first_messages_that_edit_nothing_are_answered_with_help(text: str) -> None:
    refusal = first_turn_edit(text)
    assert refusal is not None, text
    message = str(refusal)
    assert message.startswith("follow-up: ") and "\n" not in message
    assert '"make the circles bigger"' in message and "describe" in message


@pytest.mark.parametrize(
    "text",
    [README, "two red circles left of a blue square", "a cat", "draw a red circle", "i want three stars",
     "make three red circles", "the sun above a house", "a big circle left of a smaller square"],
)  # fmt: skip
def test_first_messages_that_describe_a_scene_are_planned(text: str) -> None:
    assert first_turn_edit(text) is None


def test_the_agent_answers_edits_it_cannot_make_with_help(tmp_path: Path) -> None:
    from scenewright import Agent

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    first = agent.run("make it bigger")
    assert first.status == "help" and first.image is None and agent.history() == []
    assert first.plan is None and "no picture yet" in first.errors[0]  # nothing named "make" planned
    scene = agent.run("two red circles left of a blue square")
    assert scene.ok
    fancier = agent.run("make it fancier")
    assert fancier.status == "help" and fancier.paths["image"] == scene.paths["image"]  # last image kept
    assert '"make the circles bigger"' in fancier.errors[0] and len(agent.history()) == 1
    again = agent.run("make the circles bigger")
    assert again.ok and again.plan is not None and again.plan.objects[0].name == "circle"


def test_an_edit_that_changes_nothing_is_answered_not_rerendered() -> None:
    plan = plan_with_rules("a red circle left of a blue square").plan
    moved = Plan.model_validate(apply_edit(plan, parse_edit("move the square to the left", plan), 0).plan)  # type: ignore[arg-type]
    assert moved.objects[1].boxes != plan.objects[1].boxes
    for text, said in [
        ("move the square to the left", "the square is already on the left"),
        ("make the circle red", "the circle is already red"),
        ("make it one circle", "there is already a red circle"),
    ]:
        edit = parse_edit(text, moved)
        assert edit is not None and edit.kind != "unknown", text
        outcome = apply_edit(moved, edit, 0)
        assert outcome.unchanged and outcome.summary == said and outcome.plan == moved.model_dump(mode="json")


def test_the_agent_answers_an_edit_that_changes_nothing_unless_the_seed_changed(tmp_path: Path) -> None:
    from scenewright import Agent

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    assert agent.run("a red circle left of a blue square").ok
    moved = agent.run("move the square to the left")
    assert moved.ok and "square: moved to the left" in moved.notes[0]
    again = agent.run("move the square to the left")
    assert again.status == "help" and again.paths["image"] == moved.paths["image"]
    assert "the square is already on the left, so nothing changed and nothing was rendered" in again.errors[0]
    other_seed = agent.run("move the square to the left", seed=5)  # a new image of the same plan
    assert (
        other_seed.ok
        and other_seed.notes[0] == "the square is already on the left; rendered it again with seed 5"
    )
    assert len(agent.history()) == 3


@pytest.mark.parametrize("text", ["make it 0 circles", "make it zero circles", "0 circles"])
def test_a_count_of_zero_says_how_to_remove(text: str) -> None:
    plan = plan_with_rules("two red circles left of a blue square").plan
    edit = parse_edit(text, plan)
    assert edit is not None and edit.kind == "count" and edit.value == 0
    with pytest.raises(
        UnsupportedEditError, match='leaves no circles to draw; to take them out say "remove the circles"'
    ):
        apply_edit(plan, edit, 0)
