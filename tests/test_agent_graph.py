"""The agent's graph on the tiny model: a turn end to end, follow-ups, review, history, fallbacks.

The tiny model is untrained here, so these check plumbing (what is planned, written, streamed
and remembered), not image quality. Two steps per image keep each render well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from scenewright import Agent
from scenewright.agent.core import AgentResult
from scenewright.errors import InvalidInputError
from scenewright.executor import strategies
from scenewright.executor.vanilla import RenderResult, render_vanilla
from scenewright.planner.geometry import overlap_violations
from scenewright.planner.llm import LLMSettings
from scenewright.tools.output import read_png_metadata

REQUEST = "three red circles left of a blue square, a green triangle on the right"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_agent(tmp_path: Path, **kwargs: Any) -> Agent:
    kwargs.setdefault("strategy", "vanilla")
    kwargs.setdefault("max_refine_rounds", 0)  # the untrained model fails every check: no refine passes
    return Agent(steps=2, out_dir=tmp_path / "out", **kwargs)


def objects_by_name(result: AgentResult) -> dict[str, dict[str, Any]]:
    assert result.plan is not None
    return {o["name"]: o for o in result.plan.to_json_dict()["objects"]}  # type: ignore[union-attr]


def test_turn_returns_image_plan_report_paths_and_streams_progress(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    events: list[dict[str, Any]] = []
    result = agent.run(REQUEST, on_event=events.append)

    assert result.ok, result.summary()
    assert isinstance(result.image, Image.Image) and result.image.size == (64, 64)
    assert result.plan is not None and [o.name for o in result.plan.objects] == [
        "circle",
        "square",
        "triangle",
    ]
    assert [row["name"] for row in result.report] == ["circle", "square", "triangle"]
    assert {"wanted", "found", "in_boxes", "ok"} <= set(result.report[0])
    assert result.verified in (True, False)  # the toy world's exact judge gave a verdict
    for kind in ("image", "plan", "overlay"):
        assert Path(result.paths[kind]).is_file()
    # The model's own per-object maps explain the image: image + 3 objects + background.
    sheet = Image.open(result.paths["attention"])
    assert sheet.size[0] * sheet.size[1] >= 5 * 128 * 128
    assert Image.open(result.paths["overlay"]).size[0] >= 512  # upscaled to be readable
    meta = read_png_metadata(result.paths["image"])
    assert meta["strategy"] == "vanilla" and meta["settings"]["steps"] == 2
    assert json.loads(Path(result.paths["plan"]).read_text()) == result.plan.to_json_dict()

    nodes = [e["node"] for e in events]
    for node in ("plan", "validate", "route", "execute", "verify", "finish"):
        assert node in nodes
    steps = [e for e in events if e["node"] == "execute" and e["steps"] == 2]
    assert [e["step"] for e in steps] == [0, 1] and all(0 <= e["percent"] <= 100 for e in events)

    # The checkpointed state is plain JSON: paths and dicts, no images or tensors.
    values = agent.graph.get_state({"configurable": {"thread_id": "main"}}).values
    json.dumps(values)


def test_auto_routing_uses_only_registered_strategies(tmp_path: Path) -> None:
    result = make_agent(tmp_path, strategy="auto").run("two red circles left of a blue square")
    assert result.ok, result.summary()
    base = result.strategy.split(":")[-1].split("+")[0]
    assert base in strategies.STRATEGIES
    assert read_png_metadata(result.paths["image"])["route"]


def test_followups_change_only_what_was_asked(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, seed=7)
    first = agent.run(REQUEST)
    before = objects_by_name(first)

    four = agent.run("make it four circles")
    after = objects_by_name(four)
    assert four.ok and four.plan_source == "edit" and four.seed == 7
    assert after["circle"]["count"] == 4 and len(after["circle"]["boxes"]) == 4
    assert after["circle"]["attributes"] == ["red"]
    assert after["square"] == before["square"] and after["triangle"] == before["triangle"]
    assert four.plan is not None and first.plan is not None
    assert four.plan.background == first.plan.background and four.plan.relations == first.plan.relations
    assert four.paths["image"] != first.paths["image"] and Path(first.paths["image"]).is_file()

    moved = agent.run("move the triangle to the left")
    moved_objects = objects_by_name(moved)
    old_box, new_box = after["triangle"]["boxes"][0], moved_objects["triangle"]["boxes"][0]
    assert new_box[0] < old_box[0] and new_box[0] == pytest.approx(0.04, abs=0.02)  # at the left margin
    # The left was taken by the circles: they and the square moved aside, and nothing overlaps.
    assert moved.plan is not None and overlap_violations(moved.plan) == []
    assert all(new_box[2] <= b[0] for name in ("circle", "square") for b in moved_objects[name]["boxes"])
    assert moved_objects["circle"]["count"] == 4 and any("moved" in n for n in moved.notes)

    night = agent.run("now at night")
    assert night.plan is not None and night.plan.background == "at night"
    assert objects_by_name(night) == moved_objects and night.seed == 7

    green = agent.run("make the square green")
    green_objects = objects_by_name(green)
    assert green_objects["square"]["attributes"] == ["green"]
    assert green_objects["square"]["boxes"] == moved_objects["square"]["boxes"]
    assert green_objects["circle"] == moved_objects["circle"]

    fresh = agent.run("a yellow star")  # not an edit: a new scene
    assert fresh.plan_source == "rules" and [o.name for o in fresh.plan.objects] == ["star"]  # type: ignore[union-attr]

    undone = agent.undo()
    assert undone is not None and undone.plan is not None
    assert objects_by_name(undone)["square"]["attributes"] == ["green"]
    assert undone.paths["image"] == green.paths["image"]


def test_review_pauses_after_planning_and_resumes_with_the_edited_plan(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, review=True)
    paused = agent.run("two red circles left of a blue square")
    assert paused.status == "review" and paused.pending_plan is not None
    assert not paused.paths and not (tmp_path / "out").exists()  # nothing rendered yet

    edited = json.loads(json.dumps(paused.pending_plan))
    edited["objects"][1]["attributes"] = ["yellow"]
    done = agent.resume(edited)
    assert done.ok and done.plan_source == "user"
    assert done.plan is not None and done.plan.objects[1].attributes == ["yellow"]
    # The prompts follow the edited fields, so that every strategy (vanilla too) sees the change.
    assert done.plan.objects[1].prompt == "yellow square" and "yellow square" in done.plan.global_prompt
    assert done.plan.prompt == paused.pending_plan["prompt"]
    assert done.plan.objects[0].boxes == paused.plan.objects[0].boxes if paused.plan else True

    # Accepting the proposal as it is also works (None = keep the plan).
    assert agent.run("a green triangle").status == "review"
    assert agent.resume(None).ok


def test_invalid_user_plan_reports_fields_and_keeps_the_last_good_image(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    good = agent.run("two red circles left of a blue square")
    bad = good.plan.to_json_dict() if good.plan else {}
    bad["objects"][0]["count"] = 0  # type: ignore[index]
    bad["objects"][1]["boxes"] = [[0.5, 0.5, 1.7, 0.9]]  # type: ignore[index]
    result = agent.render_plan(bad)
    assert result.status == "invalid"
    assert any(e.startswith("objects[0].count") for e in result.errors)
    assert any(e.startswith("objects[1].boxes") for e in result.errors)
    assert result.paths == {"image": good.paths["image"]} and result.image is not None
    assert agent.current().plan == good.plan  # the last good plan stays for follow-ups

    broken = agent.render_plan("{not json")
    assert broken.status == "invalid" and broken.errors[0].startswith("plan: not valid JSON")

    # A corrected plan renders again.
    fixed = agent.render_plan(json.dumps(good.plan.to_json_dict() if good.plan else {}))
    assert fixed.ok and fixed.paths["image"] != good.paths["image"]


def test_sqlite_history_survives_a_new_agent(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    with make_agent(tmp_path, history=db, thread_id="t1", seed=3) as first:
        one = first.run(REQUEST)
        assert one.ok
    with make_agent(tmp_path, history=db, thread_id="t1") as second:
        assert second.current().plan == one.plan
        two = second.run("make it four circles")
        assert two.ok and two.plan_source == "edit" and two.seed == 3
        assert objects_by_name(two)["circle"]["count"] == 4
        assert len(second.history()) == 2
        other = second.current(thread_id="t2")
        assert other.plan is None  # threads are separate conversations


def test_failing_strategies_fall_back_to_vanilla_and_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: Any, **_kwargs: Any) -> RenderResult:
        raise RuntimeError("CUDA out of memory")

    def nan(backend: Any, plan: Any, settings: Any, **kwargs: Any) -> RenderResult:
        result = render_vanilla(backend, plan, settings, **kwargs)
        result.sample.images = torch.full_like(result.sample.images, float("nan"))
        return result

    monkeypatch.setitem(strategies.STRATEGIES, "boom", boom)
    monkeypatch.setitem(strategies.STRATEGIES, "nan", nan)
    agent = make_agent(tmp_path)
    first = agent.run("two red circles left of a blue square")
    agent.set_strategy("boom")
    second = agent.run("make it three circles")
    assert second.ok and second.strategy == "vanilla"
    oom = [n for n in second.notes if n.startswith("strategy boom ran out of")]
    assert len(oom) == 1 and "traceback" not in oom[0].lower()
    assert "64x64" in oom[0] and "--cpu-offload" in oom[0] and "fewer objects" in oom[0]
    assert oom[0].endswith("fell back to vanilla")
    third = agent.run("now at night", strategy="nan")
    assert third.ok and third.strategy == "vanilla" and any("nan failed" in n for n in third.notes)
    assert Path(first.paths["image"]).is_file() and Path(second.paths["image"]).is_file()

    # An unknown name is the caller's mistake, refused before the turn (issue 17: it used to
    # render vanilla quietly); the thread is left as it was.
    with pytest.raises(InvalidInputError, match="nope"):
        agent.run("make the square green", strategy="nope")
    assert agent.current().paths == third.paths


def test_refine_loop_is_bounded_and_only_runs_when_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def refine(backend: Any, plan: Any, settings: Any, base: str = "auto", **kwargs: Any) -> RenderResult:
        calls.append(base)
        result = render_vanilla(backend, plan, settings, **kwargs)
        result.strategy = "refine"
        return result

    def never_right(_image: Any, plan: Any, _report: Any) -> tuple[list[dict[str, Any]], bool]:
        return [{"name": o.name, "ok": False} for o in plan.objects], False

    without = make_agent(tmp_path, verifier=never_right).run("a red circle")
    assert without.ok and calls == []  # no refine strategy registered: no loop

    monkeypatch.setitem(strategies.STRATEGIES, "refine", refine)
    agent = make_agent(tmp_path, verifier=never_right, max_refine_rounds=2, thread_id="r")
    result = agent.run("a red circle")
    assert result.ok and result.strategy == "refine" and calls == ["vanilla", "vanilla"]
    assert "refine2" in result.paths["image"] and len(agent.history()) == 1


def test_unreachable_llm_falls_back_to_rules_and_says_so(tmp_path: Path) -> None:
    settings = LLMSettings(
        base_url="http://127.0.0.1:9/v1", api_key="x", attempts=1, timeout=2, sleep=lambda _s: None
    )
    result = make_agent(tmp_path, planner="llm", llm_settings=settings).run("two red circles")
    assert result.ok and result.plan_source == "rules"
    assert any("used the rules planner instead" in n for n in result.notes)


def test_bad_request_is_an_error_not_a_crash(tmp_path: Path) -> None:
    agent = make_agent(tmp_path)
    result = agent.run("   ")
    assert result.status == "invalid" and result.errors and result.image is None
