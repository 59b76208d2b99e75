"""Scene commands ("start over", "new:", "reset", "clear", "from scratch") begin a new scene; no
command or request word is ever planned as an object; "swap the colours" edits; an edit that
cannot be made is answered in the turn's notes, which every face shows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenewright.agent.followup import apply_edit, parse_edit
from scenewright.agent.nodes import plan_node
from scenewright.planner.parse import parse
from scenewright.planner.plan import Plan, PlanObject
from scenewright.planner.rules import plan_with_rules
from scenewright.planner.scene_commands import COMMAND_WORDS, scene_command

NEW_SCENES = {
    "start over with three green rings": "three green rings",
    "new: two blue hearts": "two blue hearts",
    "New scene: a red star": "a red star",
    "reset": "",
    "Reset the scene.": "",
    "clear": "",
    "clear everything": "",
    "from scratch: a yellow circle": "a yellow circle",
    "two purple squares from scratch": "two purple squares",
    "ok, start again with a cyan ring": "a cyan ring",
    "let's start over and draw a red circle": "a red circle",
    "restart: four stars": "four stars",
    "start a new scene with a white heart": "a white heart",
}
NOT_COMMANDS = [
    "a clear glass on a table",
    "a new car",
    "new york at night",
    "a red circle left of a blue square",
]


def _scene() -> Plan:
    return Plan(
        prompt="a red circle left of a blue square",
        objects=[
            PlanObject(name="circle", attributes=["red"], boxes=[(0.05, 0.3, 0.4, 0.65)]),
            PlanObject(name="square", attributes=["blue"], boxes=[(0.6, 0.3, 0.95, 0.65)]),
        ],
    )


@pytest.mark.parametrize(("text", "request_"), NEW_SCENES.items())
def test_scene_commands_begin_a_new_scene_with_the_request_after_them(text: str, request_: str) -> None:
    found = scene_command(text)
    assert found is not None and found.request == request_
    assert parse_edit(text, _scene()) is None  # never read as an edit of the old scene
    if request_:
        names = [o.name for o in parse(text).objects]
        assert names == [o.name for o in parse(request_).objects]
        assert not set(names) & COMMAND_WORDS


@pytest.mark.parametrize("text", NOT_COMMANDS)
def test_words_that_only_look_like_commands_stay_scenes(text: str) -> None:
    assert scene_command(text) is None


@pytest.mark.parametrize(
    "text",
    ["please draw a red circle", "draw me two squares", "make three stars", "I want to see a ring",
     "start over with two circles", "new: a star", "render a heart please", "show a star and a new ring"],
)  # fmt: skip
def test_no_request_or_command_word_becomes_an_object(text: str) -> None:
    scene = parse(text)
    assert scene.objects and not {o.name for o in scene.objects} & COMMAND_WORDS


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(COMMAND_WORDS)), min_size=1, max_size=3),
    st.sampled_from(["a red circle", "two blue squares", "a cat", "three stars left of a ring"]),
    st.booleans(),
)
def test_no_object_name_is_a_command_word(words: list[str], scene: str, before: bool) -> None:
    text = f"{' '.join(words)} {scene}" if before else f"{scene} and a {' '.join(words)}"
    try:
        objects = parse(text).objects
    except ValueError:  # "names no object": refused, never planned as one
        return
    assert not {o.name for o in objects} & COMMAND_WORDS
    assert not any(set(o.name.split()) <= COMMAND_WORDS for o in objects)


def _plan_turn(request: str, plan: Plan | None) -> dict:
    tools = SimpleNamespace(planner=plan_with_rules)
    state = {"request": request, "plan": plan.to_json_dict() if plan else {}, "seed": 0, "turn": 1}
    return plan_node(state, tools)  # type: ignore[arg-type]


def test_the_agent_plans_a_new_scene_and_resets_in_words() -> None:
    update = _plan_turn("start over with three green rings", _scene())
    assert update["plan_source"] == "rules"
    assert [(o["name"], o["count"]) for o in update["candidate"]["objects"]] == [("ring", 3)]
    reset = _plan_turn("reset", _scene())
    assert reset["status"] == "help" and reset["plan"] == {}
    assert reset["notes"] and "started a new scene" in reset["notes"][0]


def test_swap_the_colours_of_two_objects() -> None:
    plan = _scene()
    for text in ("swap the colours of the circle and the square", "swap the colors", "switch their colours"):
        edit = parse_edit(text, plan)
        assert edit is not None and edit.kind == "swap", text
        out = apply_edit(plan, edit)
        assert [o["attributes"] for o in out.plan["objects"]] == [["blue"], ["red"]]
        assert out.plan["prompt"].startswith("a blue circle")


def test_an_edit_that_cannot_be_made_is_answered_in_the_notes() -> None:
    update = _plan_turn("swap the colours of the circle and the cat", _scene())
    assert update["status"] == "help"
    assert update["notes"] == update["errors"] and "names no object of this scene" in update["notes"][0]
