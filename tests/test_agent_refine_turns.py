"""Refine as every face reports it: one default, no folder for a pass that kept nothing, paths on
the image kept, a line that says what ran, and ``/undo`` showing a turn with the verdict it had.

A stand-in refine strategy (the real one is exercised in ``test_refine_story``) decides whether a
pass keeps its repair, so each case is two one-step renders of the tiny model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from scenewright import Agent
from scenewright.agent.options import DEFAULT_REFINE_ROUNDS, add_agent_options
from scenewright.executor import strategies
from scenewright.executor.vanilla import RenderResult, render_vanilla

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _never_right(_image: Any, plan: Any, _report: Any) -> tuple[list[dict[str, Any]], bool]:
    return [{"name": o.name, "wanted": o.count, "found": 0, "ok": False} for o in plan.objects], False


def _refine(keeps: bool) -> Any:
    """A refine pass that repaints (a new image) when ``keeps``, else hands back the image it got."""

    def refine(
        backend: Any,
        plan: Any,
        settings: Any,
        base: str = "auto",
        image: Image.Image | None = None,
        **kw: Any,
    ) -> RenderResult:
        result = render_vanilla(backend, plan, settings, **kw)
        if not keeps and image is not None:
            result.image = image
        round_ = {"round": 1, "kept": keeps, "failing": [0], "explanation": "repainted the circle"}
        result.report["refine"] = {"rounds": [{"round": 0, "kept": True}, round_], "summary": "x"}
        result.strategy = f"refine:{base}"
        return result

    return refine


def _agent(tmp_path: Path, rounds: int = 1) -> Agent:
    return Agent(
        steps=1, strategy="vanilla", max_refine_rounds=rounds, out_dir=tmp_path, verifier=_never_right
    )


def test_every_face_has_the_same_refine_default() -> None:
    import inspect

    from scenewright.agent.generate import add_generate_options

    chat = argparse.ArgumentParser()
    add_agent_options(chat, "out/chat")
    generate = argparse.ArgumentParser()
    add_generate_options(generate)
    agent_default = inspect.signature(Agent).parameters["max_refine_rounds"].default
    assert chat.parse_args([]).refine_rounds == generate.parse_args([]).refine_rounds == agent_default
    assert agent_default == DEFAULT_REFINE_ROUNDS
    assert f"default {DEFAULT_REFINE_ROUNDS}" in chat.format_help()


def test_a_pass_that_keeps_nothing_writes_no_folder_and_says_what_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(strategies.STRATEGIES, "refine", _refine(keeps=False))
    agent = _agent(tmp_path)
    result = agent.run("a red circle")
    assert result.ok
    folders = sorted(p.name for p in (tmp_path / "main").iterdir())
    assert folders == ["turn-001"]  # no turn-001-refine1 with the same pixels
    assert all("/turn-001/" in path for path in result.paths.values()), result.paths
    assert result.strategy == "vanilla"
    assert "rendered with vanilla, refine 1 round: kept the first image, seed 0" in result.summary()
    assert "refine:vanilla" not in result.summary()
    assert agent.history()[-1]["strategy"] == "vanilla"


def test_a_pass_that_keeps_its_repair_points_at_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(strategies.STRATEGIES, "refine", _refine(keeps=True))
    result = _agent(tmp_path).run("a red circle")
    assert Path(result.paths["image"]).parent.name == "turn-001-refine1"
    assert Path(result.paths["image"]).is_file()
    assert "rendered with vanilla, refine 1 round: kept 1 repair" in result.summary()


def test_undo_shows_the_turn_with_the_verdict_it_was_given(tmp_path: Path) -> None:
    agent = Agent(steps=1, strategy="vanilla", out_dir=tmp_path)
    first = agent.run("a red circle")
    assert first.verified is not None  # the toy world's exact judge checked it
    agent.run("make it two circles")
    undone = agent.undo()
    assert undone is not None and undone.verified == first.verified
    assert "not verified" not in undone.summary()
    assert undone.paths["image"] == first.paths["image"]
