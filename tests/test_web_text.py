"""The web studio shows names, requests and errors as text: no HTML or markdown gets through."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from scenewright.agent.core import AgentResult
from scenewright.agent.web import _errors_text
from scenewright.agent.web_session import answer_messages
from scenewright.agent.web_text import as_text, shown

HOSTILE = (
    "circle<script>alert(1)</script> **bold** [link](http://x) `code` <img src=x onerror=y> $$x$$ & # - 1."
)


def _unescape(shown_text: str) -> str:
    """What a CommonMark renderer displays for an escaped text: escapes and entities undone."""
    return html.unescape(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", shown_text))


def test_markup_is_shown_as_its_characters() -> None:
    text = as_text(HOSTILE)
    assert "<" not in text and ">" not in text  # no tag can open
    assert not re.search(r"(?<!\\)[*`\[\]$]", text)  # every markdown character is escaped
    assert _unescape(text) == HOSTILE  # and the reader sees exactly what was written


def test_the_conversation_escapes_text_and_keeps_pictures(tmp_path: Path) -> None:
    picture = {"role": "assistant", "content": {"path": str(tmp_path / "t.png"), "alt_text": "a"}}
    conversation = [{"role": "user", "content": HOSTILE}, picture]
    out = shown(conversation)
    assert out[1] == picture and out[0]["role"] == "user"
    assert "<script>" not in out[0]["content"] and _unescape(out[0]["content"]) == HOSTILE
    assert conversation[0]["content"] == HOSTILE  # the session keeps what was said


@pytest.mark.parametrize("status", ["invalid", "done"])
def test_answers_and_errors_naming_a_hostile_object_stay_text(status: str) -> None:
    name = "<b onmouseover=alert(1)>circle</b>"
    result = AgentResult(status=status, thread_id="t", notes=[f"objects[0] '{name}' is not a word the tiny model knows"],
                         errors=[f"objects[0].name: '{name}' holds markup"] if status == "invalid" else [])  # fmt: skip
    for message in shown(answer_messages(result)):
        assert "<b" not in message["content"] and name in _unescape(message["content"])
    if status == "invalid":
        errors = _errors_text(result)
        assert "<b" not in errors and name in _unescape(errors)


def test_the_studio_sends_the_conversation_escaped(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    pytest.importorskip("gradio_image_annotation")
    from scenewright import Agent
    from scenewright.agent.web import build_app

    agent = Agent(steps=1, strategy="vanilla", max_refine_rounds=0, out_dir=tmp_path)
    try:
        fns = list(build_app(agent).fns.values())
        accept = next(f for f in fns if f.fn.__name__ == "accept")
        chat = next(b for b in accept.outputs if getattr(b, "elem_id", None) == "conversation")
        sent = accept.fn("a <img src=x onerror=alert(1)> **circle**", None)[chat]
        assert [m["role"] for m in sent] == ["user"]
        assert "<img" not in sent[0]["content"] and "**" not in sent[0]["content"]
        assert _unescape(sent[0]["content"]) == "a <img src=x onerror=alert(1)> **circle**"
    finally:
        agent.close()
