"""Every face's per-object lines and verdict come from one function, and never claim what was
not checked: an object the judge cannot check is "not checked", the verdict "cannot verify"; an
object outside its boxes is "(off)"; the lines follow the pixels, not the order of the plan."""

from __future__ import annotations

from PIL import Image

from scenewright.agent.core import AgentResult
from scenewright.agent.object_report import (
    CANNOT_VERIFY,
    DIFFERS,
    MATCHES,
    exact_lines,
    exact_rows,
    result_lines,
    short_list,
    turn_summary,
    verdict,
)
from scenewright.planner.plan import Plan, PlanObject
from scenewright.toyworld.scene import Scene, SceneObject


def _image(objects: list[SceneObject]) -> Image.Image:
    return Image.fromarray(Scene(objects).render())


def _square_and_star() -> Plan:
    """The scene after "add a yellow star": a blue square on the right, a yellow star on top."""
    return Plan(
        prompt="a blue square, a yellow star",
        objects=[
            PlanObject(name="square", attributes=["blue"], boxes=[(0.55, 0.35, 0.95, 0.75)]),
            PlanObject(name="star", attributes=["yellow"], boxes=[(0.05, 0.05, 0.45, 0.45)]),
        ],
    )


def _result(plan: Plan, image: Image.Image) -> AgentResult:
    """A finished turn as the agent reports it: its judge's rows and verdict."""
    rows, verified = exact_rows(image, plan)
    return AgentResult("done", "main", image=image, plan=plan, report=rows, verified=verified,
                       strategy="stitch")  # fmt: skip


def test_two_stars_and_no_square_is_said_per_object_on_every_face() -> None:
    """The swapped case: two stars (one drawn blue where the square belongs), no square."""
    plan = _square_and_star()
    image = _image(
        [SceneObject("star", "yellow", (4, 4, 28, 28)), SceneObject("star", "blue", (36, 24, 60, 48))]
    )
    lines = exact_lines(image, plan)
    assert lines[0].text.startswith("[0] blue square: 0/1 found") and lines[0].ok is False
    assert lines[1].text.startswith("[1] yellow star: 1/1 found; colour yellow (also drawn in blue)")
    assert lines[1].ok is True
    assert verdict(lines, True) == DIFFERS
    result = _result(plan, image)
    assert result.verified is False
    face_lines, said = result_lines(result)
    assert [line.text for line in face_lines] == [line.text for line in lines]
    assert said == DIFFERS
    assert short_list(face_lines) == "square 0/1, star 1/1"
    assert "differs from the plan [square 0/1, star 1/1]" in result.summary()


def test_a_word_the_model_never_learned_is_not_checked_and_cannot_verify() -> None:
    plan = Plan(
        prompt="a red dog", objects=[PlanObject(name="dog", attributes=["red"], boxes=[(0.3, 0.3, 0.7, 0.7)])]
    )
    red_ring = _image([SceneObject("ring", "red", (20, 20, 44, 44))])
    lines = exact_lines(red_ring, plan)
    assert lines[0].text.startswith("[0] red dog: not checked: 'dog' is not a shape the embedded model")
    assert lines[0].ok is None and verdict(lines, True) == CANNOT_VERIFY
    result = _result(plan, red_ring)
    assert result.verified is None
    assert "cannot verify [dog not checked]" in result.summary()
    assert "matches the plan" not in result.summary()


def test_a_colour_the_model_never_learned_is_not_checked() -> None:
    plan = Plan(prompt="a pink circle", objects=[PlanObject(name="circle", attributes=["pink"])])
    lines = exact_lines(_image([SceneObject("circle", "red", (20, 20, 44, 44))]), plan)
    assert "not checked: 'pink' is not a colour" in lines[0].text and verdict(lines, True) == CANNOT_VERIFY


def test_an_object_outside_its_boxes_is_off_in_every_view() -> None:
    plan = _square_and_star()
    image = _image(
        [SceneObject("square", "blue", (4, 36, 24, 56)), SceneObject("star", "yellow", (4, 4, 28, 28))]
    )
    result = _result(plan, image)
    lines, said = result_lines(result)
    assert "1/1 found; colour blue; not in its boxes" in lines[0].text
    assert short_list(lines) == "square 1/1 (off), star 1/1" and said == DIFFERS
    assert "[square 1/1 (off), star 1/1]" in result.summary()
    # a stored turn (what a reloaded studio page shows) says the same
    stored = {"plan": plan.model_dump(), "report": result.report, "verified": result.verified}
    assert turn_summary(stored) == "differs from the plan [square 1/1 (off), star 1/1]"


def test_matches_only_when_every_object_is_judged_and_holds() -> None:
    plan = _square_and_star()
    image = _image(
        [SceneObject("square", "blue", (38, 26, 58, 46)), SceneObject("star", "yellow", (4, 4, 28, 28))]
    )
    result = _result(plan, image)
    assert result.verified is True and result_lines(result)[1] == MATCHES
