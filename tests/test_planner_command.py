"""``scenewright plan``: JSON in the issue's shape, a readable summary, and one-line errors."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from fake_openai_server import FakeOpenAI, Step
from scenewright.errors import InvalidInputError, ScenewrightError
from scenewright.planner.command import register
from scenewright.planner.plan import MAX_COUNT


def run(argv: list[str]) -> tuple[int, str, str]:
    """What cli.main does for a registered subcommand: exit 2 and one line for our errors."""
    parser = argparse.ArgumentParser(prog="scenewright")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    try:
        code = args.handler(args, out=out, err=err)
    except ScenewrightError as error:
        err.write(f"error: {error}\n")
        code = 2
    return code, out.getvalue(), err.getvalue()


def test_json_has_exactly_the_issue_shape() -> None:
    code, out, err = run(
        ["plan", "three red apples to the left of a blue vase, a cat on the right, at night", "--json"]
    )
    assert code == 0 and err == ""
    plan = json.loads(out)
    assert list(plan) == ["prompt", "global_prompt", "background", "objects", "relations"]
    assert plan["background"] == "at night"
    for obj in plan["objects"]:
        assert list(obj) == ["name", "count", "attributes", "prompt", "boxes"]
        assert len(obj["boxes"]) == obj["count"]
        for box in obj["boxes"]:
            assert len(box) == 4 and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1
    assert plan["objects"][0] == {**plan["objects"][0], "name": "apple", "count": 3, "attributes": ["red"]}
    assert plan["relations"] == [{"subject": 0, "relation": "left of", "object": 1}]


def test_summary_is_readable_and_seed_changes_the_layout() -> None:
    code, out, _ = run(["plan", "two red circles left of a blue square"])
    assert code == 0
    assert "planner: rules" in out and "2 x red circle" in out and "circle [0] left of square [1]" in out
    first = json.loads(run(["plan", "two red circles", "--json", "--seed", "1"])[1])
    again = json.loads(run(["plan", "two red circles", "--json", "--seed", "1"])[1])
    other = json.loads(run(["plan", "two red circles", "--json", "--seed", "2"])[1])
    assert first == again and first != other


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "error: prompt: is empty"),
        ("a " * 5000, "error: prompt: is 10000 characters long"),
        ("un chat noir et un chien sur la table", "error: prompt: does not look like English"),
        ("一只红色的猫", "error: prompt: is not in English"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(prompt: str, message: str) -> None:
    code, out, err = run(["plan", prompt])
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_500_cats_is_capped_with_a_warning() -> None:
    code, out, err = run(["plan", "500 cats", "--json"])
    assert code == 0
    assert json.loads(out)["objects"][0]["count"] == MAX_COUNT
    assert err.startswith("warning: 500 cats is more than the maximum") and "capped" in err


def test_negative_seed_is_refused() -> None:
    code, _, err = run(["plan", "a cat", "--seed", "-1"])
    assert code == 2 and err.startswith("error: seed:")


def test_llm_planner_through_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = {"prompt": "a cat", "objects": [{"name": "cat", "count": 1, "boxes": [[0.2, 0.2, 0.8, 0.8]]}]}
    with FakeOpenAI(script=[Step(json.dumps(answer))]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        code, out, err = run(["plan", "a cat", "--planner", "llm", "--model", "tiny-llm", "--json"])
        assert server.requests[0]["model"] == "tiny-llm"
    assert code == 0 and err == ""
    assert json.loads(out)["objects"][0]["boxes"] == [[0.2, 0.2, 0.8, 0.8]]


def test_llm_planner_without_endpoint_warns_and_uses_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, out, err = run(["plan", "a cat", "--planner", "llm"])
    assert code == 0 and "planner: rules" in out
    assert err.startswith("warning: the LLM planner failed")


def test_unknown_planner_is_an_input_error() -> None:
    from scenewright.planner.command import make_plan

    with pytest.raises(InvalidInputError, match="planner"):
        make_plan("a cat", planner="magic")
