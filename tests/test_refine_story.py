"""Refine's rounds in words: each round says what it changed or why the previous image stayed,
and the agent keeps that per pass in its state (``refine_explanation``) and in the turn's notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scenewright.executor.refine.story import describe_change, explain_outcome, explain_round
from scenewright.planner.plan import Plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.model_validate(
        {
            "prompt": "two red circles left of a blue square",
            "objects": [
                {"name": "circle", "count": 2, "attributes": ["red"],
                 "boxes": [[0.05, 0.3, 0.3, 0.55], [0.05, 0.6, 0.3, 0.85]]},
                {"name": "square", "attributes": ["blue"], "boxes": [[0.6, 0.3, 0.9, 0.6]]},
            ],
            "relations": [{"subject": 0, "relation": "left of", "object": 1}],
        }
    )  # fmt: skip


def record(circles: int, square: int, square_colours: list[str], relation: bool) -> dict[str, object]:
    """A verifier's view as refine records it (the exact evaluator's facts and states)."""
    facts = [
        {"found": circles, "wanted": 2, "in_boxes": circles == 2, "colours": ["red"] * circles},
        {"found": square, "wanted": 1, "in_boxes": square == 1, "colours": square_colours},
    ]
    states = [
        [float(f["found"] >= 1), float(f["found"] == f["wanted"]), float(f["in_boxes"]),
         -abs(f["found"] - f["wanted"])]
        for f in facts
    ]  # fmt: skip
    return {"objects": facts, "states": states, "relations": [relation]}


def test_a_kept_round_says_what_it_changed(plan: Plan) -> None:
    before, after = record(2, 0, ["green"], False), record(2, 1, ["blue"], True)
    text = explain_round(plan, {"round": 1, "failing": [1], "kept": True}, before, after)
    assert text == (
        "round 1 kept (repainted square): square: count 0 -> 1 (1 asked), now inside its boxes, "
        "colour green -> blue; relation 'circle left of square' now holds"
    )


def test_a_refused_round_says_what_got_worse_or_that_nothing_improved(plan: Plan) -> None:
    before = record(1, 1, ["blue"], True)
    worse = explain_round(plan, {"round": 2, "failing": [0], "kept": False}, before, record(2, 0, [], False))
    assert worse.startswith(
        "round 2 not kept (repainted circle): it made something worse (square: count 1 -> 0"
    )
    assert "relation 'circle left of square' broke" in worse and "although circle: count 1 -> 2" in worse
    same = explain_round(
        plan, {"round": 1, "failing": [0], "kept": False}, before, record(1, 1, ["blue"], True)
    )
    assert same == "round 1 not kept (repainted circle): no object improved (circle still 1 of 2, not in its boxes); the previous image stays"  # fmt: skip
    empty = explain_round(plan, {"round": 1, "failing": [0], "kept": False}, before, None)
    assert "not tried" in empty and "nothing to repaint" in empty


def test_the_outcome_names_why_no_round_ran(plan: Plan) -> None:
    start = {"round": 0, "kept": True, **record(2, 1, ["blue"], False)}
    assert explain_outcome(plan, [start], 0).startswith("no round asked")
    assert explain_outcome(plan, [start], 2) == (
        "changed nothing: every object already passes its check, though 'circle left of square' does "
        "not hold (refine repaints objects, it does not move them)"
    )
    tried = {"round": 1, "kept": False, "explanation": "round 1 not kept"}
    assert (
        explain_outcome(plan, [start, tried], 2)
        == "kept the image it started from (1 round tried, none kept)"
    )
    assert describe_change({"boxes_hit": 1, "boxes": 2, "stray_blobs": 1}, {"boxes_hit": 2, "boxes": 2, "stray_blobs": 0}) == [
        "boxes reached 1/2 -> 2/2", "stray blobs 1 -> 0"
    ]  # fmt: skip


def test_the_agent_explains_every_refine_round(tmp_path: Path) -> None:
    from scenewright import Agent

    agent = Agent(strategy="vanilla", steps=6, max_refine_rounds=2, out_dir=tmp_path, seed=3)
    result = agent.run("two red circles left of a blue square")
    assert result.status == "done"
    passes = agent.graph.get_state({"configurable": {"thread_id": "main"}}).values["refine_explanation"]
    assert passes and [p["pass"] for p in passes] == list(range(1, len(passes) + 1))
    lines = [n for n in result.notes if n.startswith("refine pass")]
    for explained in passes:
        assert explained["summary"]
        for r in explained["rounds"]:
            assert re.match(rf"round {r['round']} (kept|not kept|not tried)", r["explanation"])
            assert f"refine pass {explained['pass']} {r['explanation']}" in lines
    last = passes[-1]
    if len(passes) < 2:  # stopped early: only when the pass kept nothing and would repeat itself
        assert not any(r["kept"] for r in last["rounds"]) and any("no further pass" in n for n in lines)
