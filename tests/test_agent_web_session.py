"""The web studio without a browser: the box editor's conversion, commands typed in the box, the
conversation's messages, and the bound on uploads."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from scenewright.agent.web_boxes import EDITOR_SIDE, editor_value, object_labels, plan_from_boxes
from scenewright.errors import InvalidInputError
from scenewright.planner.rules import plan_with_rules

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCENE = "three red circles left of a blue square, a green triangle on the right"


@pytest.fixture(scope="module")
def plan() -> dict[str, Any]:
    return plan_with_rules(SCENE, 1).plan.to_json_dict()


def test_the_box_editor_shows_every_box_and_reads_them_back(plan: dict[str, Any]) -> None:
    value = editor_value(plan, Image.new("RGB", (64, 64)))
    assert np.asarray(value["image"]).shape == (EDITOR_SIDE, EDITOR_SIDE, 3)
    assert [b["label"] for b in value["boxes"]] == ["red circle"] * 3 + ["blue square", "green triangle"]
    same = plan_from_boxes(plan, value)
    for old, new in zip(plan["objects"], same["objects"], strict=True):
        assert new["count"] == old["count"]
        assert np.allclose(new["boxes"], old["boxes"], atol=1.5 / EDITOR_SIDE)  # pixels round
    square = value["boxes"][3]
    square.update(xmin=10, ymin=20, xmax=110, ymax=140)  # dragged to the top left
    del value["boxes"][0]  # one circle fewer
    moved = plan_from_boxes(plan, value)
    assert moved["objects"][1]["boxes"] == [[round(10 / 384, 4), round(20 / 384, 4), round(110 / 384, 4), round(140 / 384, 4)]]  # fmt: skip
    assert moved["objects"][0]["count"] == 2 and moved["relations"] == plan["relations"]


def test_the_box_editor_refuses_boxes_it_cannot_place(plan: dict[str, Any]) -> None:
    value = editor_value(plan, None)
    value["boxes"][0]["label"] = "dog"
    with pytest.raises(
        InvalidInputError, match="boxes: a box is labelled 'dog'; label it one of: red circle"
    ):
        plan_from_boxes(plan, value)
    value = editor_value(plan, None)
    value["boxes"] = [b for b in value["boxes"] if b["label"] != "green triangle"]
    with pytest.raises(
        InvalidInputError, match='the green triangle has no box left; draw one labelled "green triangle"'
    ):
        plan_from_boxes(plan, value)
    with pytest.raises(InvalidInputError, match="no plan to edit yet"):
        plan_from_boxes({}, value)
    twins = {
        "objects": [{"name": "circle", "attributes": ["red"]}, {"name": "circle", "attributes": ["red"]}]
    }
    assert object_labels(twins) == ["red circle", "red circle #2"]


def test_commands_typed_in_the_web_box_work_as_in_the_chat(tmp_path: Path) -> None:
    from scenewright import Agent
    from scenewright.agent.web_session import Sessions, answer_messages, run_command

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    session = Sessions(agent).get("tab")
    names = ["vanilla", "regional", "taca"]
    assert run_command(agent, session, "/undo", names).text == "nothing to undo"
    assert "follow-ups that work on" in run_command(agent, session, "/help", names).text
    assert "/load" not in run_command(agent, session, "/help", names).text.split("follow-ups")[0]
    assert "plan editor" in run_command(agent, session, "/load /etc/passwd", names).text
    assert run_command(agent, session, "/seed 7", names).text == "seed 7 from the next image on"
    assert session.seed == 7
    assert "(drawn for /seed -1)" in run_command(agent, session, "/seed -1", names).text
    assert 0 <= session.seed < 2**32
    run_command(agent, session, "/seed 7", names)
    for bad, field in (
        ("/seed x", "seed: 'x' is not a whole number"),
        ("/strategy nope", "strategy: unknown"),
    ):
        with pytest.raises(InvalidInputError, match=field):
            run_command(agent, session, bad, names)
    run_command(agent, session, "/strategy taca", names)
    assert session.strategy == "taca" and agent.strategy == "vanilla"  # this tab only

    first = agent.run("a red circle", thread_id="tab", seed=session.seed)
    messages = answer_messages(first)
    assert "rendered with vanilla, seed 7" in messages[0]["content"]
    assert "image: " not in messages[0]["content"] and str(tmp_path) not in messages[0]["content"]
    thumb = messages[1]["content"]["path"]
    assert Image.open(thumb).size == (192, 192) and Path(thumb).parent == Path(first.paths["image"]).parent
    agent.run("a blue square", thread_id="tab", seed=3)
    undone = run_command(agent, session, "/undo", names)
    assert undone.result is not None and undone.result.paths["image"] == first.paths["image"]
    assert session.seed == 7


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_uploads_are_bounded(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_image_annotation")
    import httpx

    from scenewright import Agent
    from scenewright.agent.web import build_app, launch_in_background

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    app = build_app(agent)
    port = _free_port()
    launch_in_background(app, tmp_path, port)
    try:
        url = f"http://127.0.0.1:{port}/gradio_api/upload"
        small = httpx.post(url, files={"files": ("plan.json", b"{}" * 100)}, timeout=30)
        big = httpx.post(url, files={"files": ("big.png", b"\0" * 1_100_000)}, timeout=30)
        assert small.status_code == 200
        assert big.status_code == 413
    finally:
        app.close()
        agent.close()


def test_plan_command_shows_the_plan_as_a_json_block(tmp_path: Path) -> None:
    import json

    from scenewright import Agent
    from scenewright.agent.web_session import Sessions, run_command

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    session = Sessions(agent).get("tab")
    assert run_command(agent, session, "/plan", []).text == "no plan yet"
    agent.run("two red circles", thread_id="tab")
    shown = run_command(agent, session, "/plan", []).text
    assert shown.startswith("```json\n") and shown.endswith("\n```")
    assert json.loads(shown[8:-4])["objects"][0]["count"] == 2


def test_the_conversation_shows_refine_rounds_and_help_without_paths(tmp_path: Path) -> None:
    from scenewright.agent.core import AgentResult
    from scenewright.agent.web_session import answer_messages

    image = tmp_path / "turn-001-refine1" / "image.png"
    image.parent.mkdir()
    Image.new("RGB", (64, 64), (200, 0, 0)).save(image)
    refined = AgentResult(
        status="done", thread_id="tab", strategy="refine:vanilla", seed=2, verified=False,
        paths={"image": str(image), "plan": str(image.with_name("plan.json"))},
        notes=["refine round 1 kept (repainted square): square: count 0 -> 1 (1 asked)",
               "refine: kept 1 of 2 rounds"],
    )  # fmt: skip
    text, picture = answer_messages(refined)
    assert "note: refine round 1 kept (repainted square): square: count 0 -> 1" in text["content"]
    assert "note: refine: kept 1 of 2 rounds" in text["content"] and str(tmp_path) not in text["content"]
    assert Image.open(picture["content"]["path"]).getpixel((0, 0)) == (200, 0, 0)
    helped = AgentResult(
        status="help", thread_id="tab", paths={"image": str(image)},
        errors=["follow-up: 'fancier' is not an edit I can make; try \"make it two circles\"; or type a whole new scene"],
    )  # fmt: skip
    (answer,) = answer_messages(helped)
    assert answer["content"].startswith("'fancier' is not an edit I can make\nfollow-ups that work on")
    assert answer["content"].endswith("kept the last image")


def test_cancel_drops_what_waits_and_settings_last_one_turn(tmp_path: Path) -> None:
    from scenewright import Agent
    from scenewright.agent.web_session import Sessions, cancel_session, session_settings

    agent = Agent(steps=3, guidance=2.0, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    sessions = Sessions(agent)
    tab = sessions.get("tab")
    assert cancel_session(agent, tab) == "nothing is rendering"
    tab.pending.extend(["make it three circles", "/seed 4"])
    assert cancel_session(agent, tab) == "cancelled; dropped 2 waiting request(s)" and not tab.pending
    tab.steps, tab.guidance = 1, 0.5
    with session_settings(agent, tab):
        result = agent.run("a red circle", thread_id="tab")
        assert agent.settings["steps"] == 1 and agent.settings["guidance"] == 0.5
    assert agent.settings["steps"] == 3 and agent.settings["guidance"] == 2.0  # one turn only
    from scenewright.tools.output import read_png_metadata

    settings = read_png_metadata(result.paths["image"])["settings"]
    assert (settings["steps"], settings["guidance"]) == (1, 0.5)
    assert (sessions.get("other").steps, sessions.get("other").guidance) == (3, 2.0)


def test_every_render_event_is_followed_by_a_refresh_of_what_the_server_holds(tmp_path: Path) -> None:
    """The page applies each queued event's last outputs when it has finished with them, so a
    turn's pictures can land after a quicker command answered behind it, putting back a
    conversation without that answer. Each render event is therefore followed by an unqueued
    refresh of the conversation, seed, strategy and gallery from the server's session."""
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_image_annotation")
    from scenewright import Agent
    from scenewright.agent.web import build_app

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    try:
        app = build_app(agent)
        fns = [f for f in app.fns.values() if f.fn is not None]  # not the page's own code

        def ids(fn: Any) -> list[str | None]:
            return [getattr(block, "elem_id", None) for block in fn.outputs]

        renders = [f for f in fns if f.queue and "conversation" in ids(f)]
        assert sorted(f.fn.__name__ for f in renders) == [
            "process",
            "process",
            "process",
            "render",
            "render_boxes",
        ]
        for render in renders:
            after = [f for f in fns if f.trigger_after == render._id and f.fn is not None]
            assert [(f.fn.__name__, f.queue) for f in after] == [("refresh", False)]
            assert ids(after[0]) == ["conversation", "seed", "strategy", "turns"]

        accept = next(f for f in fns if f.fn.__name__ == "accept")
        process = next(f for f in fns if f.fn.__name__ == "process")
        refresh = next(f for f in fns if f.fn.__name__ == "refresh")
        by_id = {getattr(block, "elem_id", None): block for f in fns for block in f.outputs}
        taken = accept.fn("/seed 5", None)
        thread = taken[accept.outputs[3]]  # the tab's thread, made by its first request
        stale = list(taken[by_id["conversation"]])  # what the page holds before the answer
        for _ in process.fn(thread):
            pass
        fresh = refresh.fn(thread)
        texts = [m["content"] for m in fresh[by_id["conversation"]]]
        assert texts[: len(stale)] == [m["content"] for m in stale]
        assert "seed 5 from the next image on" in texts[-1]
        assert fresh[by_id["seed"]] == 5
        # a page that has not said which thread it is: nothing changes
        assert list(refresh.fn(None).values()) == [{"__type__": "update"}]
    finally:
        agent.close()


def test_a_reloaded_tab_gets_its_conversation_back_from_the_history_store(tmp_path: Path) -> None:
    """A server started again on the same history rebuilds a tab's conversation from the thread's
    turns (with their verdicts and thumbnails), and the thread's files stay in its folder."""
    from scenewright import Agent
    from scenewright.agent.web_session import Sessions

    history = tmp_path / "history.sqlite"
    with Agent(steps=1, strategy="vanilla", out_dir=tmp_path / "out", history=history) as before:
        first = before.run("a red circle", thread_id="tab1", seed=4)
    with Agent(steps=1, strategy="vanilla", out_dir=tmp_path / "out", history=history) as after:
        session = Sessions(after).get("tab1")
        texts = [m["content"] for m in session.conversation if isinstance(m["content"], str)]
        verdict = {True: "matches the plan", False: "differs from the plan"}[bool(first.verified)]
        assert texts == ["a red circle", f"rendered with vanilla, seed 4: {verdict}"]
        assert Path(session.conversation[-1]["content"]["path"]).is_file()  # the thumbnail
        assert session.seed == 4
        second = after.run("make it two circles", thread_id="tab1", seed=session.seed)
        assert Path(second.paths["image"]).parent.parent == Path(first.paths["image"]).parent.parent
        assert Sessions(after).get("fresh").conversation == []


def test_a_tab_renders_with_its_own_size_negative_prompt_refine_rounds_and_backend(tmp_path: Path) -> None:
    from scenewright import Agent
    from scenewright.agent.web_session import Sessions, session_settings
    from scenewright.tools.output import read_png_metadata

    agent = Agent(steps=1, strategy="vanilla", out_dir=tmp_path)
    tab = Sessions(agent).get("tab")
    assert (tab.backend, tab.refine_rounds) == ("tiny", agent.tools.max_refine_rounds)
    tab.width, tab.height, tab.negative_prompt, tab.refine_rounds = 96, 64, "blurry", 3
    tab.backend = "tiny16"
    with session_settings(agent, tab):
        assert agent.tools.max_refine_rounds == 3 and agent.load_backend().name == "tiny16"
        result = agent.run("a red circle", thread_id="tab")
    assert agent.load_backend().name == "tiny" and agent.tools.max_refine_rounds == 0  # one turn only
    assert result.image is not None and result.image.size == (96, 64)
    settings = read_png_metadata(result.paths["image"])["settings"]
    assert settings["negative_prompt"] == "blurry"
    assert read_png_metadata(result.paths["image"])["backend"]["name"] == "tiny16"


def test_the_backend_control_offers_only_models_on_this_machine() -> None:
    from scenewright.agent.web_page import url_thread
    from scenewright.agent.web_turns import studio_backends

    names = studio_backends("tiny")
    assert names[:2] == ["tiny", "tiny16"]
    assert "flux" not in names and "sd3" not in names  # aliases are listed once, by their own name
    assert studio_backends("/models/mine")[0] == "/models/mine"
    assert url_thread("3cb38beb3430429a") == "3cb38beb3430429a"
    assert url_thread("../../etc") is None and url_thread("") is None and url_thread(None) is None


def test_a_control_takes_a_usable_value_and_refuses_another_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_image_annotation")
    from scenewright import Agent
    from scenewright.agent.web import build_app

    agent = Agent(steps=1, strategy="vanilla", out_dir=tmp_path)
    try:
        fns = [f for f in build_app(agent).fns.values() if f.fn is not None]
        by_input = {getattr(f.inputs[0], "elem_id", None): f for f in fns if f.fn.__name__ == "set_value"}
        reopen = next(f for f in fns if f.fn.__name__ == "reopen")
        outputs = {getattr(block, "elem_id", None): block for block in reopen.outputs}
        assert by_input["width"].fn(96, "tab") == {"__type__": "update"}
        refused = by_input["refine-rounds"].fn(12, "tab")
        assert refused == "**refine rounds**: 12 is not 0 to 8; the next render keeps 0"
        assert "not one of tiny" in by_input["backend"].fn("flux-dev-nope", "tab")
        shown = reopen.fn("tab")  # what a reload of the tab shows: the values it took
        assert shown[outputs["width"]] == 96 and shown[outputs["refine-rounds"]] == 0
    finally:
        agent.close()
