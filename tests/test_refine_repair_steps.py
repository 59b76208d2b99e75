"""Refine's repaint on a coarser schedule (``refine:repair_fraction``): the repaint samples that
share of the run's steps, the report says how many, and a bad share is a one-line error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from PIL import Image

from scenewright.backends.tiny import TinyBackend, TinyConfig
from scenewright.errors import InvalidInputError
from scenewright.executor import refine
from scenewright.executor.sampler import SamplingSettings
from scenewright.executor.strategies import run_strategy
from scenewright.planner.plan import Plan, PlanObject
from scenewright.tools.detection.instances import Instance
from scenewright.tools.detection.verify import DetectorVerifier

SMALL = TinyConfig(double_blocks=1, single_blocks=1, text_layers=1)


class BlindDetector:
    """Finds nothing: every object fails, so every round repaints."""

    name = "blind"
    kind = "toy"

    def detect(self, image: Image.Image, names: Sequence[str]) -> dict[str, list[Instance]]:
        return {n: [] for n in names}


def _plan() -> Plan:
    return Plan(
        prompt="a circle left of a square",
        objects=[
            PlanObject(name="circle", boxes=[(0.0, 0.0, 0.5, 1.0)]),
            PlanObject(name="square", boxes=[(0.5, 0.0, 1.0, 1.0)]),
        ],
    )


def _repaint_steps(monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[list[int], dict[str, Any]]:
    """Run refine on a random tiny model; return the steps of every repaint and the report."""
    seen: list[int] = []
    sample = refine.sample_with_edits

    def recording(backend: Any, encoding: Any, settings: SamplingSettings, *args: Any, **kwargs: Any) -> Any:
        seen.append(settings.steps)
        return sample(backend, encoding, settings, *args, **kwargs)

    monkeypatch.setattr(refine, "sample_with_edits", recording)
    result = refine.render_refine(
        TinyBackend.random(SMALL, seed=3), _plan(), SamplingSettings(32, 32, steps=6, guidance=1.0, seed=1),
        base="vanilla", rounds=1, verifier=DetectorVerifier(BlindDetector()),
        run_base=lambda name, *a, **k: run_strategy(name, *a, **k), **options,
    )  # fmt: skip
    return seen, result.report["refine"]


@pytest.mark.parametrize(
    ("options", "steps"), [({}, 3), ({"repair_fraction": 1.0}, 6), ({"repair_fraction": 0.05}, 1)]
)
def test_the_repaint_takes_its_share_of_the_steps(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any], steps: int
) -> None:
    seen, report = _repaint_steps(monkeypatch, **options)
    assert seen == [steps]  # one round, one repaint: the base image came from run_strategy
    assert report["repair_steps"] == steps
    assert report["rounds"][1]["failing"] == [0, 1]


def test_a_bad_repair_fraction_is_named() -> None:
    backend = TinyBackend.random(SMALL, seed=3)
    settings = SamplingSettings(32, 32, steps=2, guidance=1.0)
    with pytest.raises(InvalidInputError, match="repair_fraction"):
        run_strategy("refine:base=vanilla:repair_fraction=0", backend, _plan(), settings)
    with pytest.raises(InvalidInputError, match="repair_fraction"):
        refine.render_refine(
            backend, _plan(), settings, image=Image.new("RGB", (32, 32)), repair_fraction=1.5
        )
