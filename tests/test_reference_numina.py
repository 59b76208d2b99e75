"""NUMINA's paper mode against the authors' functions run on the same attention inputs.

Fixtures: tests/fixtures/reference/numina/ (scripts/reference_fixtures.py numina; SOURCE.md there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from reference_numina_inputs import CASES, GRID, NOUN_TOKENS, make_inputs, target_count
from scenewright.executor.numina.paper import (
    cross_attention_map,
    paper_bias,
    paper_delta,
    self_attention_maps,
)
from scenewright.planner import count_layout_paper as paper

FIXTURES = Path(__file__).parent / "fixtures" / "reference" / "numina"
BIAS_STEPS = (0, 20, 25, 26, 28, 30, 44, 45)
NAMES = [case for case, *_ in CASES]


def fixture(case: str) -> dict[str, torch.Tensor]:
    path = FIXTURES / f"{case}.safetensors"
    assert path.is_file(), f"missing reference fixture {path}: run scripts/reference_fixtures.py numina"
    return load_file(str(path))


@pytest.mark.parametrize("case", NAMES)
def test_head_selection_matches(case: str) -> None:
    ref = fixture(case)
    inputs = make_inputs(case)
    maps = self_attention_maps(inputs.self_q, inputs.self_k).double().numpy()
    gray = np.stack([paper.grayscale(m) for m in maps])
    np.testing.assert_allclose(gray, ref["gray"].double().numpy(), atol=1e-5)
    scores = [paper.head_score(m, GRID, GRID) for m in maps]
    np.testing.assert_allclose(scores, ref["scores"].numpy(), rtol=1e-4)
    assert paper.select_head(maps, GRID, GRID) == int(ref["head_randomized"])


@pytest.mark.parametrize("case", NAMES)
def test_cross_map_matches(case: str) -> None:
    inputs = make_inputs(case)
    ours = cross_attention_map(inputs.cross_q, inputs.cross_k, NOUN_TOKENS).reshape(GRID, GRID)
    torch.testing.assert_close(ours, fixture(case)["cross"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("case", NAMES)
def test_layout_matches(case: str) -> None:
    """Same maps in (the selected head's and the cross map), the same labels out, exactly."""
    ref = fixture(case)
    inputs = make_inputs(case)
    maps = self_attention_maps(inputs.self_q, inputs.self_k).numpy()
    sa = maps[paper.select_head(maps.astype(np.float64), GRID, GRID)]
    cross = ref["cross"].numpy()
    np.testing.assert_array_equal(paper.clusters(sa, GRID, GRID), ref["clusters"].numpy())
    np.testing.assert_array_equal(paper.focus(cross), ref["focus"].numpy().astype(bool))
    layout, found = paper.found_layout(sa, cross)
    np.testing.assert_array_equal(layout, ref["layout"].numpy())
    assert found == int(ref["found"])
    refined, _ = paper.paper_layout(sa, cross, target_count(case))
    np.testing.assert_array_equal(refined, ref["refined"].numpy())


@pytest.mark.parametrize("case", NAMES)
def test_bias_matches_over_steps(case: str) -> None:
    ref = fixture(case)
    inputs = make_inputs(case)
    refined = ref["refined"].numpy()
    for index, step in enumerate(BIAS_STEPS):
        ours = paper_bias(refined, NOUN_TOKENS, inputs.cross_q, inputs.cross_k, step)
        expected = ref["bias"][index]
        if ours is None:
            assert not expected.any(), f"step {step}: they bias, we do not"
            continue
        torch.testing.assert_close(ours[:, list(NOUN_TOKENS)], expected, rtol=1e-5, atol=1e-5)
        others = [t for t in range(ours.shape[1]) if t not in NOUN_TOKENS]
        assert not ours[:, others].any()


def test_fixtures_cover_every_branch() -> None:
    """Removal, no change, circle-template addition and reference addition are all exercised."""
    labels = {case: set(fixture(case)["refined"].flatten().tolist()) for case in NAMES}
    assert -1 in labels["remove"]
    assert not fixture("exact")["bias"].any()
    assert int(fixture("circle")["found"]) == 0 and max(labels["circle"]) >= 100
    assert {1, 100} <= labels["reference"]


def test_delta_follows_their_float64_cut() -> None:
    active = [t for t in range(50) if paper_delta(t) > 0]
    assert active == list(range(45))
    assert paper_delta(25) == pytest.approx(1.0)
    assert paper_delta(0) == pytest.approx(1.75)
    assert paper_delta(10, num_steps=20) == pytest.approx(1.0)  # our step on their 50-step clock
