"""``bench concept-maps``: the localisation ratio and its command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.bench.concept_maps import box_mask, localisation, summary
from scenewright.cli import main


def test_box_mask_takes_the_tokens_whose_centres_are_inside() -> None:
    mask = box_mask([(0.0, 0.0, 0.5, 0.25)], (4, 4))
    assert mask.sum() == 2 and mask[0, :2].all()
    both = box_mask([(0.0, 0.0, 0.5, 0.25), (0.75, 0.75, 1.0, 1.0)], (4, 4))
    assert both.sum() == 3 and both[3, 3]


def test_localisation_is_inside_mean_over_outside_mean() -> None:
    inside = np.zeros((4, 4), dtype=bool)
    inside[:2, :2] = True
    flat = np.ones((4, 4))
    assert localisation(flat, inside) == pytest.approx(1.0)
    peaked = np.where(inside, 0.9, 0.1)
    assert localisation(peaked, inside) == pytest.approx(9.0)
    assert localisation(np.where(inside, 1.0, 0.0), inside) == float("inf")
    figures = summary([{"ratio": 9.0}, {"ratio": 1.0}, {"ratio": 4.0}])
    assert figures == {"objects": 3, "median_ratio": 4.0, "min_ratio": 1.0, "share_at_bar": 2 / 3}


def test_the_command_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)).save_pretrained(
        tmp_path / "m"
    )
    out = tmp_path / "maps.json"
    args = ["bench", "concept-maps", "--backend", str(tmp_path / "m"), "--n", "1", "--sets", "position"]
    assert main([*args, "--strategy", "vanilla", "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| objects in their boxes | median inside/outside | lowest | share >= 3x |" in printed
    payload = json.loads(out.read_text())
    assert payload["strategy"] == "vanilla" and payload["objects"] == len(payload["rows"])
    assert main([*args, "--sets", "nowhere"]) != 0


def test_the_command_reads_the_maps_as_told(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TinyBackend.random(TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)).save_pretrained(
        tmp_path / "m"
    )
    out = tmp_path / "maps.json"
    args = ["bench", "concept-maps", "--backend", str(tmp_path / "m"), "--n", "1", "--sets", "position"]
    assert main([*args, "--reader", "cross", "--blocks", "double", "--json", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "reading: cross, double blocks, at 0.5 of the schedule, less each map's 0.25 quantile" in printed
    assert json.loads(out.read_text())["reading"] == {
        "reader": "cross",
        "blocks": "double",
        "read_fraction": 0.5,
        "floor": 0.25,
        "concept_inputs": "scene",
    }
    assert main([*args, "--reader", "cross", "--floor", "0", "--json", str(out), "--quiet"]) == 0
    assert "quantile" not in capsys.readouterr().out
    assert json.loads(out.read_text())["reading"]["floor"] == 0.0
    assert main([*args, "--floor", "1"]) != 0
    assert "maps.floor" in capsys.readouterr().err
    assert main([*args, "--reader", "saliency"]) != 0
    assert "maps.reader" in capsys.readouterr().err
    assert (
        main([*args, "--reader", "concept", "--concept-inputs", "paper", "--json", str(out), "--quiet"]) == 0
    )
    assert "reading: concept, ConceptAttention's inputs" in capsys.readouterr().out
    assert json.loads(out.read_text())["reading"]["concept_inputs"] == "paper"
    assert main([*args, "--reader", "concept", "--concept-inputs", "bare"]) != 0
    assert "use one of scene, paper" in capsys.readouterr().err
