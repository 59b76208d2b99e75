"""``scenewright vocab`` lists what the embedded model knows, from the toy world's own tables."""

from __future__ import annotations

import json

import pytest

from scenewright.cli import main
from scenewright.toyworld.captions import EMPTY_CAPTIONS
from scenewright.toyworld.vocab import COLORS, SHAPES, vocabulary


def test_vocab_lists_every_group(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vocab"]) == 0
    lines = capsys.readouterr().out.splitlines()
    heads = [line.split(":")[0] for line in lines[1:]]
    assert heads == ["shapes", "colours", "counts", "relations", "places", "backgrounds", "loras", "example"]
    # The LoRA shipped beside tiny16, by the name a plan object gives it.
    assert next(line for line in lines if line.startswith("loras:")).split()[1] == "recolor"
    shapes = next(line for line in lines if line.startswith("shapes:"))
    assert all(f"{one} ({many})" in shapes for one, many in SHAPES.items())


def test_vocab_json_words_are_known_to_the_tokenizer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vocab", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    known = set(vocabulary())
    assert groups["colours"] == list(COLORS)
    assert groups["backgrounds"] == list(EMPTY_CAPTIONS)
    for group in ("shapes", "colours", "counts", "backgrounds"):
        for phrase in groups[group]:
            words = phrase.replace("(", " ").replace(")", " ").split()
            assert set(words) <= known, (group, phrase)
    assert "between" not in groups["relations"]  # planned, but the evaluator does not judge it
    assert {"left of", "right of", "above", "below"} <= set(groups["relations"])
    assert "in the middle" in groups["places"]
