"""Object names the backend cannot draw are named in one warning line on every face that renders;
open-vocabulary backends (FLUX, SD3) are never warned about real nouns."""

from __future__ import annotations

from pathlib import Path

import pytest

from scenewright.agent.core import Agent
from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.bench.batch import render_batch
from scenewright.bench.shard import Shard
from scenewright.planner.plan import Plan, PlanObject
from scenewright.planner.unknown_words import unknown_word_notes


@pytest.fixture(scope="module")
def tiny() -> TinyBackend:
    return TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1))


def _plan(*names: str, prompt: str = "a picture") -> Plan:
    return Plan(prompt=prompt, objects=[PlanObject(name=n) for n in names])


def test_a_word_the_embedded_model_lacks_is_named_once(tiny: TinyBackend) -> None:
    notes = unknown_word_notes(_plan("circle", "pe'ej", prompt="a circle and a pe'ej"), tiny)
    assert len(notes) == 1
    assert "objects[1] 'pe'ej' is not a word the tiny model knows" in notes[0]
    assert "\n" not in notes[0]
    assert unknown_word_notes(_plan("circle", "square", prompt="a circle and a square"), tiny) == []


def test_other_prompt_words_are_still_said_apart_from_objects(tiny: TinyBackend) -> None:
    notes = unknown_word_notes(_plan("circle", prompt="a circle in a meadow"), tiny)
    assert notes == ["the tiny model does not know the words meadow; they are ignored"]


def test_open_vocabulary_backends_draw_any_noun() -> None:
    class Flux:  # no unknown_words: its T5 encoder reads every English word
        name = "flux"

    assert unknown_word_notes(_plan("pe'ej", "zebra"), Flux()) == []


def test_batch_says_which_prompt_has_a_word_nobody_asked_for(
    tiny: TinyBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = Agent(backend=tiny, strategy="vanilla", steps=1, height=32, width=32, max_refine_rounds=0,
                  flat_output=True, overwrite=True)  # fmt: skip
    summary = render_batch(tmp_path, ["a circle", "a pe'ej"], agent, Shard(), [0], progress=False)
    assert summary["rendered"] == [0, 1]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1
    assert lines[0].startswith("warning: prompt 1: objects[0] 'pe'ej' is not a word the tiny model knows")
    # ... and its verdict never claims the object it could not check
    assert [i["verdict"] for i in summary["images"]][1] == "cannot verify"
