"""The LLM planner against a real chat-completions server on 127.0.0.1 that replays answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fake_openai_server import FakeOpenAI, Step
from scenewright.errors import InvalidInputError
from scenewright.planner.geometry import overlap_violations, relation_violations
from scenewright.planner.llm import LLMPlanner, LLMSettings, build_messages, extract_json, few_shot_examples
from scenewright.planner.repair import repair_plan

PROMPT = "two red circles left of a blue square"
GOOD: dict[str, Any] = {
    "prompt": PROMPT,
    "global_prompt": "two red circles to the left of a blue square",
    "background": None,
    "objects": [
        {"name": "circle", "count": 2, "attributes": ["red"], "prompt": "red circle",
         "boxes": [[0.05, 0.4, 0.25, 0.6], [0.28, 0.4, 0.48, 0.6]]},
        {"name": "square", "count": 1, "attributes": ["blue"], "prompt": "blue square",
         "boxes": [[0.6, 0.35, 0.9, 0.65]]},
    ],
    "relations": [{"subject": 0, "relation": "left of", "object": 1}],
}  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _planner(server: FakeOpenAI, sleeps: list[float] | None = None, **overrides: Any) -> LLMPlanner:
    record = sleeps if sleeps is not None else []
    options: dict[str, Any] = {"timeout": 2.0, "backoff": 0.01, **overrides}
    settings = LLMSettings(
        model="fake-model", base_url=server.base_url, api_key="test-key", sleep=record.append, **options
    )
    return LLMPlanner(settings)


def test_good_answer_becomes_the_plan_with_structured_output(server: FakeOpenAI) -> None:
    server.script = [Step(json.dumps(GOOD))]
    result = _planner(server).plan(PROMPT)
    assert result.planner == "llm:fake-model" and result.warnings == []
    assert result.plan.to_json_dict() == GOOD
    (request,) = server.requests
    assert server.paths == ["/v1/chat/completions"]
    assert request["model"] == "fake-model"
    assert request["response_format"]["type"] == "json_schema"
    assert "objects" in json.dumps(request["response_format"]["json_schema"]["schema"])
    messages = request["messages"]
    assert messages[0]["role"] == "system" and "JSON" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": PROMPT}
    assert len(messages) == 2 + 2 * len(few_shot_examples())


def test_server_without_structured_output_gets_json_mode(server: FakeOpenAI) -> None:
    server.script = [Step(json.dumps(GOOD), reject_response_format="json_schema")]
    result = _planner(server).plan(PROMPT)
    assert result.plan.objects[0].count == 2
    assert [r.get("response_format", {}).get("type") for r in server.requests] == [
        "json_schema",
        "json_object",
    ]


def test_malformed_answer_gets_a_repair_round_with_the_errors(server: FakeOpenAI) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["objects"][0]["name"] = "   "  # dropped by repair: then relation 0 -> 1 points nowhere
    bad["objects"][1]["boxes"] = [[0.6, 0.3, 0.9]]
    server.script = [Step("Sure! Here is the plan: {not json"), Step(json.dumps(GOOD))]
    result = _planner(server).plan(PROMPT)
    assert result.plan.to_json_dict() == GOOD
    assert len(server.requests) == 2
    feedback = server.requests[1]["messages"]
    assert feedback[-2] == {"role": "assistant", "content": "Sure! Here is the plan: {not json"}
    assert feedback[-1]["role"] == "user" and "not valid JSON" in feedback[-1]["content"]


def test_schema_errors_are_sent_back_naming_the_field(server: FakeOpenAI) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["objects"][0]["attributes"] = "red"
    bad["objects"][0]["boxes"] = "left half"
    bad["relations"][0]["relation"] = "diagonal to"
    wrong_type = json.loads(json.dumps(GOOD))
    wrong_type["global_prompt"] = ["not", "text"]
    wrong_type["objects"][1]["prompt"] = 7
    wrong_type["objects"][0]["attributes"] = [{"colour": "red"}]
    # Unrepairable: a name that is far too long is refused by the schema and sent back.
    wrong_type["objects"][0]["name"] = "x" * 200
    server.script = [Step(json.dumps(wrong_type)), Step(json.dumps(GOOD))]
    result = _planner(server).plan(PROMPT)
    assert result.plan.objects[0].name == "circle"
    feedback = server.requests[1]["messages"][-1]["content"]
    assert "objects[0].name" in feedback


def test_capped_and_fixed_values_are_reported(server: FakeOpenAI) -> None:
    odd = json.loads(json.dumps(GOOD))
    odd["objects"][0]["count"] = 40
    odd["relations"][0]["relation"] = "to the left of"
    server.script = [Step("```json\n" + json.dumps(odd) + "\n```")]
    result = _planner(server).plan(PROMPT)
    assert result.plan.objects[0].count == 12
    assert len(result.plan.objects[0].boxes) == 12  # boxes re-packed for the new count
    assert result.plan.relations[0].relation == "left of"
    assert relation_violations(result.plan) == [] and overlap_violations(result.plan) == []
    joined = " | ".join(result.warnings)
    assert "capped" in joined and "re-packed" in joined and "'to the left of' read as 'left of'" in joined


def test_plan_without_boxes_gets_the_layout_engine(server: FakeOpenAI) -> None:
    bare = json.loads(json.dumps(GOOD))
    for obj in bare["objects"]:
        del obj["boxes"]
    server.script = [Step(json.dumps(bare))]
    result = _planner(server).plan(PROMPT)
    assert [len(o.boxes) for o in result.plan.objects] == [2, 1]
    assert relation_violations(result.plan) == []


def test_boxes_that_break_a_relation_are_re_packed(server: FakeOpenAI) -> None:
    wrong = json.loads(json.dumps(GOOD))
    wrong["objects"][1]["boxes"] = [[0.0, 0.0, 0.2, 0.2]]  # square left of the circles
    server.script = [Step(json.dumps(wrong))]
    result = _planner(server).plan(PROMPT)
    assert relation_violations(result.plan) == []
    assert any("not left of" in w for w in result.warnings)


def test_a_plan_without_objects_is_sent_back(server: FakeOpenAI) -> None:
    server.script = [Step(json.dumps({"prompt": PROMPT, "objects": []})), Step(json.dumps(GOOD))]
    result = _planner(server).plan(PROMPT)
    assert len(result.plan.objects) == 2
    assert "has no objects" in server.requests[1]["messages"][-1]["content"]


def test_429_and_500_are_retried_with_backoff(server: FakeOpenAI) -> None:
    server.script = [
        Step(status=429, retry_after="0"),
        Step(status=500),
        Step(status=503),
        Step(json.dumps(GOOD)),
    ]
    sleeps: list[float] = []
    result = _planner(server, sleeps).plan(PROMPT)
    assert result.planner == "llm:fake-model" and len(server.requests) == 4
    assert len(sleeps) == 3 and sleeps[0] < sleeps[1] < sleeps[2]  # exponential


def test_retry_after_is_honoured_up_to_the_cap(server: FakeOpenAI) -> None:
    server.script = [Step(status=429, retry_after="3"), Step(json.dumps(GOOD))]
    sleeps: list[float] = []
    _planner(server, sleeps, max_backoff=5.0).plan(PROMPT)
    assert sleeps == [3.0]


def test_slow_answer_times_out_and_is_retried(server: FakeOpenAI) -> None:
    server.script = [Step(json.dumps(GOOD), delay=1.5), Step(json.dumps(GOOD))]
    sleeps: list[float] = []
    result = _planner(server, sleeps, timeout=0.3).plan(PROMPT)
    assert result.planner == "llm:fake-model" and len(sleeps) == 1


def test_persistent_failure_falls_back_to_rules_with_a_warning(server: FakeOpenAI) -> None:
    server.script = [Step(status=500)] * 3
    result = _planner(server, attempts=3).plan(PROMPT)
    assert result.planner == "rules"
    assert "LLM planner failed" in result.warnings[0] and "after 3 attempts" in result.warnings[0]
    assert [(o.name, o.count) for o in result.plan.objects] == [("circle", 2), ("square", 1)]


def test_answers_that_never_validate_fall_back(server: FakeOpenAI) -> None:
    server.script = [Step('{"objects": "nope"}')] * 3
    result = _planner(server, repair_rounds=2).plan(PROMPT)
    assert result.planner == "rules" and "repair rounds" in result.warnings[0]
    assert len(server.requests) == 3


def test_llm_output_is_never_executed(server: FakeOpenAI, tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    server.script = [Step(payload)] * 3
    result = _planner(server, repair_rounds=2).plan(PROMPT)
    assert not marker.exists() and result.planner == "rules"


def test_auth_errors_fall_back_at_once(server: FakeOpenAI) -> None:
    server.script = [Step(status=401)]
    result = _planner(server).plan(PROMPT)
    assert result.planner == "rules" and len(server.requests) == 1
    assert "AuthenticationError" in result.warnings[0]


def test_no_endpoint_configured_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = LLMPlanner(LLMSettings()).plan(PROMPT)
    assert result.planner == "rules" and "OPENAI_API_KEY" in result.warnings[0]


def test_environment_configures_the_client(server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    server.script = [Step(json.dumps(GOOD))]
    result = LLMPlanner(LLMSettings(model="m")).plan(PROMPT)
    assert result.planner == "llm:m"


def test_prompt_checks_still_apply(server: FakeOpenAI) -> None:
    with pytest.raises(InvalidInputError, match="is empty"):
        _planner(server).plan("  ")
    with pytest.raises(InvalidInputError, match="characters long"):
        _planner(server).plan("x" * 10_000)
    assert server.requests == []
    # Other languages are the LLM's to read.
    french = "deux cercles rouges à gauche d'un carré bleu"
    answer = dict(GOOD, prompt=french)
    server.script = [Step(json.dumps(answer))]
    assert _planner(server).plan(french).plan.prompt == french


def test_prompt_files_and_examples_are_valid_plans() -> None:
    messages = build_messages("a cat")
    assert "{max_count}" not in messages[0]["content"] and "12" in messages[0]["content"]
    for example in few_shot_examples():
        plan, changes = repair_plan(example["plan"], example["request"])
        assert changes == [], example["request"]
        assert plan.to_json_dict() == example["plan"]


def test_extract_json_tolerates_fences_and_chatter() -> None:
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Here you go: {"a": {"b": 2}} Hope it helps') == {"a": {"b": 2}}
    with pytest.raises(InvalidInputError, match=r"^the answer: not valid JSON"):
        extract_json("no json here")
    with pytest.raises(InvalidInputError, match="nested more than 32 levels"):
        extract_json('{"objects": ' + "[" * 5000 + "]" * 5000 + "}")  # once a RecursionError


def test_a_server_that_never_answers_costs_two_timeouts_not_four(server: FakeOpenAI) -> None:
    server.script = [Step(json.dumps(GOOD), delay=1.0) for _ in range(4)]
    result = _planner(server, timeout=0.3).plan(PROMPT)
    assert result.planner == "rules" and any("fell back" in w or "rules" in w for w in result.warnings)
    assert len(server.requests) == 2  # the default attempts (4) are for 429 and 5xx, not for hangs


def test_repairs_are_summarised_by_kind_not_listed_per_box(server: FakeOpenAI) -> None:
    """Ten objects with three empty boxes each: one line per kind of repair, not thirty."""
    broken = {"prompt": PROMPT, "objects": [
        {"name": "circle", "count": 3, "boxes": [[0.5, 0.5, 0.5, 0.5]] * 3} for _ in range(10)
    ]}  # fmt: skip
    server.script = [Step(json.dumps(broken))]
    result = _planner(server).plan(PROMPT)
    grown = [w for w in result.warnings if "empty, grown" in w]
    assert (
        len(grown) == 1
        and "objects[0].boxes[0], objects[0].boxes[1], objects[0].boxes[2] and 27 more" in grown[0]
    )
    assert len(result.warnings) <= 8


def test_an_object_whose_name_is_not_text_is_dropped_not_renamed(server: FakeOpenAI) -> None:
    odd = json.loads(json.dumps(GOOD))
    odd["objects"][0]["name"] = 5
    odd["objects"][1]["attributes"] = ["blue", 7, {"x": 1}]
    server.script = [Step(json.dumps(odd))]
    result = _planner(server).plan(PROMPT)
    assert [o.name for o in result.plan.objects] == ["square"]
    assert result.plan.objects[0].attributes == ["blue"]
    assert any("objects[0].name: int, not text; dropped" in w for w in result.warnings)
