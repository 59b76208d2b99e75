"""Refine and the agent judged by a detector: the verdict, the choice of verifier, and rounds
kept only when no object gets worse, on the tiny model with a detector that sees what the toy
world's exact evaluator sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor.refine import detector_verdict, render_refine, resolve_verifier
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan, PlanObject
from scenewright.tools.detection.instances import Instance
from scenewright.tools.detection.verify import DetectorVerifier
from scenewright.tools.evaluator import detect

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)


class ToyDetector:
    """Every toy-world shape whose name is asked for, scored 1: an oracle standing in for OWLv2."""

    name = "toy"
    kind = "toy"

    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]:
        found = detect(np.asarray(image.convert("RGB")))
        return {n: [Instance(tuple(map(float, d.box)), 1.0) for d in found if d.shape == n] for n in names}  # type: ignore[misc]


def plan() -> Plan:
    return Plan(
        prompt="a circle left of a square",
        objects=[
            PlanObject(name="circle", boxes=[(0.0, 0.0, 0.5, 1.0)]),
            PlanObject(name="square", boxes=[(0.5, 0.0, 1.0, 1.0)]),
        ],
    )


def test_verifier_choice_keeps_the_exact_evaluator_on_the_embedded_model() -> None:
    backend = TinyBackend.random(SMALL, seed=3)
    verifier = DetectorVerifier(ToyDetector())
    assert resolve_verifier("auto", backend, verifier) == "evaluator"
    assert resolve_verifier("auto", object(), verifier) == "detector"  # type: ignore[arg-type]
    assert resolve_verifier("auto", object()) == "attention"  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="needs a detector"):
        render_refine(backend, plan(), SamplingSettings(64, 64, steps=1, guidance=1.0), verifier="detector")


def test_detector_verdict_reads_counts_boxes_and_relations() -> None:
    image = Image.new("RGB", (64, 64))
    verdict = detector_verdict(image, plan(), DetectorVerifier(ToyDetector()))
    assert verdict.ok == [False, False] and verdict.relations == []
    assert verdict.states == [(0.0, 0.0, 1.0, 0.0, -1.0)] * 2


def test_refine_by_detector_never_keeps_a_worse_round() -> None:
    backend = TinyBackend.random(SMALL, seed=3)
    judge = DetectorVerifier(ToyDetector())
    settings = SamplingSettings(64, 64, steps=3, guidance=3.0, seed=1)
    result = render_refine(
        backend, plan(), settings, base="vanilla", rounds=2, verifier=judge,
        run_base=lambda name, *a, **k: run_strategy(name, *a, **k),
    )  # fmt: skip
    report = result.report["refine"]
    assert report["verifier"] == "detector" and report["detector"] == "detector:toy"
    base, final = result.artifacts["base_image"], result.image
    if (np.asarray(base) != np.asarray(final)).any():
        assert detector_verdict(final, plan(), judge).improves_on(detector_verdict(base, plan(), judge))
    else:
        assert all(not r["kept"] for r in report["rounds"][1:])


def test_attach_detector_judges_real_models_and_leaves_the_toy_world_exact(tmp_path, monkeypatch) -> None:
    from scenewright.agent.core import Agent
    from scenewright.agent.detection import LazyDetectorVerifier, attach_detector

    agent = Agent(out_dir=tmp_path, steps=1, max_refine_rounds=0)
    judge = DetectorVerifier(ToyDetector())
    monkeypatch.setattr(LazyDetectorVerifier, "get", lambda self: judge)
    attach_detector(agent, "google/owlv2-base-patch16-ensemble")  # a hub id: checked when loaded
    image = Image.new("RGB", (64, 64))
    tiny = agent.load_backend()
    assert agent.tools.refine_verifier(tiny) == "evaluator"
    rows, verdict = agent.tools.verifier(image, plan(), {})
    assert "boxes" not in rows[0] and verdict is False  # the toy judge's rows
    monkeypatch.setattr(agent, "load_backend", lambda: object())
    assert agent.tools.refine_verifier(object()) is judge  # type: ignore[arg-type]
    rows, verdict = agent.tools.verifier(image, plan(), {})
    assert rows[0]["boxes"] == [] and rows[0]["found"] == 0 and verdict is False
    with pytest.raises(InvalidInputError, match=r"^detector: "):
        attach_detector(agent, str(tmp_path / "nowhere"))


def test_generate_refuses_an_unknown_detector_in_one_line(tmp_path, capsys) -> None:
    from scenewright.cli import main

    code = main(["generate", "a red circle", "--out", str(tmp_path / "o"), "--steps", "1", "--quiet",
                 "--detector", str(tmp_path / "nowhere")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: detector: ") and "\n" not in err
    assert not (tmp_path / "o" / "image.png").exists()
