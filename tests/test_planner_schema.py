"""The plan schema's validators (naming the field) and the repair step (saying what it changed)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from pydantic import ValidationError

from scenewright.planner.geometry import overlap_violations, relation_violations
from scenewright.planner.plan import MAX_COUNT, Plan, describe_errors
from scenewright.planner.repair import repair_plan


def _plan(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prompt": "a cat left of a dog",
        "objects": [
            {"name": "cat", "count": 1, "boxes": [[0.1, 0.3, 0.4, 0.7]]},
            {"name": "dog", "count": 1, "boxes": [[0.6, 0.3, 0.9, 0.7]]},
        ],
        "relations": [{"subject": 0, "relation": "left of", "object": 1}],
    }
    data.update(overrides)
    return data


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Plan.model_validate(data)
    return describe_errors(info.value)


def test_valid_plan_fills_defaults() -> None:
    plan = Plan.model_validate(_plan())
    assert plan.global_prompt == plan.prompt and plan.objects[0].prompt == "cat"
    assert plan.to_json_dict()["objects"][0]["boxes"] == [[0.1, 0.3, 0.4, 0.7]]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"objects": [{"name": "cat", "count": MAX_COUNT + 1}]},
            f"objects[0].count: Input should be less than or equal to {MAX_COUNT}",
        ),
        (
            {"objects": [{"name": "cat", "count": 0}]},
            "objects[0].count: Input should be greater than or equal to 1",
        ),
        ({"objects": [{"name": "  ", "count": 1}]}, "objects[0].name: name must not be blank"),
        (
            {"objects": [{"name": "cat", "boxes": [[0.5, 0.5, 1.5, 0.9]]}]},
            "objects[0].boxes: box 0 [0.5, 0.5, 1.5, 0.9] leaves [0, 1]",
        ),
        (
            {"objects": [{"name": "cat", "boxes": [[0.5, 0.5, 0.5, 0.9]]}]},
            "objects[0].boxes: box 0 [0.5, 0.5, 0.5, 0.9] is empty",
        ),
        (
            {"objects": [{"name": "cat", "count": 2, "boxes": [[0.1, 0.1, 0.2, 0.2]]}]},
            "objects[0]: count is 2 but 1 boxes",
        ),
        (
            {"relations": [{"subject": 0, "relation": "left of", "object": 5}]},
            "relations[0].object = 5 but there are only 2 objects",
        ),
        (
            {"relations": [{"subject": 0, "relation": "diagonal", "object": 1}]},
            "relations[0].relation: Input should be",
        ),
        ({"prompt": ""}, "prompt: String should have at least 1 character"),
    ],
)
def test_validators_name_the_field(change: dict[str, Any], expected: str) -> None:
    errors = _errors(_plan(**change))
    assert any(line.startswith(expected) for line in errors), errors


def test_repair_reports_each_change() -> None:
    raw = _plan(
        objects=[
            {"name": " cat ", "count": 1, "boxes": [[0.4, 0.7, 0.1, 0.3]]},  # corners swapped
            {"name": "dog", "count": 1.0, "boxes": [[0.6, 0.3, 1.2, 0.7]]},  # leaves the canvas
            {"name": "", "count": 1},  # no name
        ],
        relations=[
            {"subject": 0, "relation": "to the left of", "object": 1},
            {"subject": 0, "relation": "left of", "object": 2},  # pointed at the dropped object
            {"subject": 1, "relation": "teleports", "object": 0},
        ],
        colour="red",
    )
    plan, changes = repair_plan(raw)
    assert [o.name for o in plan.objects] == ["cat", "dog"]
    assert plan.objects[0].boxes == [(0.1, 0.3, 0.4, 0.7)]
    assert plan.objects[1].boxes == [(0.6, 0.3, 1.0, 0.7)]
    assert [(r.subject, r.relation, r.object) for r in plan.relations] == [(0, "left of", 1)]
    text = "\n".join(changes)
    for fragment in (
        "objects[0].boxes[0]: corners sorted",
        "objects[1].boxes[0]: clamped to [0, 1]",
        "objects[2]: no name; dropped",
        "relations[0]: 'to the left of' read as 'left of'",
        "relations[1]: subject/object do not name two objects of the plan; dropped",
        "relations[2]: unknown relation 'teleports'; dropped",
        "colour: not a plan field; dropped",
    ):
        assert fragment in text, text


def test_repair_clamps_counts_and_re_packs_boxes() -> None:
    raw = _plan(
        objects=[
            {"name": "apple", "count": 40, "boxes": [[0.1, 0.1, 0.2, 0.2]]},
            {"name": "vase", "count": 1, "boxes": [[0.15, 0.15, 0.5, 0.5]]},  # overlaps the apple
        ]
    )
    plan, changes = repair_plan(raw)
    assert plan.objects[0].count == MAX_COUNT and len(plan.objects[0].boxes) == MAX_COUNT
    assert overlap_violations(plan) == [] and relation_violations(plan) == []
    assert any("capped" in c for c in changes) and any("re-packed" in c for c in changes)


def test_repair_reads_pixel_boxes_and_grows_empty_ones() -> None:
    raw = _plan(
        objects=[
            {"name": "cat", "boxes": [[51.2, 153.6, 204.8, 358.4]]},
            {"name": "dog", "boxes": [[0.7, 0.5, 0.7, 0.6]]},
        ]
    )
    plan, changes = repair_plan(raw)
    assert plan.objects[0].boxes == [(0.1, 0.3, 0.4, 0.7)]
    assert plan.objects[1].boxes[0][2] - plan.objects[1].boxes[0][0] == pytest.approx(0.02)
    assert any("pixels" in c for c in changes) and any("empty" in c for c in changes)


def test_repair_refuses_what_it_cannot_fix() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        repair_plan(["not", "a", "plan"])
    with pytest.raises(ValidationError):
        repair_plan({"prompt": "", "objects": []})


def test_repair_never_crashes_on_junk() -> None:
    """Whatever JSON an LLM sends, repair either returns a valid plan or raises a validation error."""
    rng = random.Random(0)
    atoms: list[Any] = [
        None,
        0,
        -1,
        2.5,
        1e9,
        float("nan"),
        "x",
        "",
        "on top of",
        [],
        {},
        [0.1, 0.2, 0.3, 0.4],
        True,
    ]
    keys = ["name", "count", "attributes", "boxes", "prompt", "subject", "object", "relation"]

    def junk(depth: int = 0) -> Any:
        roll = rng.random()
        if depth > 2 or roll < 0.5:
            return rng.choice(atoms)
        if roll < 0.75:
            return [junk(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 5))}

    for _ in range(2000):
        data = {"prompt": "p", "objects": [junk(1) for _ in range(rng.randint(0, 3))], "relations": junk(1)}
        try:
            plan, _ = repair_plan(data)
        except (ValidationError, ValueError):
            continue
        assert all(len(o.boxes) == o.count for o in plan.objects)


def test_plans_are_bounded_however_they_arrive() -> None:
    from pydantic import ValidationError

    from scenewright.planner.plan import MAX_OBJECTS, MAX_PROMPT_CHARS

    many = {"prompt": "p", "objects": [{"name": f"thing{i}"} for i in range(MAX_OBJECTS + 1)]}
    with pytest.raises(ValidationError, match="objects"):
        Plan.model_validate(many)
    with pytest.raises(ValidationError, match="prompt"):
        Plan.model_validate({"prompt": "x" * (MAX_PROMPT_CHARS + 1)})
    with pytest.raises(ValidationError, match="attributes"):
        Plan.model_validate({"prompt": "p", "objects": [{"name": "cat", "attributes": ["red"] * 9}]})


def test_repair_of_a_huge_llm_answer_summarises_what_it_dropped() -> None:
    from scenewright.planner.plan import MAX_OBJECTS
    from scenewright.planner.repair import repair_plan

    data = {
        "prompt": "cats",
        "objects": [{"name": "cat", "count": 1, "attributes": ["grey"] * 50, "prompt": "c" * 10_000}]
        + [{"name": f"thing{i}"} for i in range(10_000)],
    }
    plan, changes = repair_plan(data)
    assert len(plan.objects) == MAX_OBJECTS
    assert len(plan.objects[0].attributes) == 8 and len(plan.objects[0].prompt) == 500
    dropped = [c for c in changes if "beyond the maximum" in c]
    assert dropped == [f"objects: {10_001 - MAX_OBJECTS} beyond the maximum of {MAX_OBJECTS}; dropped"]
    assert len(changes) < 20


def test_an_unknown_key_with_a_newline_stays_on_one_quoted_line() -> None:
    """Found by the property test: a key holding a newline broke the one-line error."""
    errors = _errors(_plan(**{"\n": None, "objects": [{"name": "cat", "odd key": 1}]}))
    assert '"\\n": Extra inputs are not permitted' in errors, errors
    assert 'objects[0]."odd key": Extra inputs are not permitted' in errors, errors
    assert all("\n" not in line for line in errors)
